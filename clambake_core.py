"""clambake core: constants, helpers, the connection, identity, registry, messages, embeddings, memory
and recall, the session log, maintenance, argument parsing and main().

A part of clambake.py (see its docstring): clambake.py runs this file in its own namespace, from cached
bytecode, in every process.  Not a module of its own: do not import it.
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


SCHEMA_VERSION = 6

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

# Claude Code hooks (clambake_hooks.py) and `server` (clambake_server.py): what the core needs too
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
OFF_WORDS = ("off", "0", "false", "no")
ENDED_KEEP_S = 30 * 86400      # ended sessions remembered for `claude --resume` (cleanup drops older)
CLEARED = "cleared:"           # session_key prefix of an instance handed over by /clear
SERVER_PORT = 5433                          # the seed's default, as in ENV_DB

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
    text = str(text)
    whole, dot, part = (text[:-1] if text.endswith("s") else text).partition(".")
    if text.isascii() and whole.isdigit() and (part.isdigit() or not dot):   # 5, 1.5s: no pattern to compile
        value = float(whole + dot + part)
    else:
        m = _DURATION.match(text)
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
    return "-".join((name or "").lower().split())


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
    # only a text that ends in a digit (or /tcp, /udp) can be a port: the pattern is not compiled otherwise
    m = _PORT_RES.match(text) if text[-1:].isdigit() or text.endswith(("/tcp", "/udp")) else None
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
        if text.replace("\n", "").replace("\t", "").isprintable():
            return text
    elif text.isprintable():       # every character the patterns match is a control or format character
        return text
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


_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")


def windows_style(path):
    """A drive path (F:/x, F:\\x) or a UNC path (\\\\server\\share, //server/share)."""
    path = path or ""
    return (len(path) >= 3 and path[0] in _ASCII_LETTERS and path[1] == ":" and path[2] in "\\/") \
        or path.startswith(("\\\\", "//"))


def fold_paths(*paths):
    """Compare these paths case-insensitively?  On Windows, or when one is Windows-style (drive, UNC)."""
    return os.name == "nt" or any(windows_style(p) for p in paths)


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


# How commands are shown and installed.  An agent's Bash tool is bash (Git Bash on Windows); Claude Code runs
# hook commands with sh -c, on Windows with Git Bash or, when Git Bash is absent, PowerShell.
_SAFE_CHARS = _ASCII_LETTERS | _DIGITS | frozenset("_./:@%+=,~-")
_installed = {}


def shell_quote(word):
    """One word for bash and PowerShell alike: bare when it has no special characters, else in single quotes
    (literal in both shells)."""
    word = str(word)
    bare = word and word[0] != "~" and _SAFE_CHARS.issuperset(word)      # a leading ~ would expand
    return word if bare else "'" + word.replace("'", "'\\''") + "'"


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


# What a claim's resource covers (also the guard's, in clambake_hooks.py): its kind, and the paths a
# file or glob resource matches.
def has_glob(text):
    """Does `text` have a glob character (* ? [)?"""
    return "*" in text or "?" in text or "[" in text


_EXT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_~-") | _DIGITS


def has_extension(text):
    """Does `text` end in a file extension: a dot and 1-10 of [a-z0-9_~-] (docker-compose.yml, .env)?"""
    ext = text.rpartition(".")[2]
    return "." in text and 0 < len(ext) <= 10 and _EXT_CHARS.issuperset(ext)


def resource_kind(resource):
    """('port', 8080) | ('glob', pattern) | ('file', path) | ('name', name) for a stored resource.  A name
    with a slash or backslash, a leading dot or an extension (docker-compose.yml, .env) is a file."""
    r = canon_resource(resource)
    if r.startswith("port:"):
        return "port", int(r[5:])
    if has_glob(r):
        return "glob", r
    if "/" in r or "\\" in r or r.startswith(".") or has_extension(r):
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
    if has_glob(p):                        # the command names a glob: rm *.yml
        target = r if r_abs else path_key(r, cwd, fold)
        return bool(re.fullmatch(glob_rx(p) + "(?:/.*)?", target, re.S))
    if r_abs:
        return p == r or p.startswith(r.rstrip("/") + "/") or (tree and r.startswith(p.rstrip("/") + "/"))
    return ("/" + r + "/") in (p.rstrip("/") + "/") or p == r


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


def psycopg2_module():
    """psycopg2 (with psycopg2.extensions), imported without Python's ssl module: every part imports it
    through here.  psycopg2's C module imports `ssl` when it loads, only to learn whether Python has set
    up OpenSSL's locking callbacks, and then tells libpq not to set its own (PQinitOpenSSL(1, 0)).
    OpenSSL 1.1 and later need no such callbacks (every OpenSSL that psycopg2-binary bundles, and every
    one Python 3.10+ builds with), so the answer changes nothing -- but `import ssl` costs about 12 ms,
    a fifth of a whole command.  An empty module stands in for ssl while psycopg2 loads and is taken out
    at once, so a later `import ssl` (an https embedding provider) loads the real one.  libpq's own TLS
    (sslmode=require, verify-full) does not go through Python's ssl module at all."""
    m = sys.modules.get("psycopg2")
    if m is not None and "psycopg2.extensions" in sys.modules:
        return m
    placeholder = None
    if "ssl" not in sys.modules:
        placeholder = sys.modules["ssl"] = type(sys)("ssl")
    try:
        import psycopg2
        import psycopg2.extensions  # noqa: F401 (loaded with it; named here for the callers' attribute use)
    finally:
        if placeholder is not None and sys.modules.get("ssl") is placeholder:
            del sys.modules["ssl"]
    return psycopg2


def describe_target(dsn, kw, secrets=()):
    """'database host:port/db' for messages (never the password)."""
    info = dict(kw)
    if dsn:
        try:
            info.update(psycopg2_module().extensions.parse_dsn(dsn))
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


def url_authority(dsn):
    """The authority (user:password@host:port) of a URL-style DSN (scheme://authority/...), else None."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or not scheme.isascii() or not scheme[:1].isalpha() \
            or not all(c.isalnum() or c in "+.-" for c in scheme):
        return None
    ends = [i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0]
    return rest[:min(ends)] if ends else rest


def dsn_secrets(dsn, kw):
    """Every string that may be (part of) the password, to scrub from messages."""
    found = [kw.get("password")]
    if dsn:
        try:
            found.append(psycopg2_module().extensions.parse_dsn(dsn).get("password"))
        except Exception:
            pass
        authority = url_authority(dsn)
        if authority and "@" in authority:       # a URL: user:password before the LAST @ of the authority
            userinfo = authority.rpartition("@")[0]
            found.append(userinfo.split(":", 1)[1] if ":" in userinfo else None)
            found += userinfo.replace(":", "@").split("@")[1:]
        elif "password" in dsn.lower():
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
        psycopg2 = psycopg2_module()
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
    if dsn and (url_authority(dsn) or "").count("@") > 1:
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


# Other live instances than %(me)s, project %(project)s's first, newest heartbeat first, at most %(olim)s
# (with their total).
LIVE_OTHERS_SQL = (f"SELECT {INSTANCE_COLS}, count(*) OVER () AS total FROM clambake.instances i "
                   f"WHERE i.instance_id <> %(me)s AND {LIVE_I} "
                   "ORDER BY (i.project = %(project)s) DESC, i.last_heartbeat DESC LIMIT %(olim)s")


def live_others(me_id, project, limit):
    return q(LIVE_OTHERS_SQL, {"me": me_id, "project": project, "olim": limit, "live": live_window()})


def json_list(sql):
    """A query's rows as ONE json column (a list of objects with its column names, in its order): several
    lists in one statement, so in one round trip."""
    return f"(SELECT coalesce(json_agg(x), '[]') FROM ({sql}) x)"


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
                      keep_project=False, restore=None, client=None, resumed=False,
                      returning="i.instance_id, i.started_at, i.hook_seen_at", known_only=False, unless=None):
    """Create my instance, or re-use one: the instance of this session key, else the named one (--as or
    CLAMBAKE_INSTANCE), else (no session key) the live keyless instance of this host and directory.
    `restore` ({instance_id, project} of an ended session) brings back its id and project; `client`
    ((Claude Code pid, transcript dir), from the hooks) is recorded for lifecycle pairing; `resumed` (a
    SessionStart resume) sets resumed_at in the same statement; `returning`: the row's columns to return
    (of instances AS i; the hooks take their whole view of it).
    `known_only`: only this session's existing instance, found by its key in the update itself -- one
    statement, without the transaction and lock that guard creating an instance: (None, False) when the
    session has none; `unless`: a condition on i under which it is left as it is: (the row as it is, False).
    -> (row, reused)."""
    host = hostname()
    pid = os.getppid() if hasattr(os, "getppid") else os.getpid()
    cpid, tdir = client or (None, None)
    if restore:
        project = restore["project"] or project

    def update(which, where=""):
        """The UPDATE that re-uses the instance whose id is `which` (SQL), with a further condition."""
        return ("UPDATE clambake.instances i SET project = CASE WHEN %s THEN project ELSE %s END, "
                "working_dir = %s, host = %s, pid = %s, "
                "model = coalesce(%s, model), current_task = coalesce(%s, current_task), status = 'active', "
                "session_key = coalesce(%s, session_key), last_heartbeat = now(), "
                "client_pid = coalesce(%s, client_pid), transcript_dir = coalesce(%s, transcript_dir), "
                "resumed_at = CASE WHEN %s THEN now() ELSE resumed_at END "
                f"WHERE instance_id = {which}{where} RETURNING {returning}",
                (keep_project, project, wd, host, pid, model, task, session, cpid, tdir, resumed))
    if known_only:
        # `AND session_key` again: a concurrent /clear handover that renamed the key is not undone
        sql, params = update("(SELECT instance_id FROM clambake.instances WHERE session_key = %s "
                             "ORDER BY last_heartbeat DESC LIMIT 1)",
                             " AND session_key = %s" + (f" AND NOT ({unless})" if unless else ""))
        # when `unless` held: the instance as it is, in the same statement
        row = q(f"WITH u AS ({sql}, true AS updated) SELECT * FROM u UNION ALL (SELECT {returning}, false "
                f"FROM clambake.instances i WHERE i.session_key = %s AND NOT EXISTS (SELECT 1 FROM u) "
                f"ORDER BY i.last_heartbeat DESC LIMIT 1)", params + (session, session, session), one=True)
        return row, bool(row and row["updated"])
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
            sql, params = update("%s")
            return q(sql, params + (existing["instance_id"],), one=True), True
        for attempt in range(8):
            iid = new_id if new_id and attempt == 0 else new_instance_id(project)
            row = q("INSERT INTO clambake.instances AS i (instance_id, project, working_dir, current_task, model, "
                    "status, session_key, host, pid, client_pid, transcript_dir, resumed_at) "
                    "VALUES (%s, %s, %s, %s, %s, 'active', %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END) "
                    f"ON CONFLICT (instance_id) DO NOTHING RETURNING {returning}",
                    (iid, project, wd, task, model, session, host, pid, cpid, tdir, resumed), one=True)
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


def similar(a, b):
    """Nearly the same name (difflib's ratio, imported only when there is a name to compare)."""
    import difflib
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def note_near_claims(resource, live):
    """A stderr note about held resources whose name nearly matches `resource` (docker-compose.yaml
    for docker-compose.yml, postgress for postgres): probably the same thing, spelled differently."""
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
        elif similar(resource, c["resource"]):
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


_PLAIN_ARG = _SAFE_CHARS - frozenset("%~")      # quote_arg's bare words: shell_quote's, less % and ~


def quote_arg(s):
    """A shell word for `s`: as is when plain, else double-quoted with \\ " $ ` escaped."""
    return s if s and _PLAIN_ARG.issuperset(s) else '"' + re.sub(r'([\\"$`])', r"\\\1", s) + '"'


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


# The inbox's order: most urgent first, then oldest.
INBOX_ORDER = f"{PRIORITY_SQL}, m.created_at, m.id"


def inbox_filter(include_read, where):
    """The condition on m, after DELIVER_SQL, of the messages an inbox lists."""
    return ("" if include_read else UNREAD_SQL) + " " + where


def inbox_peek_sql(include_read=False, where=""):
    """fetch_inbox(peek=True)'s statement (parameters: deliver_params, lim)."""
    return (f"SELECT {MESSAGE_COLS}, {UNREAD_COUNT_SQL.format(where=where)} AS total, EXISTS (SELECT 1 FROM "
            f"clambake.message_receipts r WHERE r.instance_id = %(me)s AND r.message_id = m.id) AS was_read "
            f"FROM clambake.messages m WHERE {DELIVER_SQL} {inbox_filter(include_read, where)} "
            f"ORDER BY {INBOX_ORDER} LIMIT %(lim)s")


def fetch_inbox(me, limit, peek=False, include_read=False, where="", params=None):
    """My messages, most urgent first.  Unless peek, marks them read (exactly once per recipient).
    `where`: a further SQL condition on m (a named fragment, e.g. URGENT_SQL) with its `params`.

    Returns (rows, remaining) where remaining counts unread ones (matching `where`) not shown."""
    p = dict(deliver_params(me), lim=limit, **(params or {}))
    unread_filter, order = inbox_filter(include_read, where), INBOX_ORDER
    count_sql = UNREAD_COUNT_SQL.format(where=where)
    if peek:
        rows = q(inbox_peek_sql(include_read, where), p)
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
        if getattr(reason, "verify_message", None):       # ssl.SSLCertVerificationError
            raise EmbedError(f"{where} has a certificate this machine does not trust ({reason.verify_message}; "
                             f"point SSL_CERT_FILE at its CA bundle)") from None
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
_MEMORY_COLS = ("memory_type, title, content, status, tags, related_files, created_by, created_at, updated_at, "
                "search_tsv, superseded_by, source_file, source_heading, source_hash")
_MEMORY_SELECT = {"project": f"SELECT id, 'project'::text AS scope, project, {_MEMORY_COLS} "
                             f"FROM clambake.project_memory",
                  "global": f"SELECT id, 'global'::text AS scope, NULL::text AS project, {_MEMORY_COLS} "
                            f"FROM clambake.global_memory"}
# Both memory tables as one, `mem`, with its scope ('project' or 'global'); MEMORY_OF[scope]: one of them alone,
# in the same shape (a query about one scope then plans and opens that table only)
MEMORY_VIEW = f"({_MEMORY_SELECT['project']} UNION ALL {_MEMORY_SELECT['global']}) mem"
MEMORY_OF = {scope: f"({select}) mem" for scope, select in _MEMORY_SELECT.items()}

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
# lead the global ones.  The order is schema.sql's clambake.memory_rank, which indexes serve.
MEMORY_TYPE_RANK = "clambake.memory_rank(mem.memory_type)"

RECALL_COLS = ("mem.id, mem.scope, mem.project, mem.memory_type, mem.title, mem.content, mem.status, mem.tags, "
               "mem.related_files, mem.created_by, mem.created_at, mem.updated_at, "
               "mem.superseded_by, mem.source_file, mem.source_heading, "
               "extract(epoch FROM now() - mem.updated_at)::float AS age")
RECENCY = "(1.0 + 0.25 / (1.0 + extract(epoch FROM now() - mem.updated_at) / 2592000.0))"
FUZZY_WORD_THRESHOLD = 0.4   # recall's typo fallback: pg_trgm word_similarity(query, title) at least this
# Lexical ranking (README "How recall ranks"): a memory scores, for each query word, idf(word) x
# ts_rank of that word with the field weights below (best field first, repeats add a little), summed,
# times the share of the query's words it contains; a corrected word counts at CORRECTED_FACTOR.
FIELD_WEIGHTS = "{0.1, 0.5, 0.6, 1.0}"      # ts_rank order D, C (content), B (tags), A (title)
CORRECT_MAX_DIST = 2         # typo correction: at most this many edits (1 for words of 5 letters or fewer)
CORRECTED_FACTOR = (1.0, 0.8, 0.6)          # weight of a corrected word by edit distance 0, 1, 2
COMMON_SHARE = 0.1           # words in more than this share of memories do not select candidates ...
COMMON_MIN = 500             # ... once they are in more than this many
MAX_QUERY_WORDS = 12         # words beyond these are ignored
PREFIX_ALT, PREFIX_FACTOR = 1, 0.5   # a query word also matches longer words it begins, at half weight
PART_FACTOR = 0.8            # an unknown word that is part of a path or file name matches it at this weight
# Developer shorthand and plain synonyms, as lexemes (english stems): a query word also matches the
# other words of its group at SYNONYM_FACTOR.  Only words that mean the same in any project.
SYNONYM_GROUPS = (("email", "mail"), ("db", "databas"), ("postgr", "postgresql"), ("config", "configur"),
                  ("perm", "permiss"), ("repo", "repositori"), ("dir", "directori", "folder"),
                  ("env", "environ"), ("auth", "authent"), ("login", "logon", "signin"), ("logout", "signout"),
                  ("cert", "certif"), ("k8s", "kubernet"), ("pw", "passwd", "password"), ("cred", "credenti"),
                  ("dep", "depend"), ("app", "applic"), ("img", "imag"), ("pkg", "packag"), ("msg", "messag"),
                  ("err", "error"), ("ram", "memori"), ("js", "javascript"), ("ts", "typescript"),
                  ("delet", "remov"), ("regex", "regexp"), ("tz", "timezon"))
SYNONYM_FACTOR = 0.8
# Words a natural question carries around its subject ("what happens when ...", "how do I get ...",
# "people keep ..."): they count at FILLER_FACTOR, in the score and in the share of words matched.
FILLER_WORDS = frozenset(("get", "got", "go", "goe", "went", "happen", "thing", "want", "need", "use", "work",
                          "peopl", "someon", "anyon", "someth", "anyth", "way", "like", "realli", "just",
                          "also", "pleas", "know", "tell", "make", "made", "mean", "still", "ever", "actual"))
FILLER_FACTOR = 0.3
VECTOR_WEIGHT = 0.3          # hybrid recall: weight of the vector ranking next to the lexical one (1)
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
    pairs = [(a, b) for g in SYNONYM_GROUPS for a in g for b in g if a != b]
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
             "  END AS parts, "
             # the other words of its SYNONYM_GROUPS that are in some memory
             "  (SELECT json_agg(json_build_array(w.word, w.ndoc) ORDER BY y.i) "
             "   FROM unnest(%(syn_of)s::text[], %(syn)s::text[]) WITH ORDINALITY y(of, word, i) "
             "   JOIN clambake.memory_words w ON w.word = y.word AND w.ndoc > 0 WHERE y.of = st.lexeme) AS synonyms "
             "FROM st ORDER BY st.pos", {"t": free, "most": MAX_QUERY_WORDS,
                                         "syn_of": [a for a, _ in pairs], "syn": [b for _, b in pairs]})
    n = (rows[0]["n"] if rows else 0) or 0
    return n, [{"lexeme": r["lexeme"], "ndoc": r["ndoc"], "nprefix": r["nprefix"],
                "synonyms": [(w, nd, SYNONYM_FACTOR) for w, nd in r["synonyms"] or []],
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
    groups, weights, prefixed, corrections = [], [], [], {}
    for t in terms:
        weight = FILLER_FACTOR if t["lexeme"] in FILLER_WORDS else 1.0
        alts = [(t["lexeme"], t["ndoc"], weight)]
        # longer words it begins (env -> environ, config -> configur) and synonyms, but not for a
        # common word: it has matches enough, and these would only add thousands of candidates to rank
        rare = t["ndoc"] <= max(COMMON_MIN, COMMON_SHARE * n)
        has_prefix = bool(t["nprefix"]) and rare
        if has_prefix:
            alts.append((t["lexeme"], t["nprefix"], PREFIX_FACTOR * weight))
        if rare:
            alts += t["synonyms"]
        if t["alts"]:
            # the typed word stays in the query: harmless when unknown, right when it is a rare real word
            alts += t["alts"]
            if not t["ndoc"]:
                corrections[t["lexeme"]] = [a[0] for a in t["alts"]]
        if any(nd for _, nd, _ in alts):
            groups.append(alts)
            weights.append(weight)
            prefixed.append(has_prefix)
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
            params[key] = tsq_lexeme(lex) + (":*" if a == PREFIX_ALT and prefixed[g] else "")
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
        if len(common_groups) == 1:     # one common word (or its alternatives): "all" and "any" are the same
            filters.append(f"mem.search_tsv @@ {any_q}")
        else:
            all_q = "(" + " && ".join(f"({' || '.join(gq)})" for gq in common_groups) + ")"
            filters.append(f"mem.search_tsv @@ (SELECT CASE WHEN count(*) >= %(lim)s THEN {all_q} ELSE {any_q} "
                           f"END FROM (SELECT 1 FROM {MEMORY_VIEW} WHERE {base} AND mem.search_tsv @@ {all_q} "
                           f"LIMIT %(lim)s) enough)")
    cols = ", ".join(f"{e} AS s{g}" for g, e in enumerate(group_scores)) or "0 AS s0"
    total_score = " + ".join(f"s{g}" for g in range(len(group_scores))) or "1"    # no word: newest first
    # the share of the query's words a memory contains multiplies its score (a memory with every
    # word beats one with the rarest word alone); words next to each other as typed count a little more
    coverage = " + ".join(f"{weights[g]} * (s{g} > 0)::int" for g in range(len(group_scores))) or "1"
    whole = " || ".join(cand + common_cand)
    rows = q(f"SELECT id, scope, ({total_score}) * ({coverage})::float / {sum(weights) or 1} * recency "
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
COMMAND_NAMES = frozenset(n for n, _, _ in COMMANDS)


# The commands whose code is in a part of its own (clambake.py's docstring): main() loads it for them.
COMMAND_PARTS = {"import": "knowledge", "export": "knowledge", "consolidate": "knowledge", "server": "server",
                 "hook": "hooks", "off": "hooks", "on": "hooks", "install-hooks": "hooks", "uninstall-hooks": "hooks",
                 "dashboard": "dashboard"}
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
    names = COMMAND_NAMES
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


class _Spec:
    """Stands in for the argparse module in build_parser(): the same declarations, only recorded (parsers,
    their options, positionals, mutually exclusive groups and defaults), for fast_parse().  Importing argparse
    and building a subcommand's parser costs about 4 ms per process, more than most commands' own work."""
    SUPPRESS = "==SUPPRESS=="
    RawDescriptionHelpFormatter = None

    class ArgumentParser:
        def __init__(self, *args, parents=(), **kw):
            self.options = [o for parent in parents for o in parent.options]
            self.positionals, self.exclusive, self.defaults, self.subs = [], [], {}, {}
            self.sub_dest = None

        def add_argument(self, *flags, **kw):
            (self.options if flags[0].startswith("-") else self.positionals).append((flags, kw))

        def add_argument_group(self, *args, **kw):
            return self

        def add_mutually_exclusive_group(self, **kw):
            group = _SpecGroup(self)
            self.exclusive.append(group.dests)
            return group

        def set_defaults(self, **kw):
            self.defaults.update(kw)

        def add_subparsers(self, dest=None, **kw):
            self.sub_dest = dest
            return self

        def add_parser(self, name, **kw):
            self.subs[name] = sub = type(self)(**kw)
            return sub


class _SpecGroup:
    """A mutually exclusive group of a recorded parser: its options go to the parser; the group keeps dests."""

    def __init__(self, parser):
        self.parser, self.dests = parser, []

    def add_argument(self, *flags, **kw):
        self.parser.add_argument(*flags, **kw)
        self.dests.append(option_dest(flags, kw))


def option_dest(flags, kw):
    """The attribute an option sets, as argparse names it (--reply-to: reply_to)."""
    if "dest" in kw:
        return kw["dest"]
    name = next((f for f in flags if f.startswith("--")), flags[0])
    return name.lstrip("-").replace("-", "_")


class _Declined(Exception):
    """fast_parse() leaves this command line to argparse (its help, errors and rarer forms)."""


def fast_parse(argv):
    """The parsed arguments of a plain command line, from the same declarations as build_parser(), without
    argparse: the subcommand first, then options by their exact names (--name value, --name=value, -x value)
    and positionals.  Anything else - help, --version, an abbreviated or unknown option, a missing or
    invalid value, a missing required option, two options of one exclusive group, `--` - gives None, and
    argparse parses it as before, with its own messages.  tests/test_cli.py checks that both agree."""
    if not argv or argv[0] not in COMMAND_NAMES:
        return None
    root = build_parser(argv[0], argparse=_Spec)
    sp = root.subs[argv[0]]
    flags = {f: (fl, kw) for fl, kw in sp.options for f in fl}
    try:
        got, given, positionals = {}, set(), []
        i = 1
        while i < len(argv):
            a, i = argv[i], i + 1
            if not a.startswith("-") or a == "-":
                positionals.append(a)
                continue
            name, eq, value = a.partition("=") if a.startswith("--") else (a, "", "")
            fl, kw = flags.get(name) or _declined()
            dest, action = option_dest(fl, kw), kw.get("action")
            if action == "store_true" and not eq:
                got[dest] = True
            elif action in (None, "append") and kw.get("nargs") is None:
                if not eq:
                    if i >= len(argv) or (argv[i].startswith("-") and argv[i] != "-"):
                        _declined()
                    value, i = argv[i], i + 1
                value = typed(kw, value)
                if action == "append":
                    got[dest] = (got[dest] if dest in given else list(kw.get("default") or [])) + [value]
                else:
                    got[dest] = value
            else:
                _declined()
            given.add(dest)
        if len(positionals) != len(sp.positionals) or any(kw.get("nargs") is not None for _, kw in sp.positionals):
            _declined()
        for (fl, kw), value in zip(sp.positionals, positionals):
            got[option_dest(fl, kw)] = typed(kw, value)
        if any(kw.get("required") and option_dest(fl, kw) not in given for fl, kw in sp.options) \
                or any(len(given.intersection(group)) > 1 for group in sp.exclusive):
            _declined()
    except _Declined:
        return None
    args = {option_dest(fl, kw): kw.get("default") for fl, kw in root.options if kw.get("action") != "version"}
    args[root.sub_dest] = argv[0]
    for fl, kw in sp.options:
        default = kw.get("default", False if kw.get("action") == "store_true" else None)
        if default != _Spec.SUPPRESS:
            # argparse converts a string default with the option's type (choices are not checked on it)
            args[option_dest(fl, kw)] = kw["type"](default) if isinstance(default, str) and "type" in kw else default
    args.update(sp.defaults)
    args.update(got)
    import types
    return types.SimpleNamespace(**args)


def _declined():
    raise _Declined()


def typed(kw, value):
    """An option's value converted and checked as argparse would (type, choices), or _Declined."""
    try:
        value = kw["type"](value) if "type" in kw else value
    except (TypeError, ValueError):
        _declined()
    if "choices" in kw and value not in kw["choices"]:
        _declined()
    return value


def build_parser(only=None, argparse=None):
    """The argument parser; with `only`, just that subcommand's parser (same parsing and help).  With
    argparse=_Spec, the same declarations recorded for fast_parse()."""
    argparse = argparse or import_argparse()
    # recorded for fast_parse: no help texts, which would look for the installed command on PATH (many file
    # checks on Windows, PATH times PATHEXT) for a command that may never print one
    recording = argparse is _Spec

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
    parser = Parser(prog="clambake" if recording or installed_command() else "clambake.py",
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
        """A subcommand running `func`: a function, or the name of one in its part (COMMAND_PARTS)."""
        if only is not None and name != only:
            return _Skipped()
        purpose, example = purposes[name]
        sp = sub.add_parser(name, description=None if recording else f"{purpose}.\nexample: {script_cmd()} {example}",
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

    sp = add("import", "cmd_import")
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

    sp = add("export", "cmd_export")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--project", "-p")
    g.add_argument("--global", dest="global_", action="store_true")
    sp.add_argument("--format", default="md", help="md (default) or jsonl")
    sp.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    sp.add_argument("--status", default="any", help="only this status (default any; active for a template)")
    sp.add_argument("--type", help="only this type")

    sp = add("consolidate", "cmd_consolidate")
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

    for name, func in (("off", "cmd_off"), ("on", "cmd_on")):
        sp = add(name, func)
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--project", nargs="?", const="", metavar="NAME",
                       help="every session of a project (default: yours, or this directory's)")
        g.add_argument("--session", action="store_true", help="this session only (the default)")

    sp = add("hook", "cmd_hook", json_flag=False)
    sp.add_argument("event", choices=list(HOOK_EVENTS), help=", ".join(HOOK_EVENTS))

    sp = add("dashboard", "serve_dashboard", json_flag=False)
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs "
                                                        "the token)")
    sp.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    sp.add_argument("--open", action="store_true", help="open the page in a browser")
    sp.add_argument("--write", action="store_true", help="allow steering: send, release/extend claims, "
                                                         "mark memories")
    sp.add_argument("--allow-host", action="append", metavar="NAME",
                    help="accept this Host name too (DNS rebinding guard; IP addresses always pass)")
    sp.add_argument("--poll", default="1s", help=argparse.SUPPRESS)

    for name, func in (("install-hooks", "cmd_install_hooks"), ("uninstall-hooks", "cmd_uninstall_hooks")):
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

    sp = add("server", "cmd_server")
    sp.add_argument("action", choices=("start", "stop", "status"), help="start, stop or status")
    sp.add_argument("--port", type=int, help=f"port on 127.0.0.1 (default CLAMBAKE_DB_PORT or {SERVER_PORT})")
    sp.add_argument("--init", action="store_true", help="with start: apply the schema also to an existing cluster")
    return parser


def report_error(e):
    sys.stderr.write(f"clambake: error: {term_safe(str(e))}\n")
    if getattr(e, "hint", None):
        sys.stderr.write(f"hint: {term_safe(e.hint)}\n")


def part_function(part, name):
    """The function `name` of a part (clambake.py's docstring), loading the part first."""
    load(part)
    return globals()[name]


class HookArgs:
    """The arguments of `hook EVENT` as the parser would give them (main() skips the parser for that form)."""
    command, json, as_ = "hook", False, None

    def __init__(self, event):
        self.event = event


def main(argv=None):
    try:
        sys.stdout.reconfigure(errors="replace")
        sys.stderr.reconfigure(errors="replace")
    except (AttributeError, ValueError):
        pass
    argv = glue_dash_values(list(sys.argv[1:] if argv is None else argv))
    try:
        check_utf8(argv)
        if len(argv) == 2 and argv[0] == "hook" and argv[1] in HOOK_EVENTS:
            # the exact form install-hooks writes, run on every prompt and tool call: no parser to build
            return part_function(COMMAND_PARTS["hook"], "cmd_hook")(HookArgs(argv[1]))
        try:
            args = fast_parse(argv) or build_parser(command_in(argv)).parse_args(argv)
        except SystemExit as e:          # --help / --version
            return e.code if isinstance(e.code, int) else OK
        if not getattr(args, "func", None):
            build_parser().print_help()
            return USAGE
        if getattr(args, "as_", None) and args.command in NO_IDENTITY:
            raise ClambakeError(f"--as has no meaning for {args.command}", USAGE)
        func = args.func if callable(args.func) else part_function(COMMAND_PARTS[args.command], args.func)
        return func(args)
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


def cli():
    """The command line: the console script `clambake` and `python clambake.py`.  main() does the work and
    returns the exit code (tests call it in-process); then the process ends at once with os._exit, after
    flushing its output.  Python's own teardown (freeing every module, OpenSSL's exit handlers) costs about
    10 ms, more than most commands' own work, and nothing of clambake's needs it: files are closed where
    they are written, the connection is closed by main(), and the only threads are daemon threads."""
    code = main()
    code = code if isinstance(code, int) else 0 if code is None else 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):   # a closed pipe (`| head`) or no stream: not an error
            pass
    os._exit(code & 0xFF if code >= 0 else 1)


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
