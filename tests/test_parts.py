"""clambake.py and its parts (clambake_core.py, clambake_hooks.py, ...; clambake.py's docstring): one
program in one namespace, loaded from cached compiled code, only the parts a command needs.

A part runs in clambake.py's namespace only when its command needs it, so a name one part uses but
only another part defines would fail only on some path at run time: the first test proves statically
that every part uses only clambake.py's, the core's and its own names.
"""

import builtins
import json
import os
import re
import subprocess
import sys
import symtable

import pytest

from conftest import PROGRAM_FILES, REPO, copy_program

PY = sys.executable
PARTS = [n for n in PROGRAM_FILES if n.startswith("clambake") and n.endswith(".py")]


def names_of(path):
    """(names a file defines at module level, {global name it uses: where})."""
    with open(path, encoding="utf-8") as f:
        top = symtable.symtable(f.read(), path, "exec")
    defined, used = set(), {}

    def walk(table):
        for s in table.get_symbols():
            module = table.get_type() == "module"
            if module and (s.is_assigned() or s.is_imported()):
                defined.add(s.get_name())
            elif s.is_referenced() and (module or s.is_global()):
                used.setdefault(s.get_name(), table.get_name())
            if not module and s.is_declared_global() and s.is_assigned():
                defined.add(s.get_name())
        for child in table.get_children():
            walk(child)

    walk(top)
    return defined, used


def test_every_part_uses_only_names_it_is_sure_to_have():
    info = {name: names_of(os.path.join(REPO, name)) for name in PARTS}
    always = info["clambake.py"][0] | info["clambake_core.py"][0] | set(dir(builtins)) | {"__file__"}
    problems = []
    for name in PARTS:
        defined, used = info[name]
        for var, where in sorted(used.items()):
            if var not in always | defined:
                owner = [n for n in PARTS if var in info[n][0]] or ["nowhere"]
                problems.append(f"{name}: {where}() uses {var}, defined in {', '.join(owner)}")
    assert not problems, "\n".join(problems)


def test_the_parts_ship_in_the_wheel_and_the_sdist():
    with open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8") as f:
        pyproject = f.read()
    for name in PARTS[1:]:
        assert f'"{name}" = "clambake_files/{name}"' in pyproject, name
        assert f'"{name}"' in pyproject.split("[tool.hatch.build.targets.sdist]")[1], name


def run(script, *args, cwd=None, env=None):
    p = subprocess.run([PY, str(script)] + list(args), capture_output=True, text=True, timeout=60,
                       cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def test_a_script_run_keeps_compiled_parts_and_never_runs_a_stale_one(tmp_path):
    script = copy_program(tmp_path / "prog")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code, out, err = run(script, "--help", env=env)
    assert code == 0 and "live instances, claims, open blockers" in out, err
    cache = tmp_path / "prog" / "__pycache__"
    assert any(p.name.startswith("clambake_core.") for p in cache.iterdir())     # kept for the next run
    assert not any(p.name.startswith("clambake_hooks.") for p in cache.iterdir())  # --help needs no hooks
    core = tmp_path / "prog" / "clambake_core.py"
    text = core.read_text(encoding="utf-8")
    edited = text.replace("live instances, claims, open blockers", "who is live, what is held, what blocks")
    assert edited != text
    core.write_text(edited, encoding="utf-8")
    st = os.stat(core)
    os.utime(core, (st.st_atime, st.st_mtime + 2))    # a later edit in the same second is caught by size too
    code, out, err = run(script, "--help", env=env)
    assert code == 0 and "who is live, what is held, what blocks" in out, err


def test_install_hooks_compiles_every_part_even_under_dontwritebytecode(tmp_path):
    """Hooks run on every prompt and tool call: their parts must not be compiled on each of them, also
    where PYTHONDONTWRITEBYTECODE keeps Python from caching anything itself."""
    script = copy_program(tmp_path / "prog")
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    code, out, err = run(script, "install-hooks", env=env)
    assert code == 0, err
    cached = {p.name.split(".")[0] for p in (tmp_path / "prog" / "__pycache__").iterdir()}
    assert {"clambake_core", "clambake_hooks", "clambake_knowledge", "clambake_server",
            "clambake_dashboard"} <= cached, cached


def loaded_parts(argv, cwd, stdin=""):
    src = ("import sys, io, contextlib; sys.path.insert(0, sys.argv[1]); import clambake\n"
           "with contextlib.redirect_stdout(io.StringIO()): clambake.main(sys.argv[2:])\n"
           "print(','.join(clambake._loaded))")
    p = subprocess.run([PY, "-c", src, REPO] + argv, capture_output=True, text=True, timeout=60, cwd=cwd,
                       input=stdin)
    return p.stdout.strip().splitlines()[-1], p.stderr


def test_a_command_loads_only_the_part_it_needs(db, tmp_path):
    assert loaded_parts(["status"], str(tmp_path))[0] == "core"
    assert loaded_parts(["check", "docker"], str(tmp_path))[0] == "core"
    assert loaded_parts(["hook", "prompt"], str(tmp_path), stdin="{}")[0] == "core,hooks"
    assert loaded_parts(["consolidate", "--global"], str(tmp_path))[0] == "core,knowledge"


def test_a_missing_part_is_a_one_line_error_and_the_rest_still_works(db, tmp_path):
    script = copy_program(tmp_path / "prog")
    os.remove(tmp_path / "prog" / "clambake_knowledge.py")
    code, out, err = run(script, "export", "--global", cwd=str(tmp_path))
    assert code == 1 and out == ""
    assert err.startswith("clambake: error: cannot read ") and "clambake_knowledge.py" in err, err
    assert "\nhint: copy every clambake_*.py with clambake.py" in err and "Traceback" not in err
    code, out, err = run(script, "status", cwd=str(tmp_path))
    assert code == 0 and "live instances" in out, err
    os.remove(tmp_path / "prog" / "clambake_core.py")
    code, out, err = run(script, "status", cwd=str(tmp_path))
    assert code == 1 and err.startswith("clambake: error: cannot read ") and "clambake_core.py" in err, err
    assert len(err.strip().splitlines()) == 2 and "Traceback" not in err


def test_names_of_every_part_are_attributes_of_the_module():
    import clambake
    assert callable(clambake.classify) and callable(clambake.main)          # core
    assert callable(clambake.command_effects)                                # hooks (the guard)
    assert callable(clambake.cmd_import) and callable(clambake.serve_dashboard)
    with pytest.raises(AttributeError):
        clambake.no_such_name


BUFFERED = {"PYTHONUNBUFFERED": None}


def test_the_quick_exit_delivers_all_output_and_the_exit_code(db, cb, cbp, tmp_path):
    """The command line ends with os._exit after main(): output that sits in Python's buffers must still
    arrive whole, the exit code must be main()'s, and a reader that stops early is not an error.  (Output is
    buffered as in a user's shell: without PYTHONUNBUFFERED, which some build machines set.)"""
    for i in range(200):
        res = cb("remember", "--global", "--type", "lesson", "--title", f"note {i:03d} about the build cache",
                 "--content", f"entry {i}: " + "the cache key must include the lockfile hash. " * 5)
        assert res.code == 0, res
    inproc = cb("recall", "--global", "--limit", "200", "--json")
    proc = cbp("recall", "--global", "--limit", "200", "--json", cwd=str(tmp_path), env=BUFFERED)
    assert proc.code == 0 and len(proc.out) > 70000, proc.err       # more than a pipe holds (64 KB)
    strip = lambda out: [(m["id"], m["title"], m["preview"]) for m in json.loads(out)["memories"]]  # noqa: E731
    assert strip(proc.out) == strip(inproc.out) and len(strip(proc.out)) == 200 and proc.out.endswith("}\n")
    text = cbp("recall", "--global", "--limit", "200", cwd=str(tmp_path), env=BUFFERED)
    text_inproc = cb("recall", "--global", "--limit", "200")
    ageless = lambda out: re.sub(r"\b\d+[smhd] ago\b", "", out)  # noqa: E731
    assert ageless(text.out) == ageless(text_inproc.out) and len(text.out.splitlines()) > 200
    small = cbp("status", cwd=str(tmp_path), env=BUFFERED)                # a few lines: all still in the buffer
    assert small.code == 0 and "live instances" in small.out and small.out.endswith("\n"), small.err
    assert cbp("send", "--to", "@all", cwd=str(tmp_path), env=BUFFERED).code == 2    # a usage error: still 2
    bad = cbp("status", env=dict(BUFFERED, CLAMBAKE_DSN="postgresql://nobody@127.0.0.1:1/none"), cwd=str(tmp_path))
    assert bad.code == 3 and bad.err.startswith("clambake: error: ")
    # a reader that takes 100 bytes and goes away (`| head -c 100`): exit 0, nothing on stderr
    p = subprocess.Popen([sys.executable, os.path.join(REPO, "clambake.py"), "recall", "--global", "--limit", "200",
                          "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(tmp_path),
                         env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"})
    assert len(p.stdout.read(100)) == 100
    p.stdout.close()
    assert p.wait(timeout=60) == 0
    assert p.stderr.read() == b""
