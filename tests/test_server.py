"""`clambake server start|stop|status`: a private PostgreSQL with the database and login that match
clambake's defaults, and one-line errors for a taken port and a data directory of another version."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from conftest import SCRIPT

pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_env(pg):
    import clambake
    bindir = pg.bindir
    if bindir is None:
        try:
            bindir = clambake.find_pg_bindir()[0]
        except clambake.ClambakeError as e:
            pytest.skip(f"no PostgreSQL server binaries: {e}")
    # the postgres OS user (when root) must be able to enter the directory: not under pytest's 0700 tmp
    base = tempfile.mkdtemp(prefix="clambake-server-test-", dir="/tmp" if os.name != "nt" else None)
    os.chmod(base, 0o755)
    env = {"CLAMBAKE_PG_BINDIR": bindir, "CLAMBAKE_SERVER_DIR": os.path.join(base, "srv")}
    yield env
    run("server", "stop", env=env)
    shutil.rmtree(base, ignore_errors=True)


def run(*argv, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CLAMBAKE_", "PG"))}
    full.update(env or {})
    return subprocess.run([sys.executable, SCRIPT] + list(argv), capture_output=True, text=True, timeout=180,
                          env=full, stdin=subprocess.DEVNULL, cwd="/")


def test_server_start_status_stop(server_env):
    port = free_port()
    env = dict(server_env, CLAMBAKE_DB_PORT=str(port))
    res = run("server", "status", env=env)
    assert res.returncode == 3 and "not running" in res.stdout, res
    res = run("server", "start", env=env)
    assert res.returncode == 0, res
    assert f"running on 127.0.0.1:{port}" in res.stdout and "schema created" in res.stdout, res.stdout
    # clambake's default database, user and password, with the schema: status works at once
    res = run("status", env=env)
    assert res.returncode == 0 and "live instances: 0" in res.stdout, res
    res = run("register", "--project", "srv", "--dir", "/", env=env)
    assert res.returncode == 0, res
    # start again: already running, nothing recreated
    res = run("server", "start", env=env)
    assert res.returncode == 0 and "schema created" not in res.stdout, res
    res = run("server", "status", "--json", env=env)
    assert res.returncode == 0 and f'"port":{port}' in res.stdout and '"state":"running"' in res.stdout, res
    res = run("server", "stop", env=env)
    assert res.returncode == 0 and "stopped" in res.stdout, res
    res = run("status", env=env)
    assert res.returncode == 3, res
    # started again (another port): the data is still there
    port2 = free_port()
    res = run("server", "start", "--port", str(port2), env=env)
    assert res.returncode == 0 and f":{port2}" in res.stdout and f"CLAMBAKE_DB_PORT={port2}" in res.stdout, res
    res = run("status", env=dict(env, CLAMBAKE_DB_PORT=str(port2)))
    assert res.returncode == 0 and "srv-" in res.stdout, res


def test_server_port_taken(server_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run("server", "start", "--port", str(port), env=server_env)
    assert res.returncode == 1, res
    lines = res.stderr.strip().splitlines()
    assert lines[0] == f"clambake: error: port {port} on 127.0.0.1 is taken (another server is listening there)"
    assert lines[1].startswith("hint: choose another port: ") and f"--port {port + 1}" in lines[1]
    assert len(lines) == 2 and not os.path.exists(os.path.join(server_env["CLAMBAKE_SERVER_DIR"], "data"))


def test_server_data_dir_of_another_major_version(server_env):
    data = os.path.join(server_env["CLAMBAKE_SERVER_DIR"], "data")
    os.makedirs(data)
    with open(os.path.join(data, "PG_VERSION"), "w") as f:
        f.write("9\n")
    res = run("server", "start", "--port", str(free_port()), env=server_env)
    assert res.returncode == 1, res
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith(f"clambake: error: the data directory {data} was made by PostgreSQL 9, "), lines
    assert lines[1].startswith("hint: use PostgreSQL 9's binaries") and len(lines) == 2
    assert "Traceback" not in res.stderr


def test_server_without_binaries_says_how_to_get_them(tmp_path):
    res = run("server", "start", env={"CLAMBAKE_PG_BINDIR": str(tmp_path)})
    assert res.returncode == 2 and res.stderr.startswith("clambake: error: CLAMBAKE_PG_BINDIR="), res
