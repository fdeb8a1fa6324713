"""Claude Code session lifecycle and delivery during long turns (issue 10, items 1, 3, 8, 10), fed the
documented hook JSON: /clear after a cd, SessionEnd `resume`, `claude --resume`, forks, CwdChanged,
PostToolUse delivery (throttled, silent when nothing is new), Stop reminding once, SubagentStart, the
off switch, and `wait --reply-to`.  tests/test_claude_code.py runs the same flows through the real
client.  Every test runs against the real, throwaway Postgres (conftest.py)."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

import clambake
from test_hooks import (bash_json, end_json, hook, hook_out, payload, prompt_json, sid, silent, start,
                        start_json)


def post_json(session, cwd, command="make test", transcript=None):
    d = payload("PostToolUse", session, cwd, tool_name="Bash", tool_input={"command": command},
                tool_response={"stdout": "ok", "stderr": "", "interrupted": False}, tool_use_id="toolu_01x")
    if transcript:
        d["transcript_path"] = transcript
    return d


def stop_json(session, cwd, active=False):
    return payload("Stop", session, cwd, stop_hook_active=active, last_assistant_message="All done.")


def subagent_json(session, cwd, agent_type="Explore"):
    return payload("SubagentStart", session, cwd, agent_id="agent-" + session[:8], agent_type=agent_type)


def me_row(sql, session):
    rows = sql("SELECT instance_id, project, working_dir FROM clambake.instances WHERE session_key = %s",
               (session,))
    return rows[0] if rows else None


def peer(cb, project="infra"):
    env = {"CLAUDE_CODE_SESSION_ID": "peer-" + sid()[:8]}
    res = cb.json("register", "--project", project, "--dir", "/srv/" + project, env=env)
    return res["instance_id"], env


@pytest.fixture
def every_call(monkeypatch):
    """PostToolUse checks the database after every tool call (no throttle), for tests that are not
    about the throttle."""
    monkeypatch.setenv("CLAMBAKE_DELIVERY_INTERVAL", "0")


# --------------------------------------------------------------------------
# /clear, resume, fork
# --------------------------------------------------------------------------

def test_clear_after_cd_hands_instance_claims_and_project_to_the_new_session(db, sql, cb, tmp_path):
    top = tmp_path / "shop"
    (top / "web").mkdir(parents=True)
    old, new = sid(), sid()
    transcript = f"/home/dev/.claude/projects/-work-shop/{old}.jsonl"
    d = start_json(old, top)
    d["transcript_path"] = transcript
    a = hook_out(hook(cb, "session-start", d), "SessionStart")["additionalContext"].split()[4]
    env = {"CLAUDE_CODE_SESSION_ID": old}
    assert cb("register", "--project", "Storefront", env=env, cwd=str(top)).code == 0
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding", env=env).code == 0
    # the agent cd'd into web/ (CwdChanged), then the user ran /clear there
    assert silent(hook(cb, "cwd", payload("CwdChanged", old, top / "web", old_cwd=str(top), new_cwd=str(top / "web"))))
    assert me_row(sql, old)[2] == str(top / "web")
    e = end_json(old, top / "web", "clear")
    e["transcript_path"] = transcript
    assert silent(hook(cb, "session-end", e))
    d = start_json(new, top / "web", "clear")
    d["transcript_path"] = f"/home/dev/.claude/projects/-work-shop/{new}.jsonl"   # same transcript dir
    ctx = hook_out(hook(cb, "session-start", d), "SessionStart")["additionalContext"]
    assert f"you are instance {a} (project storefront" in ctx and "session clear" in ctx
    assert me_row(sql, new)[:2] == (a, "storefront")
    assert sql("SELECT instance_id FROM clambake.claims WHERE resource = 'docker'") == [(a,)]
    # its own claim never blocks it
    assert silent(hook(cb, "pre-tool", bash_json(new, top / "web", "docker compose down")))
    assert sql("SELECT count(*) FROM clambake.instances") == [(1,)]


def test_clear_pairs_by_transcript_directory_not_by_another_sessions_directory(db, sql, cb, tmp_path):
    """Two sessions in the same directory; one clears: its handover goes to its own successor."""
    wd = tmp_path / "shop"
    wd.mkdir()
    s1, s2, s3 = sid(), sid(), sid()
    t1 = "/home/dev/.claude/projects/-work-shop"
    t2 = "/home/dev/.claude/projects/-work-other"
    for s, t in ((s1, t1), (s2, t2)):
        d = start_json(s, wd)
        d["transcript_path"] = f"{t}/{s}.jsonl"
        hook(cb, "session-start", d)
    a1, a2 = me_row(sql, s1)[0], me_row(sql, s2)[0]
    e = end_json(s2, wd, "clear")
    e["transcript_path"] = f"{t2}/{s2}.jsonl"
    hook(cb, "session-end", e)
    d = start_json(s3, wd, "clear")
    d["transcript_path"] = f"{t2}/{s3}.jsonl"
    hook(cb, "session-start", d)
    assert me_row(sql, s3)[0] == a2 and me_row(sql, s1)[0] == a1


def test_session_end_resume_keeps_the_instance_and_its_claims(db, sql, cb, tmp_path):
    """Interactive /resume switches this process to another session: SessionEnd reason `resume` for the
    one left; it is kept (idle) with its claims, and comes back when resumed."""
    s, other = sid(), sid()
    a, _ = start(cb, s, tmp_path)
    assert cb("send", "--type", "blocker", "--resource", "db-migrations", "--subject", "migrating",
              env={"CLAUDE_CODE_SESSION_ID": s}).code == 0
    assert silent(hook(cb, "session-end", end_json(s, tmp_path, "resume")))
    assert sql("SELECT status FROM clambake.instances WHERE instance_id = %s", (a,)) == [("idle",)]
    assert sql("SELECT instance_id FROM clambake.claims") == [(a,)]
    b, _ = start(cb, other, tmp_path, "resume")        # the session switched to
    assert b != a
    a2, ctx = start(cb, s, tmp_path, "resume")           # and back
    assert a2 == a and "db-migrations: you" in ctx
    assert sql("SELECT status FROM clambake.instances WHERE instance_id = %s", (a,)) == [("active",)]


def test_claude_resume_after_exit_keeps_id_and_project(db, sql, cb, tmp_path):
    """`claude --resume SESSION_ID` after the session exited: the same instance id and project (set with
    register --project); the claims were released when it exited."""
    s = sid()
    a, _ = start(cb, s, tmp_path)
    env = {"CLAUDE_CODE_SESSION_ID": s}
    assert cb("register", "--project", "Billing Service", env=env).code == 0
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "x", env=env).code == 0
    assert silent(hook(cb, "session-end", end_json(s, tmp_path, "prompt_input_exit")))
    assert sql("SELECT count(*) FROM clambake.instances") == [(0,)]
    assert sql("SELECT count(*) FROM clambake.claims") == [(0,)]
    a2, ctx = start(cb, s, tmp_path, "resume")
    assert a2 == a and "(project billing-service" in ctx
    assert cb.json("whoami", env=env)["instance_id"] == a
    assert sql("SELECT count(*) FROM clambake.ended_sessions") == [(0,)]
    hist = cb("history", "--limit", "3", env=env).out
    assert "resumed in" in hist


def test_fork_is_a_new_instance_in_the_same_project_without_the_parents_claims(db, sql, cb, tmp_path):
    """`claude --resume PARENT --fork-session` (as Claude Code 2.1.197 runs it): SessionStart `resume`
    with the parent's id, then every later hook with the fork's new id, from the same process."""
    parent, fork = sid(), sid()
    a, _ = start(cb, parent, tmp_path)
    env = {"CLAUDE_CODE_SESSION_ID": parent}
    assert cb("register", "--project", "shop-api", env=env).code == 0
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "x", env=env).code == 0
    # the parent still runs elsewhere (its claims stay); this process resumes it, then forks
    start(cb, parent, tmp_path, "resume")
    res = hook(cb, "prompt", prompt_json(fork, tmp_path))
    f = me_row(sql, fork)
    assert f is not None and f[0] != a and f[1] == "shop-api"
    assert sql("SELECT instance_id FROM clambake.claims") == [(a,)]       # the parent's, not the fork's
    assert me_row(sql, parent)[0] == a
    # the fork is another session: the parent's claim blocks it
    out = hook_out(hook(cb, "pre-tool", bash_json(fork, tmp_path, "docker compose down")), "PreToolUse")
    assert out["permissionDecision"] == "deny"
    assert res.code == 0


def test_fork_of_an_ended_session_does_not_revive_the_parent(db, sql, cb, tmp_path):
    parent, fork = sid(), sid()
    a, _ = start(cb, parent, tmp_path)
    assert cb("register", "--project", "shop-api", env={"CLAUDE_CODE_SESSION_ID": parent}).code == 0
    hook(cb, "session-end", end_json(parent, tmp_path, "other"))
    start(cb, parent, tmp_path, "resume")                 # revived by the fork's SessionStart ...
    hook(cb, "prompt", prompt_json(fork, tmp_path))       # ... which then runs as the fork
    assert me_row(sql, parent) is None
    assert me_row(sql, fork)[1] == "shop-api"
    # the parent can still be resumed later under its own id
    assert sql("SELECT instance_id FROM clambake.ended_sessions WHERE session_key = %s", (parent,)) == [(a,)]


def test_working_dir_follows_the_hook_cwd(db, sql, cb, tmp_path, every_call):
    s = sid()
    (tmp_path / "sub").mkdir()
    start(cb, s, tmp_path)
    hook(cb, "post-tool", post_json(s, tmp_path / "sub"))
    assert me_row(sql, s)[2] == str(tmp_path / "sub")
    hook(cb, "prompt", prompt_json(s, tmp_path))
    assert me_row(sql, s)[2] == str(tmp_path)


def test_session_end_leaves_no_temp_files_behind(db, cb, tmp_path, monkeypatch):
    """The hooks' per-session temp files (post-tool throttle, coordination-off notice) go with the session,
    also when the database is down at the end: many sessions a day must not fill the temp directory."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    s, t = sid(), sid()
    start(cb, s, tmp_path)
    hook(cb, "post-tool", post_json(s, tmp_path))
    down = {"CLAMBAKE_DSN": "host=127.0.0.1 port=1 dbname=x user=postgres connect_timeout=1"}
    hook(cb, "post-tool", post_json(t, tmp_path), env=down)       # writes t's post-tool and off files
    assert sorted(p.name for p in temp.iterdir()) == sorted(
        ["clambake-post-" + s, "clambake-post-" + t, "clambake-off-" + t])
    assert silent(hook(cb, "session-end", end_json(s, tmp_path, "prompt_input_exit")))
    assert sorted(p.name for p in temp.iterdir()) == sorted(["clambake-post-" + t, "clambake-off-" + t])
    assert silent(hook(cb, "session-end", end_json(t, tmp_path, "other"), env=down))
    assert list(temp.iterdir()) == []


# --------------------------------------------------------------------------
# delivery during long turns
# --------------------------------------------------------------------------

def test_post_tool_delivers_urgent_news_once_and_is_silent_otherwise(db, sql, cb, tmp_path, every_call):
    s = sid()
    me, _ = start(cb, s, tmp_path)
    other, env = peer(cb)
    assert silent(hook(cb, "post-tool", post_json(s, tmp_path)))          # nothing new
    # info waits for the next prompt; a warning, a direct request and a new claim do not
    assert cb("send", "--to", me, "--subject", "fyi: lunch", env=env).code == 0
    r = cb.json("send", "--to", me, "--type", "request", "--subject", "can you stop the api?", env=env)
    assert cb("send", "--type", "warning", "--subject", "db restarting in 5 min", env=env).code == 0
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding", env=env).code == 0
    ctx = hook_out(hook(cb, "post-tool", post_json(s, tmp_path)), "PostToolUse")["additionalContext"]
    assert f"#{r['id']} request from {other}: can you stop the api?" in ctx
    assert f'send --reply-to {r["id"]} --subject "..."' in ctx
    assert "db restarting in 5 min" in ctx and "new claim: docker: held by " + other in ctx
    assert "lunch" not in ctx
    print(f"\nmid-turn delivery ({len(ctx.splitlines())} lines): {len(ctx)} chars, ~{len(ctx) // 4} tokens")
    assert silent(hook(cb, "post-tool", post_json(s, tmp_path)))          # shown once
    ctx = hook_out(hook(cb, "prompt", prompt_json(s, tmp_path)), "UserPromptSubmit")["additionalContext"]
    assert "lunch" in ctx and "can you stop" not in ctx and "rebuilding" not in ctx


def test_post_tool_is_throttled_without_touching_the_database(db, sql, cb, tmp_path, monkeypatch):
    s = sid()
    me, _ = start(cb, s, tmp_path)
    _, env = peer(cb)
    monkeypatch.setenv("CLAMBAKE_DELIVERY_INTERVAL", "1h")
    assert silent(hook(cb, "post-tool", post_json(s, tmp_path)))          # checks, nothing new
    assert cb("send", "--to", me, "--type", "warning", "--subject", "careful", env=env).code == 0
    # within the interval: no check at all, even with the database gone
    assert silent(hook(cb, "post-tool", post_json(s, tmp_path),
                       env={"CLAMBAKE_DSN": "host=127.0.0.1 port=1 dbname=x connect_timeout=1"}))
    # a cd is checked at once
    (tmp_path / "sub").mkdir()
    ctx = hook_out(hook(cb, "post-tool", post_json(s, tmp_path / "sub")), "PostToolUse")["additionalContext"]
    assert "careful" in ctx


def test_stop_reminds_once_of_claims_and_of_unread_requests(db, sql, cb, tmp_path, every_call):
    s = sid()
    me, _ = start(cb, s, tmp_path)
    env = {"CLAUDE_CODE_SESSION_ID": s}
    assert silent(hook(cb, "stop", stop_json(s, tmp_path)))               # nothing held: no reminder
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "x", env=env).code == 0
    res = hook(cb, "stop", stop_json(s, tmp_path))
    out = json.loads(res.out)
    assert set(out) == {"decision", "reason"} and out["decision"] == "block"
    assert "you still hold docker" in out["reason"] and "send --type done --resource docker" in out["reason"]
    # the turn continues once with stop_hook_active: silent (no loop); later stops: the same claim, silent
    assert silent(hook(cb, "stop", stop_json(s, tmp_path, active=True)))
    assert silent(hook(cb, "stop", stop_json(s, tmp_path)))
    # a new request addressed to me: reminded (once), with how to reply
    other, penv = peer(cb)
    r = cb.json("send", "--to", me, "--type", "request", "--subject", "need the db", env=penv)
    reason = json.loads(hook(cb, "stop", stop_json(s, tmp_path)).out)["reason"]
    assert f"unread request #{r['id']} from {other}: need the db" in reason and "still hold" not in reason
    assert f"send --reply-to {r['id']}" in reason
    assert silent(hook(cb, "stop", stop_json(s, tmp_path)))
    # a renewed claim is a new state: reminded again
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "y", "--ttl", "3h", env=env).code == 0
    sql("UPDATE clambake.claims SET claimed_at = claimed_at - interval '1 minute'")
    assert "still hold docker" in json.loads(hook(cb, "stop", stop_json(s, tmp_path)).out)["reason"]


def test_subagent_start_gives_identity_and_claims(db, sql, cb, tmp_path):
    s = sid()
    me, _ = start(cb, s, tmp_path)
    holder, env = peer(cb)
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding", env=env).code == 0
    ctx = hook_out(hook(cb, "subagent-start", subagent_json(s, tmp_path)), "SubagentStart")["additionalContext"]
    assert f"a subagent (Explore) of instance {me}" in ctx and clambake.script_cmd() + " check RESOURCE" in ctx
    assert f"- docker: {holder} (infra)" in ctx and "rebuilding" in ctx
    assert silent(hook(cb, "subagent-start", subagent_json(sid(), tmp_path)))   # unknown session: nothing


# --------------------------------------------------------------------------
# the off switch
# --------------------------------------------------------------------------

def test_env_switch_makes_every_hook_a_silent_no_op(db, sql, cb, tmp_path):
    s = sid()
    off = {"CLAMBAKE": "off"}
    assert silent(hook(cb, "session-start", start_json(s, tmp_path), env=off))
    assert sql("SELECT count(*) FROM clambake.instances") == [(0,)]
    holder, env = peer(cb)
    cb("send", "--type", "blocker", "--resource", "docker", "--subject", "x", env=env)
    for event, data in (("prompt", prompt_json(s, tmp_path)), ("pre-tool", bash_json(s, tmp_path, "docker compose down")),
                        ("post-tool", post_json(s, tmp_path)), ("stop", stop_json(s, tmp_path))):
        assert silent(hook(cb, event, data, env=off)), event
    assert "this environment (CLAMBAKE=off)" in cb("status", env=off).out
    assert cb.json("status", env=off)["hooks_off"]["env"] is True


def test_off_session_and_project_and_on_again(db, sql, cb, tmp_path, every_call):
    s = sid()
    me, _ = start(cb, s, tmp_path)
    env = {"CLAUDE_CODE_SESSION_ID": s}
    holder, penv = peer(cb)
    cb("send", "--type", "blocker", "--resource", "docker", "--subject", "x", env=penv)
    res = cb("off", env=env)
    assert res.code == 0 and f"hooks off for this session ({me})" in res.out and "on --session" in res.out
    assert f"session {me}" in cb("status", env=env).out
    assert silent(hook(cb, "pre-tool", bash_json(s, tmp_path, "docker compose down")))   # guard off too
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path)))
    assert silent(hook(cb, "session-start", start_json(s, tmp_path, "compact")))
    assert cb("on", env=env).code == 0
    assert hook_out(hook(cb, "pre-tool", bash_json(s, tmp_path, "docker compose down")),
                    "PreToolUse")["permissionDecision"] == "deny"
    # a project: every session of it, including new ones (not even registered)
    project = sql("SELECT project FROM clambake.instances WHERE instance_id = %s", (me,))[0][0]
    res = cb.json("off", "--project", env=env)
    assert res == {"off": True, "scope": "project", "project": project, "instance_id": None}
    new = sid()
    assert silent(hook(cb, "session-start", start_json(new, tmp_path)))
    assert me_row(sql, new) is None
    assert silent(hook(cb, "pre-tool", bash_json(new, tmp_path, "docker compose down")))
    assert silent(hook(cb, "pre-tool", bash_json(s, tmp_path, "docker compose down")))
    st = cb.json("status", env=env)["hooks_off"]
    assert [p["project"] for p in st["projects"]] == [project] and st["projects"][0]["set_by"] == me
    # the session still ends cleanly (no claims left behind) while off
    assert cb("on", "--project", project).code == 0
    start(cb, new, tmp_path)
    assert me_row(sql, new) is not None


def test_off_needs_an_instance_for_the_session_scope(db, cb, tmp_path):
    res = cb("off", cwd=str(tmp_path))
    assert res.code == 1 and "not registered" in res.err
    res = cb("off", "--project", "Web App", "--session")
    assert res.code == 2
    res = cb("off", "--project", "Web App")
    assert res.code == 0 and "project web-app" in res.out
    assert cb("on", "--project", "web-app").out.startswith("hooks on for project web-app")
    assert "were not off" in cb("on", "--project", "web-app").out


# --------------------------------------------------------------------------
# wait --reply-to
# --------------------------------------------------------------------------

def test_wait_reply_to_waits_for_that_reply_not_other_mail(db, cb, cbp):
    a = cb.json("register", "--project", "a", "--dir", "/a", env={"CLAUDE_CODE_SESSION_ID": "sa"})["instance_id"]
    b = cb.json("register", "--project", "b", "--dir", "/b", env={"CLAUDE_CODE_SESSION_ID": "sb"})["instance_id"]
    q = cb.json("--as", a, "send", "--to", b, "--type", "request", "--subject", "can I restart docker?")["id"]
    cb("--as", b, "send", "--to", a, "--subject", "unrelated chatter")
    result = {}

    def answer():
        time.sleep(1.0)
        cbp("--as", b, "send", "--reply-to", str(q), "--subject", "yes, go ahead")

    t = threading.Thread(target=answer)
    t.start()
    t0 = time.monotonic()
    res = cbp("--as", a, "wait", "--reply-to", str(q), "--timeout", "20s", "--json")
    t.join()
    assert res.code == 0, res
    data = json.loads(res.out)
    assert time.monotonic() - t0 < 15
    assert data["kind"] == "reply" and data["reply_to"] == q
    assert [m["subject"] for m in data["messages"]] == ["yes, go ahead"]
    # the chatter is still unread; a reply already read still answers a later wait at once
    assert "unrelated chatter" in cb("--as", a, "inbox", "--peek").out
    again = cb.json("--as", a, "wait", "--reply-to", str(q), "--timeout", "2s")
    assert again["kind"] == "reply" and again["messages"][0]["subject"] == "yes, go ahead"
    res = cb("--as", a, "wait", "--reply-to", "999999", "--timeout", "1s")
    assert res.code == 1 and "#999999 not found" in res.err
    assert cb("--as", a, "wait", "--reply-to", str(q), "--resource", "docker").code == 2


def test_wait_json_has_one_shape(db, cb):
    a = cb.json("register", "--project", "a", "--dir", "/a", env={"CLAUDE_CODE_SESSION_ID": "sa"})["instance_id"]
    b = cb.json("register", "--project", "b", "--dir", "/b", env={"CLAUDE_CODE_SESSION_ID": "sb"})["instance_id"]
    keys = {"kind", "instance_id", "resource", "reply_to", "messages", "remaining_unread"}
    timeout = json.loads(cb("--as", a, "wait", "--timeout", "0.2s", "--json").out)
    free = cb.json("--as", a, "wait", "--resource", "docker", "--timeout", "1s")
    cb("--as", b, "send", "--to", a, "--subject", "hi")
    msg = cb.json("--as", a, "wait", "--timeout", "1s")
    assert [timeout["kind"], free["kind"], msg["kind"]] == ["timeout", "free", "message"]
    assert set(timeout) == set(free) == set(msg) == keys
    assert msg["messages"][0]["subject"] == "hi" and free["resource"] == "docker"


def test_post_tool_between_checks_costs_no_connection(db, cb, cbp, tmp_path, monkeypatch):
    """The hook runs after every tool call: between checks it is a bare process start (measured)."""
    import statistics
    s = sid()
    start(cb, s, tmp_path)
    monkeypatch.setenv("CLAMBAKE_DELIVERY_INTERVAL", "1h")
    data = json.dumps(post_json(s, tmp_path))
    assert cbp("hook", "post-tool", input=data).code == 0           # the check; then throttled:
    res = cbp("hook", "post-tool", input=data, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert res.code == 0 and res.out == ""
    assert "import time:" in res.err and "psycopg2" not in res.err      # the driver is never loaded
    clambake.precompile()
    installed, _ = clambake.hook_command("post-tool")  # as install-hooks writes it: cached bytecode
    times, floor = [], []
    for _ in range(5):
        t0 = time.monotonic()
        run = subprocess.run(installed, shell=True, input=data, capture_output=True, text=True,
                             env=dict(os.environ, CLAMBAKE_DELIVERY_INTERVAL="1h"))
        times.append(time.monotonic() - t0)
        assert run.returncode == 0 and run.stdout == "", run
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        floor.append(time.monotonic() - t0)
    print(f"\npost-tool between checks, median wall time (real process): {statistics.median(times) * 1000:.0f} ms "
          f"(python -c pass: {statistics.median(floor) * 1000:.0f} ms)")
