"""Claude Code hooks (issue 5): `hook session-start | prompt | pre-tool | session-end`
fed the JSON Claude Code puts on stdin, and `install-hooks` / `uninstall-hooks`.

Every test runs against a real, throwaway Postgres (see conftest.py).  Timing and
database-down tests run `python clambake.py` as real processes, the way Claude Code
runs a hook command.  Measured figures (prompt-hook and session-start medians, the
briefing size on a large database) are printed; run with `-s` to see them.
"""

import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

import psycopg2
import pytest

import clambake
from conftest import SCRIPT, copy_program

PY = sys.executable

# In-process runs: the hook sets CLAUDE_CODE_SESSION_ID / CLAMBAKE_STATEMENT_TIMEOUT in
# os.environ (harmless in a real one-shot process); listing them here makes the conftest
# override restore them after each call.  The hook's fail-open timer ends the process with
# os._exit, which in-process would end pytest itself, so it gets a generous deadline here;
# the real-process tests below check the real 2-second deadline.
INPROC_ENV = {"CLAUDE_CODE_SESSION_ID": None, "CLAMBAKE_STATEMENT_TIMEOUT": None,
              "CLAMBAKE_HOOK_TIMEOUT": "60"}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def sid():
    """A Claude Code session id (a UUID), unique per call."""
    return str(uuid.uuid4())


def payload(event, session, cwd, **fields):
    """The JSON object Claude Code writes on a hook's stdin."""
    d = {"session_id": session,
         "transcript_path": "/home/dev/.claude/projects/-work-shop/%s.jsonl" % session,
         "cwd": str(cwd),
         "hook_event_name": event}
    if event != "SessionStart":
        d["permission_mode"] = "default"
    d.update(fields)
    return d


def start_json(session, cwd, source="startup", **kw):
    return payload("SessionStart", session, cwd, source=source, **kw)


def prompt_json(session, cwd, prompt="fix the failing login test"):
    return payload("UserPromptSubmit", session, cwd, prompt=prompt)


def bash_json(session, cwd, command):
    return payload("PreToolUse", session, cwd, tool_name="Bash",
                   tool_input={"command": command, "description": "run it"},
                   tool_use_id="toolu_01" + uuid.uuid4().hex[:20])


def edit_json(session, cwd, tool, file_path):
    tool_input = {"file_path": file_path}
    if tool == "Write":
        tool_input["content"] = "services: {}\n"
    else:
        tool_input.update(old_string="a", new_string="b")
    return payload("PreToolUse", session, cwd, tool_name=tool, tool_input=tool_input,
                   tool_use_id="toolu_01" + uuid.uuid4().hex[:20])


def end_json(session, cwd, reason="prompt_input_exit"):
    return payload("SessionEnd", session, cwd, reason=reason)


def hook(cb, event, data, env=None, cwd=None):
    """Run `clambake.py hook EVENT` in-process with `data` as JSON on stdin."""
    e = dict(INPROC_ENV)
    e.update(env or {})
    return cb("hook", event, input=json.dumps(data), env=e, cwd=cwd)


def hookp(cbp, event, data, env=None, cwd=None):
    """The same as a real process; returns (result, wall seconds)."""
    t0 = time.monotonic()
    res = cbp("hook", event, input=json.dumps(data), env=env, cwd=cwd)
    return res, time.monotonic() - t0


def hook_out(res, event):
    """Assert a hook printed exactly one JSON object for `event`; return hookSpecificOutput."""
    assert res.code == 0, res
    assert "Traceback" not in res.err, res.err
    lines = [ln for ln in res.out.splitlines() if ln.strip()]
    assert len(lines) == 1, "expected one JSON line on stdout, got: %r" % res.out
    data = json.loads(lines[0])
    # systemMessage (for the human) may come with it when coordination is off
    assert "hookSpecificOutput" in data and set(data) <= {"hookSpecificOutput", "systemMessage"}, data
    out = data["hookSpecificOutput"]
    assert out["hookEventName"] == event, out
    return out


def silent(res):
    """A hook that had nothing to say: exit 0, empty stdout, no traceback."""
    assert res.code == 0, res
    assert res.out == "", "expected no output, got: %r" % res.out
    assert "Traceback" not in res.err, res.err
    return True


def start(cb, session, cwd, source="startup", env=None):
    """session-start in-process -> (instance id, additionalContext)."""
    out = hook_out(hook(cb, "session-start", start_json(session, cwd, source), env=env), "SessionStart")
    ctx = out["additionalContext"]
    row = [r for r in ctx.splitlines() if "you are instance " in r]
    assert row, ctx
    iid = row[0].split("you are instance ", 1)[1].split()[0]
    return iid, ctx


def make_repo(tmp_path, name="Shop API", sub=("src", "api")):
    """A git checkout named `name` (a .git dir at its top); returns (top, a subdir)."""
    top = tmp_path / name
    (top / ".git").mkdir(parents=True)
    d = top.joinpath(*sub)
    d.mkdir(parents=True)
    return top, d


def register(cb, project, tmp_path, name=None):
    d = tmp_path / "others" / (name or project) / uuid.uuid4().hex[:8]
    d.mkdir(parents=True)
    return cb.json("register", "--project", project, "--dir", str(d))["instance_id"]


def instance_row(sql, iid):
    rows = sql("SELECT instance_id, session_key, working_dir, project, model, last_heartbeat "
               "FROM clambake.instances WHERE instance_id = %s", (iid,))
    return rows[0] if rows else None


def inbox_subjects(cb, iid):
    return [m["subject"] for m in cb.json("--as", iid, "inbox", "--peek")["messages"]]


def report(label, value):
    """Print a measured figure (visible with -s)."""
    print("\n[clambake hooks] %s: %s" % (label, value))


# --------------------------------------------------------------------------
# session-start
# --------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["startup", "resume", "clear", "compact"])
def test_session_start_registers_and_briefs_for_each_source(db, sql, cb, tmp_path, source):
    top, cwd = make_repo(tmp_path)
    s = sid()
    res = hook(cb, "session-start", start_json(s, cwd, source, model="claude-sonnet-4-5"))
    out = hook_out(res, "SessionStart")
    ctx = out["additionalContext"]
    rows = sql("SELECT instance_id, session_key, working_dir, project, model FROM clambake.instances")
    assert len(rows) == 1, rows
    iid, key, wd, project, model = rows[0]
    assert "you are instance %s" % iid in ctx
    assert key == s
    assert wd == os.path.realpath(str(cwd))
    assert project == "shop-api"             # the git top level's name, normalised
    assert model == "claude-sonnet-4-5"
    assert "project shop-api" in ctx
    assert len(ctx) <= 6000

    # The same session again (e.g. after /clear, a compaction or --resume) keeps its instance.
    for again in ("resume", "clear", "compact", source):
        iid2, ctx2 = start(cb, s, cwd, again)
        assert iid2 == iid, (again, ctx2)
    assert sql("SELECT count(*) FROM clambake.instances")[0][0] == 1

    # The instance is this session's identity for plain CLI calls too.
    who = cb.json("whoami", env={"CLAUDE_CODE_SESSION_ID": s}, cwd=str(tmp_path))
    assert who["instance_id"] == iid


def test_session_start_project_is_the_directory_name_outside_git(db, sql, cb, tmp_path):
    cwd = tmp_path / "Scratch Notes"
    cwd.mkdir()
    iid, ctx = start(cb, sid(), cwd)
    assert instance_row(sql, iid)[3] == "scratch-notes"
    assert iid.startswith("scratch-notes-")


def test_session_start_without_a_session_id_still_registers(db, sql, cb, tmp_path):
    """Old Claude Code builds or a hand-run hook may give no session_id: still a briefing."""
    data = start_json(None, tmp_path)
    del data["session_id"]
    out = hook_out(hook(cb, "session-start", data), "SessionStart")
    (iid,) = sql("SELECT instance_id FROM clambake.instances")[0]
    assert "you are instance %s" % iid in out["additionalContext"]


def test_env_file_gets_the_export_exactly_once(db, cb, tmp_path):
    _, cwd = make_repo(tmp_path)
    env_file = tmp_path / "claude-env.sh"
    env_file.write_text("export NODE_ENV=development\n")
    s = sid()
    iid, _ = start(cb, s, cwd, env={"CLAUDE_ENV_FILE": str(env_file)})
    iid2, _ = start(cb, s, cwd, "resume", env={"CLAUDE_ENV_FILE": str(env_file)})
    assert iid2 == iid
    text = env_file.read_text()
    assert text == "export NODE_ENV=development\nexport CLAMBAKE_INSTANCE=%s\n" % iid
    assert text.count("CLAMBAKE_INSTANCE") == 1


def test_env_file_without_trailing_newline_is_not_corrupted(db, cb, tmp_path):
    """Another hook may have written its last line without a newline; sourcing the
    file must still set both variables (what Claude Code does before each Bash call)."""
    env_file = tmp_path / "claude-env.sh"
    env_file.write_text("export NODE_ENV=development")
    iid, _ = start(cb, sid(), tmp_path, env={"CLAUDE_ENV_FILE": str(env_file)})
    out = subprocess.run(["bash", "-c", '. "$1"; echo "$NODE_ENV|$CLAMBAKE_INSTANCE"', "x", str(env_file)],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "development|%s" % iid, (out.stdout, out.stderr, env_file.read_text())


def test_exported_instance_is_used_by_later_shell_commands(db, cb, tmp_path):
    """Claude Code sources CLAUDE_ENV_FILE before each Bash call: commands act as the hook's instance."""
    env_file = tmp_path / "claude-env.sh"
    env_file.write_text("")
    iid, _ = start(cb, sid(), tmp_path, env={"CLAUDE_ENV_FILE": str(env_file)})
    other = tmp_path / "elsewhere"
    other.mkdir()
    env = dict(os.environ)
    out = subprocess.run(["bash", "-c", '. "$1"; "$2" "$3" whoami', "x", str(env_file), PY, SCRIPT],
                         capture_output=True, text=True, timeout=60, cwd=str(other), env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(iid), out.stdout


def test_briefing_shows_unread_messages_and_marks_them_read(db, sql, cb, tmp_path):
    _, cwd = make_repo(tmp_path)
    b = register(cb, "shop-api", tmp_path, "b")
    c = register(cb, "billing", tmp_path, "c")
    cb("--as", b, "send", "--to", "@all", "--type", "warning", "--subject", "Postgres restarts at 14:00",
       "--body", "expect 2 minutes of downtime")
    cb("--as", c, "send", "--to", "shop-api", "--type", "request", "--subject", "Please review PR 812")
    cb("--as", b, "send", "--to", "@all", "--type", "info", "--subject", "Lunch order closes soon")
    s = sid()
    iid, ctx = start(cb, s, cwd)
    for subject in ("Postgres restarts at 14:00", "Please review PR 812", "Lunch order closes soon"):
        assert subject in ctx, ctx
    # most urgent first
    assert ctx.index("Postgres restarts") < ctx.index("Please review") < ctx.index("Lunch order")
    # shown in the briefing = read: the inbox is empty now, and the next briefing doesn't repeat them
    assert cb.json("--as", iid, "inbox")["messages"] == []
    iid2, ctx2 = start(cb, s, cwd, "compact")
    assert iid2 == iid
    assert "Postgres restarts at 14:00" not in ctx2 and "Please review PR 812" not in ctx2
    # ... and reading is per recipient: another session still gets them
    other_dir = tmp_path / "second-checkout"
    other_dir.mkdir()
    _, ctx3 = start(cb, sid(), other_dir)
    assert "Postgres restarts at 14:00" in ctx3


def test_briefing_lists_claims_blockers_instances_and_memory(db, sql, cb, tmp_path):
    _, cwd = make_repo(tmp_path)
    b = register(cb, "shop-api", tmp_path, "b")
    c = register(cb, "billing", tmp_path, "c")
    cb("--as", b, "heartbeat", "--task", "migrating the orders table")
    assert cb("--as", c, "send", "--type", "blocker", "--resource", "docker",
              "--subject", "rebuilding all images").code == 0
    assert cb("--as", b, "send", "--type", "blocker", "--subject", "main is broken, do not merge").code == 0
    assert cb("--as", b, "remember", "--type", "gotcha", "--title", "Tests need TZ=UTC",
              "--content", "the date tests fail in other time zones").code == 0
    assert cb("--as", b, "remember", "--global", "--type", "convention", "--title", "Ports 5400-5499 are ours",
              "--content", "never bind outside that range").code == 0
    iid, ctx = start(cb, sid(), cwd)
    assert "docker" in ctx and c in ctx and "rebuilding all images" in ctx
    assert "main is broken, do not merge" in ctx
    assert b in ctx and "migrating the orders table" in ctx
    assert "Tests need TZ=UTC" in ctx
    assert "Ports 5400-5499 are ours" in ctx
    # same project's instances are listed before other projects'
    live = ctx[ctx.index("Other live instances"):]
    assert live.index(b + " (shop-api)") < live.index(c + " (billing)")
    # the last line says how to get more
    assert ctx.rstrip().splitlines()[-1].startswith("More: ")


def test_two_sessions_in_one_directory_get_different_instances(db, sql, cb, tmp_path):
    _, cwd = make_repo(tmp_path)
    s1, s2 = sid(), sid()
    i1, _ = start(cb, s1, cwd)
    i2, ctx2 = start(cb, s2, cwd)
    assert i1 != i2
    assert i1 in ctx2                      # the second one sees the first as a live instance
    keys = dict(sql("SELECT instance_id, session_key FROM clambake.instances"))
    assert keys == {i1: s1, i2: s2}
    # each session keeps its own identity afterwards
    assert start(cb, s1, cwd, "resume")[0] == i1
    assert start(cb, s2, cwd, "resume")[0] == i2
    for s, i in ((s1, i1), (s2, i2)):
        assert cb.json("whoami", env={"CLAUDE_CODE_SESSION_ID": s}, cwd=str(cwd))["instance_id"] == i


# --------------------------------------------------------------------------
# briefing cap on a large database
# --------------------------------------------------------------------------

CLAIMS = [("docker", "rebuilding every image after the base image bump"),
          ("docker-compose.yml", "adding the redis service and new healthchecks"),
          ("port-5432", "running a pg_upgrade rehearsal on the shared server"),
          ("staging-db", "restoring last night's dump into staging for QA"),
          ("npm-cache", "clearing a corrupted npm cache on the build box")]
BLOCKERS = ["main is red: do not merge anything until the flaky auth test is fixed",
            "VPN to the data center is down, deploys will hang",
            "Disk on ci-runner-3 is full; builds there fail with ENOSPC",
            "Rotating the staging secrets, expect 401s for ten minutes"]


def fill_large_db(sql, cb, tmp_path):
    """Hundreds of memories (project and global), dozens of instances and messages,
    several blockers to @all and several active claims, for project shop-api."""
    words = ("docker compose postgres migration retry timeout cache deploy build login token "
             "session schema index vacuum replica backup queue worker cron nginx tls cert").split()
    ptypes = ["architecture", "feature", "issue", "fix", "decision", "pattern", "gotcha", "update"]
    gtypes = ["infrastructure", "convention", "tool", "preference", "lesson"]
    sql("INSERT INTO clambake.project_memory (project, memory_type, title, content, tags, created_by, updated_at) "
        "SELECT CASE WHEN g %% 4 = 0 THEN 'billing' ELSE 'shop-api' END, "
        "  (%(pt)s::text[])[1 + g %% 8], "
        "  'Note ' || g || ': ' || (%(w)s::text[])[1 + g %% 20] || ' ' || (%(w)s::text[])[1 + (g * 7) %% 20] "
        "     || ' behaves differently under load in the checkout flow', "
        "  repeat('When ' || (%(w)s::text[])[1 + g %% 20] || ' misbehaves, check the logs first and then the '"
        "     || 'configuration; the usual cause is a stale value. ', 4), "
        "  ARRAY[(%(w)s::text[])[1 + g %% 20], 'shop'], 'seed', now() - make_interval(mins => g) "
        "FROM generate_series(1, 400) g", {"pt": ptypes, "w": words})
    sql("INSERT INTO clambake.global_memory (memory_type, title, content, tags, created_by, updated_at) "
        "SELECT (%(gt)s::text[])[1 + g %% 5], 'Global ' || g || ': ' || (%(w)s::text[])[1 + g %% 20] "
        "     || ' rule for every project on this machine', "
        "  repeat('Always ' || (%(w)s::text[])[1 + (g * 3) %% 20] || ' before you touch shared infra. ', 6), "
        "  ARRAY['infra'], 'seed', now() - make_interval(mins => g) "
        "FROM generate_series(1, 250) g", {"gt": gtypes, "w": words})
    others = []
    for n in range(36):
        project = ("shop-api", "billing", "frontend", "infra")[n % 4]
        iid = register(cb, project, tmp_path, "o%d" % n)
        cb("--as", iid, "heartbeat", "--task", "working on ticket SHOP-%d: refactor the %s module"
           % (1000 + n, words[n % 20]))
        others.append(iid)
    for n, (resource, reason) in enumerate(CLAIMS):
        res = cb("--as", others[n], "send", "--to", "@all", "--type", "blocker", "--resource", resource,
                 "--subject", reason, "--body", "will post done when finished; ping me if urgent")
        assert res.code == 0, res
    for n, subject in enumerate(BLOCKERS):
        res = cb("--as", others[10 + n], "send", "--to", "@all", "--type", "blocker", "--subject", subject)
        assert res.code == 0, res
    kinds = ["info", "warning", "request", "info"]
    for n in range(40):
        to = ("@all", "shop-api", "@all", "billing")[n % 4]
        res = cb("--as", others[(n * 5) % 36], "send", "--to", to, "--type", kinds[n % 4],
                 "--subject", "Update %d: %s pipeline changed, see the wiki page for the new steps"
                 % (n, words[n % 20]),
                 "--body", "Details: " + " ".join(words[(n + k) % 20] for k in range(40)))
        assert res.code == 0, res
    return others


def test_briefing_respects_its_cap_on_a_large_database(db, sql, cb, cbp, tmp_path):
    _, cwd = make_repo(tmp_path)
    fill_large_db(sql, cb, tmp_path)
    assert sql("SELECT count(*) FROM clambake.project_memory")[0][0] == 400
    assert sql("SELECT count(*) FROM clambake.instances")[0][0] == 36

    def check(ctx, cap):
        assert len(ctx) <= cap, "briefing is %d characters, cap %d:\n%s" % (len(ctx), cap, ctx)
        for resource, reason in CLAIMS:
            assert resource in ctx, (resource, ctx)
            assert reason in ctx, (reason, ctx)       # the claim's blocker subject, in full
        for subject in BLOCKERS:
            assert subject in ctx, (subject, ctx)
        assert "you are instance " in ctx
        assert ctx.rstrip().splitlines()[-1].startswith("More: ")

    # real processes, a new session each time (each one sees all the unread mail)
    times, sizes = [], []
    for _ in range(7):
        res, dt = hookp(cbp, "session-start", start_json(sid(), cwd))
        ctx = hook_out(res, "SessionStart")["additionalContext"]
        check(ctx, 6000)
        times.append(dt)
        sizes.append(len(ctx))
    first_ctx = ctx
    # what did not fit is not lost: it stays unread, and the briefing says how many
    iid = ctx.split("you are instance ", 1)[1].split()[0]
    more = int(ctx.split(" more unread: ", 1)[0].rsplit("(", 1)[1])
    left = cb.json("--as", iid, "inbox", "--peek", "--limit", "500")["messages"]
    assert len(left) == more > 0
    assert not any(m["type"] == "blocker" for m in left)      # every blocker was shown (and is read)
    # the briefing carries more than the required lines: instances, memory, global notes
    assert "Other live instances" in first_ctx and "Project memory" in first_ctx
    assert "Global notes" in first_ctx
    report("session-start on the large DB, median wall time (real process)",
           "%.0f ms (min %.0f, max %.0f, n=%d)" % (statistics.median(times) * 1000, min(times) * 1000,
                                                   max(times) * 1000, len(times)))
    report("briefing size on the large DB", "%d characters (cap 6000)" % statistics.median(sizes))
    assert statistics.median(times) < 2.0

    # a lower cap set by the user
    res, _ = hookp(cbp, "session-start", start_json(sid(), cwd), env={"CLAMBAKE_BRIEFING_MAX": "2000"})
    ctx = hook_out(res, "SessionStart")["additionalContext"]
    check(ctx, 2000)
    report("briefing size with CLAMBAKE_BRIEFING_MAX=2000", "%d characters" % len(ctx))

    # clambake.py installed under a long path: the commands quoted in the briefing get longer,
    # the cap still holds
    deep = tmp_path / "home" / "dev" / ("tools-" * 12) / "coordination" / "clambake-checkout-2025"
    copy_program(deep)
    for cap in ("6000", "2000", "500"):
        p = subprocess.run([PY, str(deep / "clambake.py"), "hook", "session-start"],
                           input=json.dumps(start_json(sid(), cwd)), capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, CLAMBAKE_BRIEFING_MAX=cap))
        assert p.returncode == 0, p.stderr
        ctx = json.loads(p.stdout)["hookSpecificOutput"]["additionalContext"]
        assert str(deep / "clambake.py") in ctx
        if cap != "500":
            check(ctx, int(cap))
        else:   # too small for 5 claims and 4 blockers: the cap is hard, and the briefing says it was cut
            assert len(ctx) <= 500
            assert "briefing cut to its size cap" in ctx and "status" in ctx


# --------------------------------------------------------------------------
# pre-tool guard
# --------------------------------------------------------------------------

@pytest.fixture
def guard(db, cb, tmp_path):
    """A (session sA) and B (session sB) in project /x/shop; B holds `docker`."""
    project = tmp_path / "x" / "shop"
    project.mkdir(parents=True)
    other = tmp_path / "y" / "billing"
    other.mkdir(parents=True)
    sa, sb = sid(), sid()
    a, _ = start(cb, sa, project)
    b, _ = start(cb, sb, other)
    res = cb("--as", b, "send", "--type", "blocker", "--resource", "docker",
             "--subject", "rebuilding the base images")
    assert res.code == 0, res

    class G:
        pass
    g = G()
    g.a, g.b, g.sa, g.sb, g.dir, g.other = a, b, sa, sb, project, other
    return g


def test_guard_denies_a_claimed_resource_to_others(cb, guard):
    res = hook(cb, "pre-tool", bash_json(guard.sa, guard.dir, "docker compose down"))
    out = hook_out(res, "PreToolUse")
    assert out["permissionDecision"] == "deny"
    reason = out["permissionDecisionReason"]
    assert guard.b in reason                              # the holder
    assert "rebuilding the base images" in reason         # their reason
    assert any(tok.endswith("s") and tok[:-1].isdigit() for tok in reason.split()), reason  # an age
    assert " ago" in reason
    # two short lines: who holds what since when and why, then the one command to run
    assert len(reason.splitlines()) == 2 and reason.splitlines()[1].endswith("wait --resource docker --timeout 110s")


def test_guard_allows_the_holder(cb, guard):
    assert silent(hook(cb, "pre-tool", bash_json(guard.sb, guard.other, "docker compose down")))


def test_guard_allows_after_done(cb, guard):
    assert hook_out(hook(cb, "pre-tool", bash_json(guard.sa, guard.dir, "docker compose down")),
                    "PreToolUse")["permissionDecision"] == "deny"
    assert cb("--as", guard.b, "send", "--type", "done", "--resource", "docker",
              "--subject", "images rebuilt").code == 0
    assert silent(hook(cb, "pre-tool", bash_json(guard.sa, guard.dir, "docker compose down")))


def test_guard_ignores_claims_of_a_dead_session(cb, sql, guard):
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '2 hours' WHERE instance_id = %s",
        (guard.b,))
    assert silent(hook(cb, "pre-tool", bash_json(guard.sa, guard.dir, "docker compose down")))


def test_guard_covers_file_edits_of_a_claimed_file(cb, guard):
    assert cb("--as", guard.b, "send", "--type", "blocker", "--resource", "docker-compose.yml",
              "--subject", "adding the redis service").code == 0
    target = str(guard.dir / "docker-compose.yml")
    for tool in ("Edit", "Write", "MultiEdit"):
        out = hook_out(hook(cb, "pre-tool", edit_json(guard.sa, guard.dir, tool, target)), "PreToolUse")
        assert out["permissionDecision"] == "deny", tool
        assert "docker-compose.yml" in out["permissionDecisionReason"]
        assert "adding the redis service" in out["permissionDecisionReason"]
    # other files, and files that merely contain the name, are fine
    for path in (str(guard.dir / "src" / "app.py"), str(guard.dir / "docker-compose.yml.bak"),
                 str(guard.dir / "README.md")):
        assert silent(hook(cb, "pre-tool", edit_json(guard.sa, guard.dir, "Edit", path))), path
    # the holder may edit it
    assert silent(hook(cb, "pre-tool", edit_json(guard.sb, guard.other, "Edit", target)))


@pytest.mark.parametrize("command", ["ls -la", "python clambake.py check docker", "docker ps",
                                     "python /opt/clambake/clambake.py wait --resource docker --timeout 600",
                                     "cat Dockerfile.md", "git log --oneline -5", "grep -r dockerize src/"])
def test_guard_allows_unrelated_commands(cb, guard, command):
    assert silent(hook(cb, "pre-tool", bash_json(guard.sa, guard.dir, command)))


@pytest.mark.parametrize("command", ["docker restart web", "sudo systemctl restart docker", "docker-compose up -d",
                                     "cd app && DOCKER_BUILDKIT=1 docker build ."])
def test_guard_denies_other_commands_touching_the_resource(cb, guard, command):
    out = hook_out(hook(cb, "pre-tool", bash_json(guard.sa, guard.dir, command)), "PreToolUse")
    assert out["permissionDecision"] == "deny"


def test_guard_off_allows_everything(cb, guard):
    assert cb("--as", guard.b, "send", "--type", "blocker", "--resource", "docker-compose.yml",
              "--subject", "adding the redis service").code == 0
    env = {"CLAMBAKE_GUARD": "off"}
    assert silent(hook(cb, "pre-tool", bash_json(guard.sa, guard.dir, "docker compose down"), env=env))
    assert silent(hook(cb, "pre-tool", edit_json(guard.sa, guard.dir, "Edit",
                                                 str(guard.dir / "docker-compose.yml")), env=env))
    # and on again without the setting
    assert hook_out(hook(cb, "pre-tool", bash_json(guard.sa, guard.dir, "docker compose down")),
                    "PreToolUse")["permissionDecision"] == "deny"


def test_guard_ignores_tools_that_change_nothing(cb, guard):
    data = payload("PreToolUse", guard.sa, guard.dir, tool_name="Read",
                   tool_input={"file_path": "/etc/docker/daemon.json"}, tool_use_id="toolu_01x")
    assert silent(hook(cb, "pre-tool", data))


# --------------------------------------------------------------------------
# prompt hook
# --------------------------------------------------------------------------

def test_prompt_prints_nothing_when_nothing_is_new(db, cb, tmp_path):
    s = sid()
    start(cb, s, tmp_path)
    for _ in range(3):
        assert silent(hook(cb, "prompt", prompt_json(s, tmp_path)))


def test_prompt_delivers_a_new_message_once(db, cb, tmp_path):
    s = sid()
    a, _ = start(cb, s, tmp_path)
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path)))
    b = register(cb, "billing", tmp_path)
    assert cb("--as", b, "send", "--to", "@all", "--type", "warning", "--subject", "Restarting Docker in 5 min",
              "--body", "save your work").code == 0
    out = hook_out(hook(cb, "prompt", prompt_json(s, tmp_path)), "UserPromptSubmit")
    ctx = out["additionalContext"]
    assert "Restarting Docker in 5 min" in ctx and b in ctx and "save your work" in ctx
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path)))
    assert cb.json("--as", a, "inbox")["messages"] == []          # delivered = read
    # a direct message is delivered the same way
    assert cb("--as", b, "send", "--to", a, "--type", "request", "--subject", "Can you review PR 77?").code == 0
    assert "Can you review PR 77?" in hook_out(hook(cb, "prompt", prompt_json(s, tmp_path)),
                                               "UserPromptSubmit")["additionalContext"]
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path)))


def test_prompt_announces_a_new_claim_once(db, cb, tmp_path):
    s = sid()
    start(cb, s, tmp_path)
    b = register(cb, "billing", tmp_path)
    assert cb("--as", b, "send", "--type", "blocker", "--resource", "docker",
              "--subject", "pruning volumes").code == 0
    ctx = hook_out(hook(cb, "prompt", prompt_json(s, tmp_path)), "UserPromptSubmit")["additionalContext"]
    assert "docker" in ctx and b in ctx and "pruning volumes" in ctx
    assert ctx.count("pruning volumes") == 1          # the claim and its blocker message: one line
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path)))
    # a blocker without a resource is announced once as well
    assert cb("--as", b, "send", "--type", "blocker", "--subject", "prod deploy frozen").code == 0
    ctx = hook_out(hook(cb, "prompt", prompt_json(s, tmp_path)), "UserPromptSubmit")["additionalContext"]
    assert "prod deploy frozen" in ctx
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path)))


def test_prompt_ignores_own_messages_and_claims(db, cb, tmp_path):
    s = sid()
    a, _ = start(cb, s, tmp_path)
    assert cb("--as", a, "send", "--type", "blocker", "--resource", "docker", "--subject", "mine").code == 0
    assert cb("--as", a, "send", "--to", "@all", "--type", "info", "--subject", "hello all").code == 0
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path)))


def test_prompt_from_an_unknown_session_joins(db, sql, cb, tmp_path):
    """Hooks installed mid-session: the first prompt registers the session."""
    s = sid()
    res = hook(cb, "prompt", prompt_json(s, tmp_path))
    assert res.code == 0, res
    rows = sql("SELECT session_key, working_dir FROM clambake.instances")
    assert rows == [(s, os.path.realpath(str(tmp_path)))]


def test_prompt_heartbeat_is_throttled(db, sql, cb, tmp_path):
    s = sid()
    a, _ = start(cb, s, tmp_path)
    env = {"CLAMBAKE_HOOK_HEARTBEAT": "1s"}

    def beat():
        return instance_row(sql, a)[5]

    h0 = beat()
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path), env=env))
    assert beat() == h0                        # fresh: not written again
    time.sleep(1.2)
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path), env=env))
    h1 = beat()
    assert h1 > h0                             # older than the throttle: refreshed
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path), env=env))
    assert beat() == h1
    # the default throttle (60s) does not write on every prompt
    time.sleep(1.2)
    assert silent(hook(cb, "prompt", prompt_json(s, tmp_path)))
    assert beat() == h1


def test_prompt_hook_is_fast_when_nothing_is_new(db, cb, cbp, tmp_path):
    s = sid()
    start(cb, s, tmp_path)
    # some traffic that is not for this session or already seen
    b = register(cb, "billing", tmp_path)
    for n in range(20):
        cb("--as", b, "send", "--to", "billing", "--type", "info", "--subject", "billing note %d" % n)
    times = []
    for _ in range(9):
        res, dt = hookp(cbp, "prompt", prompt_json(s, tmp_path))
        assert silent(res)
        times.append(dt)
    med = statistics.median(times)
    report("prompt hook, nothing new, median wall time (real process)",
           "%.0f ms (min %.0f, max %.0f, n=%d)" % (med * 1000, min(times) * 1000, max(times) * 1000,
                                                   len(times)))
    assert med < 1.0


# --------------------------------------------------------------------------
# session-end
# --------------------------------------------------------------------------

def test_session_end_deregisters_and_releases_claims(db, sql, cb, tmp_path):
    sa, sb = sid(), sid()
    a, _ = start(cb, sa, tmp_path)
    b, _ = start(cb, sb, tmp_path)
    assert cb("--as", a, "send", "--type", "blocker", "--resource", "docker", "--subject", "restart").code == 0
    assert cb("--as", a, "send", "--type", "blocker", "--resource", "port-8080", "--subject", "dev server").code == 0
    assert cb("--as", a, "send", "--type", "blocker", "--subject", "do not merge").code == 0
    assert cb("check", "docker", env={"CLAMBAKE_INSTANCE": b}).code == 1
    res = hook(cb, "session-end", end_json(sa, tmp_path, "prompt_input_exit"))
    assert silent(res)
    assert instance_row(sql, a) is None
    assert instance_row(sql, b) is not None
    assert sql("SELECT count(*) FROM clambake.claims")[0][0] == 0
    assert cb("check", "docker", env={"CLAMBAKE_INSTANCE": b}).code == 0
    assert cb("check", "port-8080", env={"CLAMBAKE_INSTANCE": b}).code == 0
    # the guard lets B through now, and A's blockers no longer show as open
    assert silent(hook(cb, "pre-tool", bash_json(sb, tmp_path, "docker compose down")))
    status = cb.json("--as", b, "status")
    assert "do not merge" not in json.dumps(status["blockers"])
    assert "do not merge" not in cb("--as", b, "status").out.split("recent:")[0]
    # the departure is in the log
    hist = cb("history", "--limit", "5", env={"CLAMBAKE_INSTANCE": b})
    assert a in hist.out and "deregister" in hist.out


def test_session_end_of_an_unknown_session_is_quiet(db, cb, tmp_path):
    assert silent(hook(cb, "session-end", end_json(sid(), tmp_path, "other")))


def test_session_end_then_new_session_start_registers_again(db, sql, cb, tmp_path):
    s = sid()
    a, _ = start(cb, s, tmp_path)
    assert silent(hook(cb, "session-end", end_json(s, tmp_path, "clear")))
    a2, _ = start(cb, s, tmp_path, "clear")
    assert instance_row(sql, a2)[1] == s
    assert sql("SELECT count(*) FROM clambake.instances")[0][0] == 1


# --------------------------------------------------------------------------
# database down: fail open, fast
# --------------------------------------------------------------------------

class HungServer:
    """A TCP server that accepts connections and never answers (a hung Postgres)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def hung_port():
    srv = HungServer()
    yield srv.port
    srv.close()


@pytest.fixture
def sessions():
    """Unique session ids; their 'coordination is off' marker files are removed afterwards."""
    made = []

    def new():
        s = sid()
        made.append(s)
        return s
    yield new
    for s in made:
        try:
            os.remove(clambake.off_marker(s))
        except OSError:
            pass


def check_all_hooks_fail_open(cbp, tmp_path, port, session, expect_reason):
    env = {"CLAMBAKE_DSN": "host=127.0.0.1 port=%d dbname=clambake user=postgres password=s3cret-pw" % port}
    res, dt = hookp(cbp, "session-start", start_json(session, tmp_path), env=env)
    assert dt < 2.5, dt
    ctx = hook_out(res, "SessionStart")["additionalContext"]
    assert "coordination is off" in ctx and expect_reason in ctx, ctx
    # the human is told too (systemMessage), with what to check: host:port/db and user, never the password
    human = json.loads(res.out)["systemMessage"]
    assert "coordination is off" in human and "127.0.0.1:%d/clambake" % port in human, human
    assert "user postgres" in human and "CLAMBAKE_DSN" in human and "s3cret" not in res.out, human
    # the remaining hooks: exit 0 in time, say nothing more, never deny
    for event, data in (("session-start", start_json(session, tmp_path, "resume")),
                        ("prompt", prompt_json(session, tmp_path)),
                        ("pre-tool", bash_json(session, tmp_path, "docker compose down")),
                        ("pre-tool", edit_json(session, tmp_path, "Edit", str(tmp_path / "docker-compose.yml"))),
                        ("session-end", end_json(session, tmp_path))):
        res, dt = hookp(cbp, event, data, env=env)
        assert dt < 2.5, (event, dt)
        assert silent(res), (event, res)
    # a different session is told once too
    other = session + "-2"
    try:
        res, dt = hookp(cbp, "prompt", prompt_json(other, tmp_path), env=env)
        assert dt < 2.5
        assert "coordination is off" in hook_out(res, "UserPromptSubmit")["additionalContext"]
        res, dt = hookp(cbp, "prompt", prompt_json(other, tmp_path), env=env)
        assert silent(res)
    finally:
        try:
            os.remove(clambake.off_marker(other))
        except OSError:
            pass


def test_database_refusing_connections_every_hook_exits_0_fast(cbp, tmp_path, closed_port, sessions):
    check_all_hooks_fail_open(cbp, tmp_path, closed_port, sessions(), "database unreachable")


def test_database_hung_every_hook_exits_0_fast(cbp, tmp_path, hung_port, sessions):
    check_all_hooks_fail_open(cbp, tmp_path, hung_port, sessions(), "coordination is off")


@pytest.mark.parametrize("event", ["session-start", "prompt", "pre-tool", "session-end"])
def test_hung_database_each_hook_alone_exits_0_fast(cbp, tmp_path, hung_port, sessions, event):
    s = sessions()
    data = {"session-start": start_json(s, tmp_path), "prompt": prompt_json(s, tmp_path),
            "pre-tool": bash_json(s, tmp_path, "docker compose down"),
            "session-end": end_json(s, tmp_path)}[event]
    res, dt = hookp(cbp, event, data,
                    env={"CLAMBAKE_DSN": "host=127.0.0.1 port=%d dbname=x user=postgres" % hung_port})
    assert res.code == 0, res
    assert dt < 2.5, dt
    assert "Traceback" not in res.err
    if event == "session-end":
        assert res.out == ""
    elif event == "pre-tool":       # never a decision: at most the human's systemMessage
        assert res.out == "" or list(json.loads(res.out)) == ["systemMessage"], res.out


def test_a_hook_stuck_on_a_lock_gives_up_at_its_deadline(db, cbp, tmp_path, sessions):
    """The hook's own deadline (CLAMBAKE_HOOK_TIMEOUT) ends it even when the server answers but a statement
    waits on a lock longer than that: exit 0, told that coordination is off."""
    s = sessions()
    res, _ = hookp(cbp, "session-start", start_json(s, tmp_path))
    assert res.code == 0, res
    locker = psycopg2.connect(db.dsn)
    try:
        cur = locker.cursor()
        cur.execute("LOCK TABLE clambake.instances IN ACCESS EXCLUSIVE MODE")
        res, dt = hookp(cbp, "prompt", prompt_json(s, tmp_path),
                        env={"CLAMBAKE_HOOK_TIMEOUT": "1s", "CLAMBAKE_STATEMENT_TIMEOUT": "20s"})
    finally:
        locker.rollback()
        locker.close()
    assert res.code == 0 and "Traceback" not in res.err, res
    assert 1.0 <= dt < 2.5, dt
    assert "database too slow" in json.loads(res.out)["systemMessage"], res.out


def test_coordination_back_after_an_outage(db, cbp, tmp_path, closed_port, sessions):
    """Down at session start, up again later: the next session-start registers and says nothing about 'off'."""
    s = sessions()
    down = {"CLAMBAKE_DSN": "host=127.0.0.1 port=%d dbname=x user=postgres" % closed_port}
    res, _ = hookp(cbp, "session-start", start_json(s, tmp_path), env=down)
    assert "coordination is off" in hook_out(res, "SessionStart")["additionalContext"]
    res, _ = hookp(cbp, "session-start", start_json(s, tmp_path, "resume"))
    ctx = hook_out(res, "SessionStart")["additionalContext"]
    assert "coordination is off" not in ctx and "you are instance " in ctx


def test_garbage_on_stdin_never_breaks_the_session(db, cbp, tmp_path):
    for event in ("session-start", "prompt", "pre-tool", "session-end"):
        res = cbp("hook", event, input="this is not json {")
        assert res.code == 0, (event, res)
        assert "Traceback" not in res.err


# --------------------------------------------------------------------------
# install-hooks / uninstall-hooks
# --------------------------------------------------------------------------

ORIGINAL_SETTINGS = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm run test:*)", "Read(~/.zshrc)"], "deny": ["Read(./.env)"]},
    "env": {"NODE_ENV": "development", "DISABLE_TELEMETRY": "1"},
    "hooks": {
        "SessionStart": [{"hooks": [{"type": "command", "command": "~/.local/bin/direnv-export-hook"}]}],
        "PreToolUse": [{"matcher": "Bash",
                        "hooks": [{"type": "command", "command": "/usr/local/bin/bash-audit --strict",
                                   "timeout": 3}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "say done"}]}],
    },
    "statusLine": {"type": "command", "command": "~/.claude/statusline.sh"},
}


def write_settings(path, data, indent=4):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=indent) + "\n"
    path.write_text(text)
    return text


def our_entries(settings):
    """{event: (matcher, command, timeout)} for clambake's hook entries."""
    found = {}
    for event, groups in settings.get("hooks", {}).items():
        for g in groups:
            for h in g["hooks"]:
                if "clambake.py" in h.get("command", ""):
                    assert event not in found, "two clambake entries for %s" % event
                    found[event] = (g.get("matcher"), h["command"], h.get("timeout"))
    return found


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def test_install_hooks_merges_into_user_settings(cb, home):
    settings = home / ".claude" / "settings.json"
    original_text = write_settings(settings, ORIGINAL_SETTINGS)
    res = cb("install-hooks", env={"HOME": str(home)})
    assert res.code == 0, res
    assert str(settings) in res.out
    data = json.loads(settings.read_text())
    # other settings untouched
    for key in ("model", "permissions", "env", "statusLine"):
        assert data[key] == ORIGINAL_SETTINGS[key]
    # other hooks untouched and still first
    assert data["hooks"]["SessionStart"][0] == ORIGINAL_SETTINGS["hooks"]["SessionStart"][0]
    assert data["hooks"]["PreToolUse"][0] == ORIGINAL_SETTINGS["hooks"]["PreToolUse"][0]
    assert data["hooks"]["Stop"][0] == ORIGINAL_SETTINGS["hooks"]["Stop"][0]
    ours = our_entries(data)
    subs = {"SessionStart": "session-start", "UserPromptSubmit": "prompt", "PreToolUse": "pre-tool",
            "PostToolUse": "post-tool", "Stop": "stop", "SubagentStart": "subagent-start", "CwdChanged": "cwd",
            "SessionEnd": "session-end"}
    assert set(ours) == set(subs)
    for event, (matcher, command, timeout) in ours.items():
        argv = shlex.split(command)
        # the Python running install-hooks loads this clambake.py (by absolute path) as a module
        assert argv[:2] == [sys.executable, "-c"], command
        assert argv[3:] == [os.path.abspath(SCRIPT), "hook", subs[event]], command
        assert os.path.isabs(argv[0]) and os.path.isabs(argv[3])
        assert isinstance(timeout, int) and 2 < timeout <= 60
    assert ours["PreToolUse"][0] and "Bash" in ours["PreToolUse"][0].split("|")
    assert "Edit" in ours["PreToolUse"][0].split("|") and "Write" in ours["PreToolUse"][0].split("|")
    # a backup of the original
    backups = [p for p in settings.parent.iterdir() if p.name != "settings.json" and "bak" in p.name]
    assert backups, list(settings.parent.iterdir())
    assert json.loads(backups[0].read_text()) == ORIGINAL_SETTINGS
    assert backups[0].read_text() == original_text


def test_install_hooks_is_idempotent_and_keeps_the_first_backup(cb, home):
    settings = home / ".claude" / "settings.json"
    original_text = write_settings(settings, ORIGINAL_SETTINGS)
    env = {"HOME": str(home)}
    assert cb("install-hooks", env=env).code == 0
    once = json.loads(settings.read_text())
    assert cb("install-hooks", env=env).code == 0
    assert cb("install-hooks", "--user", env=env).code == 0
    assert json.loads(settings.read_text()) == once
    # the backup still holds the settings from before clambake, not an earlier install
    backup = settings.parent / "settings.json.clambake.bak"
    assert backup.read_text() == original_text


def test_install_hooks_dry_run_writes_nothing(cb, home):
    settings = home / ".claude" / "settings.json"
    original_text = write_settings(settings, ORIGINAL_SETTINGS)
    before = sorted(p.name for p in settings.parent.iterdir())
    res = cb("install-hooks", "--dry-run", env={"HOME": str(home)})
    assert res.code == 0, res
    assert "clambake.py" in res.out and "UserPromptSubmit" in res.out   # shows what it would write
    assert settings.read_text() == original_text
    assert sorted(p.name for p in settings.parent.iterdir()) == before
    # and into a home without any settings yet: still nothing written
    empty_home = home.parent / "home2"
    empty_home.mkdir()
    assert cb("install-hooks", "--dry-run", env={"HOME": str(empty_home)}).code == 0
    assert not (empty_home / ".claude").exists()


def test_uninstall_restores_the_original_settings(cb, home):
    settings = home / ".claude" / "settings.json"
    write_settings(settings, ORIGINAL_SETTINGS)
    env = {"HOME": str(home)}
    assert cb("install-hooks", env=env).code == 0
    assert cb("install-hooks", env=env).code == 0
    res = cb("uninstall-hooks", "--dry-run", env=env)
    assert res.code == 0
    assert our_entries(json.loads(settings.read_text()))          # dry run: still installed
    res = cb("uninstall-hooks", env=env)
    assert res.code == 0, res
    assert json.loads(settings.read_text()) == ORIGINAL_SETTINGS
    # nothing left to remove: says so, changes nothing
    text = settings.read_text()
    res = cb("uninstall-hooks", env=env)
    assert res.code == 0 and "nothing" in res.out
    assert settings.read_text() == text


def test_uninstall_keeps_a_user_hook_added_next_to_ours(cb, home):
    settings = home / ".claude" / "settings.json"
    write_settings(settings, ORIGINAL_SETTINGS)
    env = {"HOME": str(home)}
    assert cb("install-hooks", env=env).code == 0
    data = json.loads(settings.read_text())
    # the user adds their own hook into clambake's UserPromptSubmit group afterwards
    group = [g for g in data["hooks"]["UserPromptSubmit"] if our_entries({"hooks": {"x": [g]}})][0]
    group["hooks"].append({"type": "command", "command": "~/bin/log-prompt"})
    settings.write_text(json.dumps(data, indent=2))
    assert cb("uninstall-hooks", env=env).code == 0
    after = json.loads(settings.read_text())
    assert our_entries(after) == {}
    assert after["hooks"]["UserPromptSubmit"] == [{"hooks": [{"type": "command", "command": "~/bin/log-prompt"}]}]
    for key in ("SessionStart", "PreToolUse", "Stop"):
        assert after["hooks"][key] == ORIGINAL_SETTINGS["hooks"][key]


def test_install_into_a_fresh_home_then_uninstall(cb, home):
    env = {"HOME": str(home)}
    assert cb("install-hooks", env=env).code == 0
    settings = home / ".claude" / "settings.json"
    assert set(our_entries(json.loads(settings.read_text()))) == {
        e for e, _, _ in clambake.HOOK_EVENTS.values()}
    assert cb("uninstall-hooks", env=env).code == 0
    assert json.loads(settings.read_text()) == {}


@pytest.mark.parametrize("flag, name", [("--local", "settings.local.json")])   # --project: test_install.py
def test_install_project_and_local(cb, home, tmp_path, flag, name):
    proj = tmp_path / "proj"
    proj.mkdir()
    env = {"HOME": str(home)}
    existing = {"permissions": {"allow": ["Bash(make:*)"]},
                "hooks": {"PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command",
                                                                          "command": "npx prettier --write"}]}]}}
    target = proj / ".claude" / name
    write_settings(target, existing, indent=2)
    res = cb("install-hooks", flag, env=env, cwd=str(proj))
    assert res.code == 0, res
    data = json.loads(target.read_text())
    assert set(our_entries(data)) == {e for e, _, _ in clambake.HOOK_EVENTS.values()}
    assert data["hooks"]["PostToolUse"][0] == existing["hooks"]["PostToolUse"][0]   # theirs kept, first
    assert not (home / ".claude").exists()                       # user settings untouched
    other = "settings.local.json" if name == "settings.json" else "settings.json"
    assert not (proj / ".claude" / other).exists()
    assert cb("uninstall-hooks", flag, env=env, cwd=str(proj)).code == 0
    assert json.loads(target.read_text()) == existing


@pytest.mark.parametrize("text", ['{"model": "opus",', "[1, 2, 3]\n", '{"hooks": {"SessionStart": {"x": 1}}}'])
def test_install_refuses_invalid_settings(cb, home, text):
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(text)
    env = {"HOME": str(home)}
    for cmd in ("install-hooks", "uninstall-hooks"):
        res = cb(cmd, env=env)
        if cmd == "uninstall-hooks" and text.startswith('{"hooks"'):
            assert res.code == 0            # valid JSON with nothing of ours: nothing to remove
        else:
            assert res.code == 1, (cmd, res)
            assert str(settings) in res.err and "clambake: error:" in res.err
            assert "Traceback" not in res.err
        assert settings.read_text() == text
    assert sorted(p.name for p in settings.parent.iterdir()) == ["settings.json"]


def test_installed_command_runs_end_to_end(db, sql, cb, home, tmp_path):
    # clambake.py kept in a directory with a space in its name, installed by running that copy
    tools = tmp_path / "My Tools"
    script = copy_program(tools)
    p = subprocess.run([PY, str(script), "install-hooks"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, HOME=str(home)), stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    ours = our_entries(json.loads((home / ".claude" / "settings.json").read_text()))
    workdir = tmp_path / "work"
    workdir.mkdir()
    s = sid()
    proc_env = dict(os.environ)                 # CLAMBAKE_DSN of the test database
    proc_env["HOME"] = str(home)

    def run(event, data):
        p = subprocess.run(ours[event][1], shell=True, input=json.dumps(data), capture_output=True,
                           text=True, timeout=30, cwd=str(workdir), env=proc_env)
        assert p.returncode == 0, p.stderr
        return p

    assert all(str(script) in shlex.split(cmd) for _, cmd, _ in ours.values())
    p = run("SessionStart", start_json(s, workdir))
    ctx = json.loads(p.stdout)["hookSpecificOutput"]["additionalContext"]
    (iid,) = sql("SELECT instance_id FROM clambake.instances WHERE session_key = %s", (s,))[0]
    assert "you are instance %s" % iid in ctx
    assert run("UserPromptSubmit", prompt_json(s, workdir)).stdout == ""
    assert run("PreToolUse", bash_json(s, workdir, "ls")).stdout == ""
    assert run("SessionEnd", end_json(s, workdir)).stdout == ""
    assert sql("SELECT count(*) FROM clambake.instances")[0][0] == 0


def test_a_resume_whose_instance_went_meanwhile_registers_through_the_full_path(db, cb, sql, tmp_path):
    """session-start finds and updates a known session's instance in one statement, without the
    registration lock.  When the instance is gone (cleanup, deregister from another shell), that statement
    finds nothing and the full, locked path runs: the session still ends up with exactly one live instance."""
    session = str(uuid.uuid4())
    first, _ = start(cb, session, str(tmp_path))
    sql("DELETE FROM clambake.instances WHERE instance_id = %s", (first,))
    again, ctx = start(cb, session, str(tmp_path), source="resume")
    rows = sql("SELECT instance_id, session_key, resumed_at IS NOT NULL AS resumed FROM clambake.instances")
    assert [r[1] for r in rows] == [session] and rows[0][0] == again and rows[0][2], rows
    # and the usual case: the instance found is updated in place, as resumed
    assert start(cb, session, str(tmp_path), source="resume")[0] == again
    assert sql("SELECT count(*) FROM clambake.instances")[0][0] == 1
