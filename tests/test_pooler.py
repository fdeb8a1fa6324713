"""Clambake behind PgBouncer in transaction pooling mode (a real pgbouncer in front of the test server).

PgBouncer refuses the `options` startup parameter that clambake normally uses for its timeouts, and
it hands one server connection to many clients.  Clambake must connect anyway, keep its timeouts, not
leave them on the shared server connection, and `wait` must still work (by polling: LISTEN does not
survive transaction pooling)."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import sys

import psycopg2
import psycopg2.extensions
import pytest

from conftest import SCRIPT


def find_pgbouncer():
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bouncer(db):
    exe = find_pgbouncer()
    if not exe:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it)")
    info = psycopg2.extensions.parse_dsn(db.dsn)
    port = free_port()
    work = tempfile.mkdtemp(prefix="clambake-pgbouncer-")
    target = "host=%s port=%s" % (info.get("host", "127.0.0.1"), info.get("port", 5432))
    if info.get("password"):
        target += " user=%s password=%s" % (info.get("user"), info["password"])
    with open(os.path.join(work, "pgbouncer.ini"), "w") as f:
        f.write("[databases]\n* = %s\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\n"
                "auth_type = trust\nauth_file = %s/users.txt\npool_mode = transaction\n"
                "default_pool_size = 1\nmax_client_conn = 50\nunix_socket_dir =\nlogfile = %s/log\n"
                % (target, port, work, work))
    with open(os.path.join(work, "users.txt"), "w") as f:
        f.write('"%s" ""\n' % info.get("user", "postgres"))
    argv = [exe, os.path.join(work, "pgbouncer.ini")]
    if os.geteuid() == 0:                    # pgbouncer refuses to run as root
        shutil.chown(work, "postgres")
        for name in os.listdir(work):
            shutil.chown(os.path.join(work, name), "postgres")
        argv = ["runuser", "-u", "postgres", "--"] + argv
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dsn = "host=127.0.0.1 port=%d dbname=%s user=%s" % (port, info["dbname"], info.get("user", "postgres"))
    deadline = time.monotonic() + 15
    while True:
        try:
            psycopg2.connect(dsn, connect_timeout=2).close()
            break
        except psycopg2.OperationalError:
            assert proc.poll() is None and time.monotonic() < deadline, "pgbouncer did not start"
            time.sleep(0.1)
    try:
        yield dsn
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def assert_pool_keeps_no_timeouts(bouncer):
    """The one pooled server connection does not keep clambake's timeouts for the next client."""
    conn = psycopg2.connect(bouncer)
    try:
        cur = conn.cursor()
        cur.execute("SHOW statement_timeout")
        assert cur.fetchone()[0] == "0"
    finally:
        conn.close()


def test_commands_work_behind_pgbouncer_and_leave_no_settings_behind(bouncer, cb, tmp_path):
    env = {"CLAMBAKE_DSN": bouncer}
    a = cb.json("register", "--project", "alpha", "--dir", str(tmp_path / "a"), env=env)["instance_id"]
    b = cb.json("register", "--project", "beta", "--dir", str(tmp_path / "b"), env=env)["instance_id"]
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuild", "--as", a,
              env=env).code == 0
    res = cb("send", "--type", "blocker", "--resource", "docker", "--subject", "me too", "--as", b, env=env)
    assert res.code == 1 and a in res.err
    assert cb("check", "docker", "--as", b, env=env).code == 1
    inbox = cb.json("inbox", "--as", b, env=env)
    assert [m["subject"] for m in inbox["messages"]] == ["rebuild"]
    assert cb("remember", "--project", "alpha", "--type", "gotcha", "--title", "Pooler in front",
              "--content", "transaction pooling drops LISTEN", env=env).code == 0
    assert cb.json("recall", "--project", "alpha", "--search", "pooling", env=env)["total"] == 1
    assert cb("status", env=env).code == 0
    assert_pool_keeps_no_timeouts(bouncer)
    # wait still wakes up (by its poll: notifications do not pass transaction pooling)
    w = subprocess.Popen([sys.executable, SCRIPT, "wait", "--as", b, "--timeout", "20"],
                         env=dict(os.environ, CLAMBAKE_DSN=bouncer), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    assert cb("send", "--to", b, "--subject", "through the pooler", "--as", a, env=env).code == 0
    out, err = w.communicate(timeout=30)
    assert w.returncode == 0, err
    assert "through the pooler" in out


def test_import_export_and_merge_work_behind_pgbouncer(bouncer, cb, tmp_path):
    """import stores each file in one transaction with a multi-row INSERT; under transaction pooling
    the timeouts must ride along (SET LOCAL) and nothing may stay on the pooled connection."""
    env = {"CLAMBAKE_DSN": bouncer}
    notes = tmp_path / "NOTES.md"
    notes.write_text("# Ops\n\n## Gotchas\n\n### Restart order\n\nStart db before api.\n\n"
                     "### Restarting the stack\n\nStart the db before the api, always.\n")
    res = cb("import", str(notes), "--project", "alpha", env=env)
    assert res.code == 0 and "2 new" in res.out, res
    assert "2 unchanged" in cb("import", str(notes), "--project", "alpha", env=env).out
    ids = [m["id"] for m in cb.json("recall", "--project", "alpha", env=env)["memories"]]
    res = cb.json("remember", "--project", "alpha", "--type", "gotcha", "--title", "Restart order",
                  "--content", "Start the db before the api.", "--supersedes", ",".join(map(str, ids)), env=env)
    assert res["supersedes"] == sorted(ids)
    lines = cb("export", "--project", "alpha", "--format", "jsonl", env=env).out.splitlines()
    assert sorted(json.loads(ln)["status"] for ln in lines) == ["active", "superseded", "superseded"]
    assert cb("consolidate", "--project", "alpha", env=env).code == 0
    assert_pool_keeps_no_timeouts(bouncer)
