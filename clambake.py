#!/usr/bin/env python3
"""clambake - coordinate Claude Code sessions through a shared Postgres.

Every session registers itself, sees who else is working and on what, warns
the others before risky operations, claims resources so two sessions never
touch the same thing at once, and stores what it learned for the next session.

Usage: python clambake.py COMMAND [options]      (python clambake.py --help)

Exit codes: 0 done; 1 refused, not found, conflict or timed out; 2 bad usage or
invalid input; 3 database unreachable or login failed; 4 schema missing or
older than this program (run `python clambake.py init`).

The program is this module and its parts, files beside it that run in this
module's namespace (one program, one set of names: `clambake.q`, `clambake.main`):

    clambake_core.py       constants, helpers, the connection, identity, registry,
                           messages, embeddings, memory and recall, the session log,
                           maintenance, argument parsing, main() and cli()  (every process)
    clambake_knowledge.py  import, export, templates, consolidate
    clambake_server.py     server start|stop|status
    clambake_hooks.py      the Claude Code hooks, the guard, off/on, install-hooks
    clambake_dashboard.py  the dashboard's web server (its page: clambake_dashboard.html)

Why parts: Python compiles a script on every run (`python clambake.py status`
compiled all 340 KB of the program each time, 90 ms, more than the whole rest of
the command), but it keeps a module's compiled code in __pycache__.  A part is
loaded as a module is (importlib's own cache of compiled code, rewritten when the
source changes), and only the parts a command needs: main() loads the one its
command lives in (COMMAND_PARTS); any other name is found on first use by
module attribute access.  Installed from the wheel, the parts sit under
clambake_files/ beside this module.
"""

import os
import sys

__version__ = "2.0.0"

PARTS = ("core", "knowledge", "server", "hooks", "dashboard")
_loaded = []


def asset_path(name):
    """A file that ships with clambake: beside clambake.py in a checkout, under clambake_files/ beside the
    module when installed from the wheel (pyproject.toml lists them)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, name), os.path.join(here, "clambake_files", name)):
        if os.path.exists(path):
            return path
    return os.path.join(here, name)


def load(part):
    """Run part `part` (clambake_<part>.py) in this namespace, once, from its cached compiled code."""
    if part in _loaded:
        return
    from importlib.machinery import SourceFileLoader
    name = f"clambake_{part}"
    path = asset_path(name + ".py")
    try:
        code = SourceFileLoader(name, path).get_code(name)
    except OSError as e:
        why = (f"cannot read {path} ({e.strerror or e}): a part of clambake, which must sit beside clambake.py",
               "copy every clambake_*.py with clambake.py, or install clambake: pip install .")
        if part == "core":
            sys.stderr.write(f"clambake: error: {why[0]}\nhint: {why[1]}\n")
            raise SystemExit(1)
        raise ClambakeError(why[0], REFUSED, hint=why[1]) from None  # noqa: F821 (a name of the core)
    _loaded.append(part)
    try:
        exec(code, globals())
    except BaseException:
        _loaded.remove(part)
        raise


def __getattr__(name):
    """`clambake.NAME` for a name of a part not loaded yet: load the parts, then look again."""
    if not name.startswith("__"):
        for part in PARTS:
            load(part)
        if name in globals():
            return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


load("core")

if __name__ == "__main__":
    cli()  # noqa: F821 (defined by the core)
