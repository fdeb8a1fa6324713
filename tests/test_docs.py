"""The docs cannot rot: every `clambake.py` command shown in README.md,
CLAUDE.md and PROTOCOL.md runs here, in document order, against a real
database, and must exit 0.

What counts as a command: a line in a fenced code block tagged bash, sh, shell
or untagged that runs clambake, installed (`clambake ...`) or from a checkout
(`python clambake.py ...`, `python3 /some/path/clambake.py ...`), optionally
after `VAR=value` prefixes or `echo TEXT |`, which becomes standard input.
Both forms run the same main() in-process.  `server` lines are not run (they
start a real PostgreSQL: tests/test_server.py covers them). `\\` continuations are joined
and `# comments` dropped. Other lines (pip, tools/local-postgres.sh, cd,
export, cron lines) are not executed. A command may exit 1 only when its line
ends with a comment starting `# exits 1` (e.g. `check docker  # exits 1 while
held`).

Each document runs in its own fresh database, as one Claude Code session
(CLAUDE_CODE_SESSION_ID set, so the doc's own `register` lines re-use one
instance) working in a temporary directory, with a second live instance (the
peer) on another project. HOME and CLAUDE_PROJECT_DIR point into the temporary
directory, so nothing outside it is touched. After a command that ends the
instance (`deregister`), the session registers again so later lines run as
written. Before a `wait` for messages, the peer sends one (for `wait --reply-to
ID`, a reply to ID), so `wait` returns at once instead of sleeping until its
timeout.
"""

import argparse
import os
import re
import shlex
from typing import NamedTuple, Optional

import pytest

from conftest import REPO

DOCS = ("README.md", "CLAUDE.md", "PROTOCOL.md")
SHELL_TAGS = {"", "bash", "sh", "shell"}

SESSION = "docs-test-session"
PEER_SESSION = "docs-test-peer"
PROJECT = "my-project"
PEER_PROJECT = "web-app"

# Placeholders the docs may use, and what the test substitutes.  `<id>` is the
# last message id the doc's own commands printed (`sent #N`) for `read` and
# `send --reply-to`, and the last memory id (`stored #N`) for `recall --id`,
# `update-memory` and `remember --supersedes`.
STATIC_PLACEHOLDERS = ("<project-name>", "<working-dir>", "/path/to/project", "<instance-id>")
MESSAGE_ID_COMMANDS = ("read", "send", "wait")
MEMORY_ID_COMMANDS = ("recall", "update-memory", "remember")      # remember --supersedes <id>

# Documented in prose only (they read hook JSON or edit Claude Code settings).
PROSE_ONLY_COMMANDS = {"hook", "install-hooks", "uninstall-hooks"}
# Shown in the docs but not run here: they start and stop a real server (tests/test_server.py).
NOT_RUN_COMMANDS = {"server"}
PROGRAM_NAMES = ("clambake.py", "clambake", "clambake.exe")

# The user's original commands (seeds/README-seed.md, seeds/CLAUDE-seed.md):
# each form must appear, with exactly these flags, among the commands the docs
# show (and so run).  X stands for any value.
SEED_FORMS = [
    "init",
    "register --project X --dir X",
    "status",
    "heartbeat --task X",
    "inbox",
    "read X",
    "send --to X --subject X",
    "send --to @all --type warning --subject X --body X",
    "send --to @all --type blocker --subject X --body X",
    "send --to @all --type done --subject X",
    "remember --project X --type X --title X --content X",
    "remember --global --type X --title X --content X",
    "recall --project X",
    "recall --project X --search X",
    "recall --global --limit 10",
    "recall --global --type X",
    "update-memory X --status resolved",
    "log --action X --summary X",
    "deregister",
    "cleanup",
]

SHELL_OPERATORS = {"&&", "||", ";", "&", ">", ">>", "<", "<<", "(", ")", "|&", ";;"}
ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
CRON_LINE = re.compile(r"^(@\w+|([0-9*/,-]+\s+){4}[0-9*/,A-Za-z-]+)\s")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([A-Za-z0-9_+-]*)")


class DocError(Exception):
    """A doc line the test cannot run as written."""


class Command(NamedTuple):
    doc: str
    lineno: int
    text: str            # the logical line as written
    argv: list           # arguments after clambake.py, placeholders unresolved
    env: dict            # VAR=value prefixes
    stdin: Optional[str]
    may_exit_1: bool


# --------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------

def code_blocks(text):
    """Yield (tag, lineno of the first body line, body lines) per fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, tag = m.group(1), m.group(2).lower()
        close = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence))
        body, start = [], i + 2
        i += 1
        while i < len(lines) and not close.match(lines[i]):
            body.append(lines[i])
            i += 1
        yield tag, start, body
        i += 1


def logical_lines(body, first_lineno):
    """Join backslash continuations; yield (lineno, line)."""
    buf, at = "", None
    for n, line in enumerate(body, first_lineno):
        if at is None:
            at = n
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += line
        yield at, buf.strip()
        buf, at = "", None
    if buf.strip():
        yield at, buf.strip()


def split_comment(line):
    """(code, comment) at the first unquoted `#` that starts a word."""
    quote, i = None, 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"':
                i += 1
        elif c in "'\"":
            quote = c
        elif c == "\\":
            i += 1
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
        i += 1
    return line, ""


PLACEHOLDER = re.compile(r"<([A-Za-z][A-Za-z0-9_-]*)>")


def shell_words(code):
    """Words and operators of a line; `<placeholder>` stays one word."""
    code = PLACEHOLDER.sub(lambda m: "@@PH:" + m.group(1) + "@@", code)
    lex = shlex.shlex(code, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    return [re.sub(r"@@PH:([A-Za-z0-9_-]+)@@", r"<\1>", w) for w in lex]


def parse_line(doc, lineno, text):
    """A Command for a line that runs clambake.py, else None."""
    code, comment = split_comment(text)
    if not code.strip() or CRON_LINE.match(code):
        return None
    try:
        words = shell_words(code)
    except ValueError as e:
        raise DocError(f"{doc}:{lineno}: cannot parse {text!r}: {e}")
    if not any(os.path.basename(w) in PROGRAM_NAMES for w in words) or words[0] in ("pip", "pip3", "pipx", "uv", "cd", "git", "export"):
        return None
    stdin = None
    if "|" in words:
        i = words.index("|")
        left, words = words[:i], words[i + 1:]
        if not left or left[0] != "echo" or "|" in words:
            raise DocError(f"{doc}:{lineno}: only `echo TEXT | python clambake.py ...` is supported: {text!r}")
        stdin = " ".join(left[1:]) + "\n"
    bad = [w for w in words if w in SHELL_OPERATORS or "`" in w or "$(" in w]
    if bad:
        raise DocError(f"{doc}:{lineno}: one plain command per line, please (found {bad[0]!r}): {text!r}")
    env = {}
    while words and ENV_ASSIGN.match(words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    if words and words[0] in ("python", "python3"):
        words.pop(0)
    if not words or os.path.basename(words[0]) not in PROGRAM_NAMES:
        raise DocError(f"{doc}:{lineno}: expected `clambake ...` or `python clambake.py ...`: {text!r}")
    may_exit_1 = re.match(r"exits 1\b", comment) is not None
    return Command(doc, lineno, text, words[1:], env, stdin, may_exit_1)


def extract(doc, text):
    """Every clambake.py command of a markdown text, in document order."""
    out = []
    for tag, start, body in code_blocks(text):
        if tag not in SHELL_TAGS:
            continue
        for lineno, line in logical_lines(body, start):
            cmd = parse_line(doc, lineno, line)
            if cmd is not None:
                out.append(cmd)
    return out


def read_doc(name):
    with open(os.path.join(REPO, name), encoding="utf-8") as f:
        return f.read()


def doc_commands(name):
    return extract(name, read_doc(name))


def subcommand(argv):
    """The subcommand name of an argv (skipping a leading --as ID)."""
    i = 0
    while i < len(argv):
        if argv[i] == "--as":
            i += 2
            continue
        if argv[i].startswith("-"):
            i += 1
            continue
        return argv[i]
    return None


def section(text, heading):
    """The text under `## heading` up to the next level-2 heading."""
    m = re.search(r"^## " + re.escape(heading) + r"\s*$", text, re.M)
    assert m, f"no '## {heading}' section"
    rest = text[m.end():]
    end = re.search(r"^## ", rest, re.M)
    return rest[:end.start()] if end else rest


def parser_commands():
    import clambake
    parser = clambake.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return parser, action.choices
    raise AssertionError("build_parser() has no subcommands")


# --------------------------------------------------------------------------
# running a document
# --------------------------------------------------------------------------

class DocSession:
    """One Claude Code session working through a document."""

    def __init__(self, cb, tmp_path):
        self.cb = cb
        self.workdir = str(tmp_path / "project")
        self.home = str(tmp_path / "home")
        os.makedirs(self.workdir)
        os.makedirs(self.home)
        self.env = {"CLAUDE_CODE_SESSION_ID": SESSION, "HOME": self.home, "USERPROFILE": self.home,
                    "CLAUDE_PROJECT_DIR": self.workdir}
        self.project = PROJECT
        self.message_id = None
        self.memory_id = None
        self.register()
        peer_dir = tmp_path / "peer"
        peer_dir.mkdir()
        self.peer_env = dict(self.env, CLAUDE_CODE_SESSION_ID=PEER_SESSION)
        self.peer = cb.json("register", "--project", PEER_PROJECT, "--dir", str(peer_dir),
                            env=self.peer_env, cwd=str(peer_dir))["instance_id"]

    def register(self):
        return self.cb.json("register", "--project", self.project, "--dir", self.workdir,
                            env=self.env, cwd=self.workdir)["instance_id"]

    def me(self):
        res = self.cb("whoami", "--json", env=self.env, cwd=self.workdir)
        return res

    def substitute(self, cmd):
        sub = subcommand(cmd.argv)
        values = {"<project-name>": PROJECT, "<working-dir>": self.workdir,
                  "/path/to/project": self.workdir, "<instance-id>": self.peer}
        argv = []
        for word in cmd.argv:
            for key, value in values.items():
                word = word.replace(key, value)
            if "<id>" in word:
                if sub in MESSAGE_ID_COMMANDS:
                    value, what = self.message_id, "message"
                elif sub in MEMORY_ID_COMMANDS:
                    value, what = self.memory_id, "memory"
                else:
                    raise DocError(f"{cmd.doc}:{cmd.lineno}: <id> in `{sub}`: no rule for it in test_docs.py")
                if value is None:
                    raise DocError(f"{cmd.doc}:{cmd.lineno}: <id> used before any earlier command "
                                   f"in {cmd.doc} printed a {what} id")
                word = word.replace("<id>", value)
            left = re.search(r"<[A-Za-z][A-Za-z0-9_-]*>", word)
            if left:
                raise DocError(f"{cmd.doc}:{cmd.lineno}: unknown placeholder {left.group(0)} "
                               f"(known: {', '.join(STATIC_PLACEHOLDERS)}, <id>)")
            argv.append(word)
        return sub, argv

    def feed_message(self):
        me = self.cb.json("whoami", env=self.env, cwd=self.workdir)["instance_id"]
        self.cb.json("--as", self.peer, "send", "--to", me, "--type", "info",
                     "--subject", "docs test: a message for wait", env=self.peer_env)

    def prepare_wait(self, cmd, argv):
        """Make a doc's `wait` return at once, or fail now rather than sleep until its timeout."""
        resource = next((argv[i + 1] for i, w in enumerate(argv[:-1]) if w in ("--resource", "-r")), None)
        reply_to = next((argv[i + 1] for i, w in enumerate(argv[:-1]) if w == "--reply-to"), None)
        if reply_to is not None:        # `wait --reply-to ID`: the peer answers that message
            self.cb.json("--as", self.peer, "send", "--reply-to", reply_to, "--subject", "docs test: a reply",
                         env=self.peer_env)
            return
        if resource is None:
            self.feed_message()
            return
        res = self.cb("check", resource, env=self.env, cwd=self.workdir)
        assert res.code == 0, (f"{cmd.doc}:{cmd.lineno}: `{cmd.text}` would block: {resource} is held by "
                               f"another instance at this point\n{res.out}{res.err}")

    def run_dashboard(self, cmd, argv):
        """`dashboard` serves until stopped: start it as a real process (on a free port, BROWSER=true so
        --open opens nothing), fetch the page it prints, stop it."""
        import subprocess
        import sys
        import urllib.request
        from conftest import SCRIPT
        if "--port" in argv:
            argv[argv.index("--port") + 1] = "0"
        else:
            argv.append("--port=0")
        env = dict(os.environ, **self.env, **cmd.env, BROWSER="true", PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, SCRIPT] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=self.workdir)
        try:
            line = proc.stdout.readline()
            m = re.search(r"http://\S+", line)
            assert m, f"{cmd.doc}:{cmd.lineno}: {cmd.text}\nprinted no URL: {line!r} {proc.stderr.read()!r}"
            url = re.sub(r"//[^:/]+:", "//127.0.0.1:", m.group(0))
            with urllib.request.urlopen(url, timeout=10) as r:
                assert r.status == 200 and b"clambake" in r.read()
        finally:
            proc.terminate()
            proc.wait(10)

    def run(self, cmd):
        sub, argv = self.substitute(cmd)
        if sub in NOT_RUN_COMMANDS:
            return None
        if sub == "dashboard":
            return self.run_dashboard(cmd, argv)
        if sub == "wait":
            self.prepare_wait(cmd, argv)
        env = dict(self.env, **cmd.env)
        res = self.cb(*argv, env=env, input=cmd.stdin, cwd=self.workdir)
        allowed = (0, 1) if cmd.may_exit_1 else (0,)
        where = f"{cmd.doc}:{cmd.lineno}: {cmd.text}\nran: clambake.py {' '.join(argv)}"
        assert res.code in allowed, f"{where}\nexit {res.code}\nstdout: {res.out}\nstderr: {res.err}"
        assert "Traceback" not in res.err, f"{where}\nstderr: {res.err}"
        for m in re.finditer(r"\bsent #(\d+)", res.out):
            self.message_id = m.group(1)
        for m in re.finditer(r"\bstored #(\d+)", res.out):
            self.memory_id = m.group(1)
        if sub == "register":
            for flag in ("--project", "-p"):
                if flag in argv[:-1]:
                    self.project = argv[argv.index(flag) + 1]
        # a command that ended the instance (deregister): carry on as a registered session
        if self.me().code != 0:
            self.register()
        return res


@pytest.mark.parametrize("doc", DOCS)
def test_doc_commands_run(doc, db, cb, tmp_path):
    commands = doc_commands(doc)
    assert commands, f"no clambake.py commands found in {doc}"
    session = DocSession(cb, tmp_path)
    for cmd in commands:
        session.run(cmd)


# --------------------------------------------------------------------------
# what the docs must contain
# --------------------------------------------------------------------------

def help_commands(cb):
    """Subcommands listed by `python clambake.py --help`."""
    res = cb("--help")
    assert res.code == 0, res
    block = res.out.split("\ncommands:\n", 1)
    assert len(block) == 2, f"--help has no 'commands:' list:\n{res.out}"
    names = []
    for line in block[1].splitlines():
        if not line.strip():
            break
        m = re.match(r"^  ([a-z][a-z0-9-]*)\b", line)
        if m:
            names.append(m.group(1))
    return names


def test_help_lists_every_subcommand(cb):
    _, choices = parser_commands()
    assert sorted(help_commands(cb)) == sorted(choices)


def test_readme_reference_mentions_every_subcommand(cb):
    reference = section(read_doc("README.md"), "Command reference")
    missing = [name for name in help_commands(cb)
               if not re.search(r"`(?:clambake |python clambake\.py )?" + re.escape(name) + r"[ `]", reference)]
    assert not missing, f"README.md's command reference does not mention: {', '.join(missing)}"


def test_readme_examples_cover_every_subcommand():
    _, choices = parser_commands()
    shown = {subcommand(c.argv) for c in doc_commands("README.md")}
    missing = sorted(set(choices) - shown - PROSE_ONLY_COMMANDS)
    assert not missing, f"README.md shows no runnable example of: {', '.join(missing)}"


def shape(parser, choices, argv):
    """(command, {dest: value}) of the options an argv sets away from their defaults."""
    try:
        ns = parser.parse_args(argv)
    except SystemExit:          # --help, --version
        return None, {}
    if not getattr(ns, "command", None):
        return None, {}
    defaults = {a.dest: a.default for a in choices[ns.command]._actions}
    given = {k: v for k, v in vars(ns).items()
             if k not in ("func", "command", "as_", "json") and v != defaults.get(k)}
    return ns.command, given


def test_docs_show_the_seed_commands():
    parser, choices = parser_commands()
    shown = [shape(parser, choices, c.argv) for doc in DOCS for c in doc_commands(doc)]
    missing = []
    for form in SEED_FORMS:
        want_cmd, want = shape(parser, choices, form.split())
        if not any(cmd == want_cmd and set(got) == set(want)
                   and all(v == "X" or got[k] == v for k, v in want.items()) for cmd, got in shown):
            missing.append(form)
    assert not missing, "the docs show no command of these original forms: " + "; ".join(missing)


def test_readme_test_command_is_the_ci_command():
    text = section(read_doc("README.md"), "Running the tests")
    lines = [line for tag, start, body in code_blocks(text) if tag in SHELL_TAGS
             for _, line in logical_lines(body, start) if split_comment(line)[0].strip()]
    assert lines == ["python -m pytest -q"]
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
        ci = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    # run as written, after VAR=value prefixes (CI's two passes: CLAMBAKE_TEST_PG=system / embedded)
    assert any(re.match(r"([A-Za-z_][A-Za-z0-9_]*=\S+ )*python -m pytest -q(\s|$)", line) for line in ci), \
        ".ci/run does not run `python -m pytest -q`"


@pytest.mark.parametrize("name", DOCS + ("LICENSE",))
def test_docs_are_ascii(name):
    text = read_doc(name)
    bad = sorted({ch for ch in text if ord(ch) > 127})
    assert not bad, f"{name} has non-ASCII characters: {bad!r}"


@pytest.mark.parametrize("doc", DOCS)
def test_local_links_resolve(doc):
    for target in re.findall(r"\]\(([^)\s]+)\)", read_doc(doc)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        assert os.path.exists(os.path.join(REPO, path)), f"{doc} links to missing {target}"


def test_license_is_mit():
    text = read_doc("LICENSE")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 Clambake contributors" in text


# --------------------------------------------------------------------------
# the extractor itself
# --------------------------------------------------------------------------

SAMPLE = """
Prose with `python clambake.py status` inline is not run.

```bash
# a comment line
pip install -r requirements.txt
python clambake.py send --to @all \\
    --subject "two # words"   # trailing comment
python3 /opt/x/clambake.py check docker  # exits 1 while held
echo "from stdin" | python clambake.py send --to <instance-id> --subject s --body -
CLAMBAKE_LIVE_WINDOW=1h python clambake.py status
clambake recall --search "docker restart"
pipx install "clambake[server]"
```

```text
python clambake.py never-run
```

~~~
python clambake.py inbox
~~~

```crontab
*/15 * * * * python clambake.py cleanup --quiet
```
"""


def test_extractor():
    cmds = extract("SAMPLE", SAMPLE)
    assert [c.argv for c in cmds] == [
        ["send", "--to", "@all", "--subject", "two # words"],
        ["check", "docker"],
        ["send", "--to", "<instance-id>", "--subject", "s", "--body", "-"],
        ["status"],
        ["recall", "--search", "docker restart"],
        ["inbox"],
    ]
    assert [c.may_exit_1 for c in cmds] == [False, True, False, False, False, False]
    assert cmds[2].stdin == "from stdin\n"
    assert cmds[3].env == {"CLAMBAKE_LIVE_WINDOW": "1h"}
    assert cmds[0].lineno == 7
    assert parse_line("x", 1, "*/5 * * * * python clambake.py cleanup") is None
    for bad in ("python clambake.py check docker && make", "python clambake.py status > out.txt",
                "cat notes | python clambake.py log --action note --summary -"):
        with pytest.raises(DocError):
            parse_line("x", 1, bad)
