"""install-hooks beyond the basics (test_hooks.py): shared project settings, CLAUDE_CONFIG_DIR, the
user-level CLAUDE.md block, connection settings in the settings' env, inert-hook warnings; the commands
shown to agents and written for hooks, quoted for bash and PowerShell; a missing psycopg2."""

import json
import os
import subprocess
import sys

import pytest

from conftest import SCRIPT, copy_program


def hooks_of(path):
    data = json.loads(path.read_text())
    return [h for groups in data.get("hooks", {}).values() for g in groups for h in g["hooks"]]


def test_project_settings_refused_without_an_installed_command(cb, tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    res = cb("install-hooks", "--project", env={"HOME": str(tmp_path)}, cwd=str(proj))
    assert res.code == 1, res
    lines = res.err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("clambake: error: ") and "machine's paths" in lines[0]
    assert lines[1].startswith("hint: use --local")
    assert not (proj / ".claude").exists()


def test_claude_config_dir_is_respected(cb, tmp_path):
    cfg = tmp_path / "cfg"
    res = cb("install-hooks", env={"HOME": str(tmp_path / "home"), "CLAUDE_CONFIG_DIR": str(cfg)})
    assert res.code == 0, res
    assert hooks_of(cfg / "settings.json") and not (tmp_path / "home" / ".claude").exists()
    assert cb("uninstall-hooks", env={"HOME": str(tmp_path / "home"), "CLAUDE_CONFIG_DIR": str(cfg)}).code == 0
    assert hooks_of(cfg / "settings.json") == []


def test_claude_md_block_is_idempotent_and_uninstall_removes_it(cb, tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    mine = "# My rules\n\nAlways run the linter.\n"
    (cfg / "CLAUDE.md").write_text(mine)
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(cfg)}
    assert cb("install-hooks", "--claude-md", env=env).code == 0
    once = (cfg / "CLAUDE.md").read_text()
    assert once.startswith(mine) and once.count("<!-- clambake:begin") == 1 and "<!-- clambake:end -->" in once
    block = once[len(mine):]
    for word in ("--type blocker --resource", "--type done --resource", "--reply-to", "remember"):
        assert word in block, word
    assert SCRIPT in block                    # runs as shown: this interpreter and this file
    assert cb("install-hooks", "--claude-md", env=env).code == 0
    assert (cfg / "CLAUDE.md").read_text() == once
    res = cb("uninstall-hooks", env=env)
    assert res.code == 0 and "removed clambake block" in res.out, res
    assert (cfg / "CLAUDE.md").read_text() == mine


def test_env_written_without_a_password_unless_asked(cb, tmp_path):
    cfg = tmp_path / "cfg"
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(cfg), "CLAMBAKE_DSN": None,
           "CLAMBAKE_DB_PORT": "6543", "CLAMBAKE_DB_PASS": "s3cret"}
    assert cb("install-hooks", "--env", env=env).code == 0
    written = json.loads((cfg / "settings.json").read_text())["env"]
    assert written["CLAMBAKE_DB_PORT"] == "6543" and written["CLAMBAKE_DB_NAME"] == "docdb"
    assert "CLAMBAKE_DB_PASS" not in written and "s3cret" not in (cfg / "settings.json").read_text()
    assert cb("install-hooks", "--env", "--with-password", env=env).code == 0
    assert json.loads((cfg / "settings.json").read_text())["env"]["CLAMBAKE_DB_PASS"] == "s3cret"
    dsn_env = dict(env, CLAMBAKE_DSN="postgresql://bob:hunter2@db.example:5544/coord")
    cfg2 = tmp_path / "cfg2"
    assert cb("install-hooks", "--env", env=dict(dsn_env, CLAUDE_CONFIG_DIR=str(cfg2))).code == 0
    text = (cfg2 / "settings.json").read_text()
    assert "hunter2" not in text and "db.example" in json.loads(text)["env"]["CLAMBAKE_DSN"]


def test_warns_when_settings_make_hooks_inert(cb, tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "settings.json").write_text(json.dumps({"disableAllHooks": True}))
    res = cb("install-hooks", env={"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(cfg)})
    assert res.code == 0
    assert "warning:" in res.err and "disableAllHooks" in res.err, res


# --------------------------------------------------------------------------
# commands as shells read them
# --------------------------------------------------------------------------

def bash_words(line):
    """The words bash makes of a command line (as Git Bash and sh -c would run it)."""
    out = subprocess.run(["bash", "-c", "printf '%s\\0' " + line], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().split("\0")[:-1]


POWERSHELL_SPECIAL = set("$`;|&(){},<>@#\"'")


def powershell_words(line):
    """Split a PowerShell call-operator line `& 'exe' arg ...` by PowerShell's rules for these words:
    single-quoted strings are literal ('' is a quote); a bare word must hold none of PowerShell's special
    characters.  Fails on anything else."""
    assert line.startswith("& "), line
    words, i, rest = [], 0, line[2:]
    while i < len(rest):
        if rest[i] == " ":
            i += 1
            continue
        if rest[i] == "'":
            j, buf = i + 1, ""
            while True:
                k = rest.index("'", j)
                buf += rest[j:k]
                if rest[k + 1:k + 2] == "'":
                    buf, j = buf + "'", k + 2
                    continue
                i = k + 1
                break
            words.append(buf)
        else:
            k = rest.find(" ", i)
            k = len(rest) if k < 0 else k
            word = rest[i:k]
            assert not (set(word) & POWERSHELL_SPECIAL), word
            words.append(word)
            i = k
    return words


WINDOWS_CASES = [
    # (interpreter, script) as Windows spells them -> the words the hook must run
    (r"C:\Python311\python.exe", r"F:\Docker\clambake\clambake.py"),
    (r"C:\Program Files\Python311\python.exe", r"F:\Docker\clam bake\clambake.py"),
    (r"C:\Users\Jo Smith\AppData\Local\Programs\Python\Python312\python.exe", r"\\nas\share\tools\clambake.py"),
    (r"D:\py\python.exe", r"\\nas\share\my tools\clambake.py"),
]


@pytest.mark.parametrize("exe, script", WINDOWS_CASES)
def test_windows_hook_commands_under_bash_and_powershell(exe, script):
    import clambake
    words = [exe, "-c", clambake.HOOK_LOADER, script, "hook", "prompt"]
    expect = [exe.replace("\\", "/"), "-c", clambake.HOOK_LOADER, script.replace("\\", "/"), "hook", "prompt"]
    line, shell = clambake.hook_line(words, windows=True, bash=True)
    assert shell is None and "\\" not in line
    assert bash_words(line) == expect, line
    if " " not in exe:
        # a bare first word: the same line runs in PowerShell as it is
        assert not line.startswith("'")
        assert powershell_words("& " + line) == expect
    ps_line, ps_shell = clambake.hook_line(words, windows=True, bash=False)
    if " " in exe:
        assert ps_shell == "powershell" and powershell_words(ps_line) == expect, ps_line
    else:
        assert ps_shell is None and ps_line == line


def test_posix_hook_command_with_spaces_runs_under_sh(tmp_path):
    import clambake
    odd = tmp_path / "dir with 'quotes' and spaces"
    target = copy_program(odd)
    line, shell = clambake.hook_line([sys.executable, "-c", clambake.HOOK_LOADER, str(target), "--version"])
    assert shell is None
    out = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0 and out.stdout.startswith("clambake "), out


def test_script_cmd_runs_as_printed_from_another_directory(tmp_path):
    import clambake
    cmd = clambake.script_cmd()
    out = subprocess.run(["bash", "-c", cmd + " --version"], capture_output=True, text=True, timeout=60,
                         cwd=str(tmp_path), env={k: v for k, v in os.environ.items() if k != "PATH"})
    assert out.returncode == 0 and out.stdout.startswith("clambake "), (cmd, out)


def test_missing_psycopg2_is_one_line(tmp_path):
    venv = tmp_path / "bare"
    assert subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120).returncode == 0
    py = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    res = subprocess.run([str(py), SCRIPT, "status"], capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 3, res
    assert lines == [f"clambake: error: psycopg2 is not installed for {py}",
                     f"hint: install it: {py} -m pip install psycopg2-binary"], lines
