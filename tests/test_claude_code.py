"""The real Claude Code client (issue 10, "Test against the real client").

`claude -p PROMPT --allowedTools Bash --output-format json` runs whole sessions here, with the hooks
that `install-hooks --user` wrote into a temporary HOME, against the test's Postgres; the model is
tests/claude_standin.py, a local stand-in for the Messages API that streams scripted answers and
records every request, so each test asserts what the model was actually sent.

The binary comes from npm (`npm install -g @anthropic-ai/claude-code`; .ci/run installs it).  Where it
is missing these tests skip with the reason; under CLAMBAKE_STRICT=1 (CI) a skip is a failure.
"""

import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import uuid

import pytest

from claude_standin import Standin, bash, request_text, text, tool_results
from conftest import SCRIPT

CB = f"{shlex.quote(sys.executable)} {shlex.quote(SCRIPT)}"      # clambake, as a Bash command


def find_claude():
    """(path, version) of a Claude Code binary that runs, or (None, why not)."""
    candidates = [os.environ.get("CLAMBAKE_CLAUDE_BIN"), shutil.which("claude")]
    npm = shutil.which("npm")
    if npm:
        try:
            prefix = subprocess.run([npm, "prefix", "-g"], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            prefix = ""
        if prefix:
            root = os.path.join(prefix, "lib", "node_modules", "@anthropic-ai")
            # the wrapper's bin, or the native binary in the platform package (npm may skip the postinstall)
            candidates += [os.path.join(root, "claude-code", "bin", "claude.exe")]
            candidates += glob.glob(os.path.join(root, "claude-code*", "**", "claude-code-linux-*", "claude"),
                                    recursive=True)
            candidates += glob.glob(os.path.join(root, "claude-code-linux-*", "claude"))
    for path in candidates:
        if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
            continue
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and "Claude Code" in out.stdout:
            return path, out.stdout.strip()
    if not npm:
        return None, "npm is not installed (Claude Code installs from npm: @anthropic-ai/claude-code)"
    return None, "no runnable Claude Code binary (npm install -g @anthropic-ai/claude-code)"


CLAUDE, CLAUDE_VERSION = find_claude()
pytestmark = pytest.mark.skipif(CLAUDE is None, reason=str(CLAUDE_VERSION))


class Client:
    """Runs the real `claude -p` as one Claude Code user: its own HOME with clambake's hooks."""

    def __init__(self, db, cb, tmp_path):
        self.db = db
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.work = tmp_path / "shop"
        self.work.mkdir()
        res = cb("install-hooks", "--user", env={"HOME": str(self.home)})
        assert res.code == 0, res
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC"))}
        self.env.update(HOME=str(self.home), ANTHROPIC_API_KEY="sk-ant-standin-dummy",
                        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", CLAMBAKE_DSN=db.dsn,
                        # mid-turn delivery checks after every tool call; a loaded CI machine gets time
                        CLAMBAKE_DELIVERY_INTERVAL="0", CLAMBAKE_HOOK_TIMEOUT="4")

    def run(self, script, *args, prompt="work on the shop", hooks=()):
        """Run one `claude -p` session against a stand-in playing `script`.  -> (result, standin)."""
        with Standin(script) as api:
            api.hooks.extend(hooks)
            env = dict(self.env, ANTHROPIC_BASE_URL=api.url)
            proc = subprocess.run([CLAUDE, "-p", prompt, "--allowedTools", "Bash", "--output-format", "json",
                                   *args], cwd=str(self.work), env=env, capture_output=True, text=True,
                                  timeout=180, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
        return json.loads(proc.stdout), api


    def run_prompts(self, script, prompts, hooks=()):
        """One `claude -p` process fed several user messages (stream-json input), each after the previous
        turn's result, so slash commands such as /clear run between turns.  -> (events, standin)."""
        events = []
        with Standin(script) as api:
            api.hooks.extend(hooks)
            env = dict(self.env, ANTHROPIC_BASE_URL=api.url)
            proc = subprocess.Popen([CLAUDE, "-p", "--input-format", "stream-json", "--output-format",
                                     "stream-json", "--verbose", "--allowedTools", "Bash"], cwd=str(self.work),
                                    env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            timer = threading.Timer(180, proc.kill)
            timer.start()
            try:
                pending = list(prompts)

                def feed():
                    proc.stdin.write(json.dumps({"type": "user", "message": {"role": "user",
                                                                             "content": pending.pop(0)}}) + "\n")
                    proc.stdin.flush()
                feed()
                for line in proc.stdout:
                    if not line.startswith("{"):
                        continue
                    events.append(json.loads(line))
                    if events[-1].get("type") == "result":
                        if pending:
                            feed()
                        else:
                            proc.stdin.close()
                err = proc.stderr.read()
                proc.wait()
            finally:
                timer.cancel()
        assert proc.returncode == 0, err[-2000:]
        return events, api


@pytest.fixture
def client(db, cb, tmp_path):
    print(f"\nreal client: {CLAUDE} ({CLAUDE_VERSION})")
    return Client(db, cb, tmp_path)


def instance_of(sql, session):
    rows = sql("SELECT instance_id, project FROM clambake.instances WHERE session_key = %s", (session,))
    return rows[0] if rows else None


def peer(cb, project="infra"):
    """Another live session (registered as Claude Code would: by its session key)."""
    env = {"CLAUDE_CODE_SESSION_ID": "peer-" + uuid.uuid4().hex[:8]}
    res = cb("register", "--project", project, "--dir", "/srv/" + project, "--json", env=env)
    assert res.code == 0, res
    return json.loads(res.out)["instance_id"], env


def test_briefing_session_key_and_session_end(client, sql):
    """SessionStart's briefing is in the model's first request; a Bash call carries
    CLAUDE_CODE_SESSION_ID, so clambake finds the instance by session key; SessionEnd deregisters."""
    session = str(uuid.uuid4())
    result, api = client.run([bash(f"echo SID=$CLAUDE_CODE_SESSION_ID; {CB} whoami --json"), text("done")],
                             "--session-id", session)
    assert result["session_id"] == session
    first = request_text(api.main_requests()[0])
    assert "clambake: you are instance shop-" in first, first[-3000:]
    brief = first[first.index("clambake: you are instance"):]
    iid = brief.split()[4]
    print(f"briefing: {len(brief.split(chr(10) + chr(10))[0])} chars")
    out = tool_results(api.main_requests()[1])[0]
    assert f"SID={session}" in out
    me = json.loads(out[out.index("{"):])
    assert me["instance_id"] == iid and me["session_key"] == session and me["project"] == "shop"
    # the session ended: deregistered, remembered for --resume
    assert instance_of(sql, session) is None
    assert sql("SELECT instance_id FROM clambake.ended_sessions WHERE session_key = %s", (session,)) == [(iid,)]
    assert sql("SELECT count(*) FROM clambake.session_log WHERE instance_id = %s AND action = 'deregister'",
               (iid,)) == [(1,)]


def test_guard_denial_comes_back_as_the_tool_result(client, cb, tmp_path):
    holder, env = peer(cb)
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding images", env=env).code == 0
    marker = tmp_path / "ran"
    result, api = client.run([bash(f"touch {marker}; docker compose down"), text("blocked")])
    assert not marker.exists()          # the command never ran
    denial = tool_results(api.main_requests()[1])[0]
    assert f"docker is claimed by {holder} (infra)" in denial and "rebuilding images" in denial, denial
    assert "wait --resource docker" in denial
    print(f"denial: {len(denial)} chars, ~{len(denial) // 4} tokens")


def test_message_sent_mid_turn_reaches_the_model_after_the_next_tool_call(client, cb, sql):
    """A long autonomous turn: a request sent by another session while the turn runs arrives with the
    next tool result (PostToolUse additionalContext), with the command to reply."""
    session = str(uuid.uuid4())
    sender, env = peer(cb)
    sent = {}

    def send_during_turn(i, body):
        if i == 1:          # the first tool call has run; the model is about to call the second
            me = instance_of(sql, session)[0]
            res = cb("send", "--to", me, "--type", "request", "--subject", "please stop the api container",
                     "--json", env=env)
            sent["id"] = json.loads(res.out)["id"]

    result, api = client.run([bash("echo one"), bash("echo two"), text("ok")], "--session-id", session,
                             hooks=[send_during_turn])
    reqs = api.main_requests()
    assert "please stop the api container" not in request_text(reqs[1])
    third = request_text(reqs[2])
    assert f"#{sent['id']} request from {sender}: please stop the api container" in third, third[-2000:]
    assert f"send --reply-to {sent['id']} --subject" in third
    line = next(ln for ln in third.splitlines() if "please stop the api container" in ln)
    print(f"mid-turn delivery: {len(line)} chars, ~{len(line) // 4} tokens")
    # shown once: marked read, so the Stop hook has no unread request to remind of (no 4th request)
    assert len(reqs) == 3 and third.count("please stop the api container") == 1


def test_stop_reminds_once_of_a_held_claim(client):
    script = [bash(f"{CB} send --type blocker --resource docker --subject 'compose down'"),
              text("finished"), text("keeping docker for the next step")]
    result, api = client.run(script)
    reqs = api.main_requests()
    assert len(reqs) == 3, [request_text(r)[-300:] for r in reqs]   # continued once, then stopped
    last = request_text(reqs[2])
    assert last.count("before you stop: you still hold docker") == 1, last[-1500:]
    assert "send --type done --resource docker" in last
    assert result["result"] == "keeping docker for the next step"


def test_resume_keeps_instance_and_project_fork_gets_a_new_one(client, sql):
    session = str(uuid.uuid4())
    client.run([bash(f"{CB} register --project storefront"), text("registered")], "--session-id", session)
    (iid,) = sql("SELECT instance_id FROM clambake.ended_sessions WHERE session_key = %s", (session,))[0]
    # `claude --resume SESSION_ID`: the same instance id and project again
    result, api = client.run([bash(f"{CB} whoami --json"), text("back")], "--resume", session)
    assert result["session_id"] == session
    me = json.loads(tool_results(api.main_requests()[1])[-1])
    assert (me["instance_id"], me["project"], me["session_key"]) == (iid, "storefront", session)
    assert f"you are instance {iid} (project storefront" in request_text(api.main_requests()[0])
    # `--fork-session`: a new session id and a new instance in the same project; the parent is not revived
    result, api = client.run([bash(f"{CB} whoami --json"), text("forked")], "--resume", session, "--fork-session")
    fork = result["session_id"]
    assert fork != session
    me = json.loads(tool_results(api.main_requests()[1])[-1])
    assert me["session_key"] == fork and me["instance_id"] != iid and me["project"] == "storefront"
    assert instance_of(sql, session) is None
    assert sql("SELECT instance_id FROM clambake.ended_sessions WHERE session_key = %s", (session,)) == [(iid,)]


def test_subagent_is_told_its_identity_and_acts_as_its_parent(client, cb, sql):
    """SubagentStart's additionalContext reaches the subagent's first request; the subagent's Bash calls
    carry the parent's session, so they act as the parent's instance."""
    holder, env = peer(cb)
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding", env=env).code == 0
    session = str(uuid.uuid4())
    agent = {"tool": "Agent", "input": {"description": "look around", "prompt": "check who you are",
                                        "subagent_type": "general-purpose"}}
    script = [agent, bash(f"{CB} whoami --json"), text("I am the parent's instance"), text("done")]
    result, api = client.run(script, "--session-id", session, "--allowedTools", "Agent")
    reqs = api.main_requests()
    sub = request_text(reqs[1])                  # the subagent's first request
    assert "a subagent (general-purpose) of instance shop-" in sub, sub[-2000:]
    assert f"- docker: {holder} (infra)" in sub
    iid = sub.split(") of instance ", 1)[1].split()[0]
    me = json.loads(tool_results(reqs[2])[-1])
    assert me["instance_id"] == iid and me["session_key"] == session


def test_clear_after_cd_keeps_instance_and_claims(client, sql):
    """/clear (between two turns of one process) after the agent changed directory: the new session
    gets the same instance, project and claims."""
    (client.work / "web").mkdir()
    script = [bash(f"cd web && {CB} register --project storefront && "
                   f"{CB} send --type blocker --resource docker --subject 'compose down'"),
              text("claimed"),
              text("keeping docker for the next turn"),      # after the Stop hook's reminder
              bash(f"{CB} whoami --json; {CB} check docker"), text("still mine")]
    events, api = client.run_prompts(script, ["claim docker", "/clear", "who am I now?"])
    sessions = []
    for e in events:
        if e.get("session_id") and e["session_id"] not in sessions:
            sessions.append(e["session_id"])
    assert len(sessions) == 2, sessions          # /clear started a new session
    reqs = api.main_requests()
    assert "before you stop: you still hold docker" in request_text(reqs[2])
    assert len(reqs) == 5          # the same claim is not reminded of again at the end of the third turn
    out = tool_results(reqs[4])[-1]
    me = json.loads(out[:out.rindex("}") + 1])
    assert me["session_key"] == sessions[1] and me["project"] == "storefront"
    assert "docker: held by you (%s)" % me["instance_id"] in out
    brief = request_text(reqs[3])
    assert f"you are instance {me['instance_id']} (project storefront" in brief and "session clear" in brief
    assert "docker: you" in brief
