"""The installed form: a wheel built from this checkout, installed into a fresh venv, gives a `clambake`
command that runs init, register and status from a directory outside the checkout (schema.sql comes from
the wheel), prints hints in its own installed form, and writes hook commands that name it."""

import json
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def run(argv, **kw):
    kw.setdefault("timeout", 300)
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    base = tmp_path_factory.mktemp("pkg")
    wheels = base / "wheels"
    proc = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                "-w", str(wheels), REPO])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = list(wheels.glob("clambake-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert "clambake = clambake:cli" in z.read(entry).decode()
    assert "clambake.py" in names and "clambake_files/schema.sql" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/"))], names
    env_dir = base / "venv"
    assert run([sys.executable, "-m", "venv", str(env_dir)]).returncode == 0
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    proc = run([str(bindir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return bindir


def env_for(bindir, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAMBAKE_", "PG", "CLAUDE_"))}
    env["PATH"] = str(bindir) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def test_installed_command_runs_outside_the_checkout(venv, empty_db, tmp_path):
    exe = str(venv / "clambake")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = env_for(venv, CLAMBAKE_DSN=empty_db.dsn, HOME=str(tmp_path))
    # before init: the installed command says how to fix it, in its own form
    res = run([exe, "status"], cwd=str(elsewhere), env=env)
    assert res.returncode == 4 and "hint: run: clambake init" in res.stderr, res.stderr
    res = run([exe, "init"], cwd=str(elsewhere), env=env)
    assert res.returncode == 0 and "schema clambake ready" in res.stdout, res.stdout + res.stderr
    res = run([exe, "inbox"], cwd=str(elsewhere), env=env)
    assert res.returncode == 1 and "hint: run: clambake register" in res.stderr, res.stderr
    res = run([exe, "register", "--project", "pkg-test", "--dir", str(elsewhere)], cwd=str(elsewhere), env=env)
    assert res.returncode == 0 and "registered pkg-test-" in res.stdout, res.stdout + res.stderr
    res = run([exe, "status"], cwd=str(elsewhere), env=env)
    assert res.returncode == 0 and "pkg-test" in res.stdout, res.stdout + res.stderr
    # the templates ship in the wheel too
    res = run([exe, "import", "--template", "python-web-api", "--project", "pkg-test"], cwd=str(elsewhere), env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run([exe, "recall", "--project", "pkg-test", "--json"], cwd=str(elsewhere), env=env)
    assert res.returncode == 0 and len(json.loads(res.stdout)["memories"]) >= 5, res.stdout
    # the module is installed with its cached bytecode: the console script never compiles it
    site = run([str(venv / "python"), "-c", "import clambake, sys; print(clambake.__file__); "
                "print(clambake.__cached__)"], env=env, cwd=str(elsewhere)).stdout.split()
    assert not site[0].startswith(REPO) and os.path.isfile(site[1]), site


def test_installed_hooks_name_the_installed_command(venv, tmp_path):
    exe = str(venv / "clambake")
    home = tmp_path / "home"
    home.mkdir()
    proj = tmp_path / "proj"
    proj.mkdir()
    env = env_for(venv, HOME=str(home))
    res = run([exe, "install-hooks"], cwd=str(proj), env=env)
    assert res.returncode == 0, res.stderr
    data = json.loads((home / ".claude" / "settings.json").read_text())
    commands = [h["command"] for groups in data["hooks"].values() for g in groups for h in g["hooks"]]
    assert commands and all(c.startswith(exe + " hook ") for c in commands), commands
    # the shared project settings get a command that is the same on every machine
    res = run([exe, "install-hooks", "--project"], cwd=str(proj), env=env)
    assert res.returncode == 0, res.stderr
    data = json.loads((proj / ".claude" / "settings.json").read_text())
    commands = [h["command"] for groups in data["hooks"].values() for g in groups for h in g["hooks"]]
    assert commands and all(c.startswith("clambake hook ") for c in commands), commands
    assert str(tmp_path) not in (proj / ".claude" / "settings.json").read_text()
    # and that command works as Claude Code runs it (sh -c, clambake on PATH): fails open without a database
    hook = subprocess.run(["sh", "-c", commands[0]], input="{}", capture_output=True, text=True, timeout=60,
                          env=dict(env, CLAMBAKE_DB_PORT="1"), cwd=str(proj))
    assert hook.returncode == 0 and "Traceback" not in hook.stderr, hook.stderr
