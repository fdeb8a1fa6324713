"""Registry, identity, status, cleanup, and the error/exit-code contract."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "clambake.py")


def closed_port():
    """A local TCP port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_dsn(**extra):
    parts = {"host": "127.0.0.1", "port": closed_port(), "dbname": "docdb", "user": "postgres"}
    parts.update(extra)
    return " ".join("%s=%s" % kv for kv in parts.items())


def instance_ids(sql):
    return [r[0] for r in sql("SELECT instance_id FROM clambake.instances ORDER BY id")]


def register(cb, d, *extra, env=None):
    res = cb("register", "--json", *extra, cwd=d, env=env)
    assert res.code == 0, res
    return json.loads(res.out)["instance_id"]


def make_dirs(tmp_path, *names):
    out = []
    for n in names:
        p = tmp_path / n
        p.mkdir(parents=True, exist_ok=True)
        out.append(str(p))
    return out


# --------------------------------------------------------------------------
# identity
# --------------------------------------------------------------------------

def test_two_directories_on_one_host_act_as_themselves(db, cb, sql, tmp_path):
    a, b = make_dirs(tmp_path, "alpha", "beta")
    ida = register(cb, a, "--project", "alpha")
    idb = register(cb, b, "--project", "beta")
    assert ida != idb
    assert cb.json("whoami", cwd=a)["instance_id"] == ida
    assert cb.json("whoami", cwd=b)["instance_id"] == idb

    res = cb("heartbeat", "--task", "building alpha", cwd=a)
    assert res.code == 0, res
    assert ida in res.out
    res = cb("heartbeat", "--task", "testing beta", "--status", "busy", cwd=b)
    assert res.code == 0, res
    tasks = dict(sql("SELECT instance_id, current_task FROM clambake.instances"))
    assert tasks == {ida: "building alpha", idb: "testing beta"}
    assert sql("SELECT status FROM clambake.instances WHERE instance_id = %s", (ida,)) == [("active",)]
    assert sql("SELECT status FROM clambake.instances WHERE instance_id = %s", (idb,)) == [("busy",)]

    status = cb.json("status", cwd=a)
    by_id = {i["instance_id"]: i for i in status["instances"]}
    assert by_id[ida]["project"] == "alpha" and by_id[idb]["project"] == "beta"
    assert status["me"] == ida

    res = cb("deregister", cwd=b)
    assert res.code == 0 and idb in res.out
    assert instance_ids(sql) == [ida]
    assert cb("whoami", cwd=b).code == 1
    assert cb.json("whoami", cwd=a)["instance_id"] == ida


def test_nested_directory_picks_nearest_ancestor(db, cb, tmp_path):
    outer, inner, deep, side = make_dirs(tmp_path, "repo", "repo/pkg", "repo/pkg/src/deep", "repo/docs")
    id_outer = register(cb, outer, "--project", "repo")
    id_inner = register(cb, inner, "--project", "repo")
    assert cb.json("whoami", cwd=deep)["instance_id"] == id_inner
    assert cb.json("whoami", cwd=inner)["instance_id"] == id_inner
    assert cb.json("whoami", cwd=side)["instance_id"] == id_outer
    assert cb.json("whoami", cwd=outer)["instance_id"] == id_outer
    # a directory outside every registered one is not registered
    res = cb("whoami", cwd=str(tmp_path))
    assert res.code == 1


def test_stale_instance_is_not_picked_by_directory(db, cb, sql, tmp_path):
    (d,) = make_dirs(tmp_path, "w")
    iid = register(cb, d, "--project", "w")
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '3 hours'")
    res = cb("whoami", cwd=d)
    assert res.code == 1
    # re-registering from that directory works
    assert register(cb, d, "--project", "w") != iid


def test_same_session_key_keeps_the_same_instance(db, cb, sql, tmp_path):
    a, b = make_dirs(tmp_path, "one", "two")
    env = {"CLAUDE_CODE_SESSION_ID": "sess-S"}
    first = register(cb, a, "--project", "p", env=env)
    assert cb("send", "--to", "@all", "--subject", "hello", env={"CLAMBAKE_INSTANCE": first}).code == 0
    res = cb("register", "--project", "p", cwd=a, env=env)
    assert res.code == 0 and "re-registered " + first in res.out, res
    # even from another directory, the same session is the same instance
    again = register(cb, b, "--project", "p", env=env)
    assert again == first
    assert instance_ids(sql) == [first]
    assert sql("SELECT session_key, working_dir FROM clambake.instances") == [("sess-S", b)]
    # the session key finds it from anywhere
    assert cb.json("whoami", cwd=str(tmp_path), env=env)["instance_id"] == first


@pytest.mark.slow
def test_concurrent_registers_of_one_session_make_one_instance(db, sql, tmp_path):
    env = dict(os.environ, CLAMBAKE_DSN=db.dsn, CLAUDE_CODE_SESSION_ID="race-1")
    procs = [subprocess.Popen([sys.executable, SCRIPT, "register", "--project", "race", "--json"], env=env,
                              cwd=str(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(5)]
    ids = set()
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, (out, err)
        ids.add(json.loads(out)["instance_id"])
    assert len(ids) == 1
    assert instance_ids(sql) == sorted(ids)


def test_two_session_keys_in_one_directory(db, cb, sql, tmp_path):
    (d,) = make_dirs(tmp_path, "shared")
    s1, s2 = {"CLAUDE_CODE_SESSION_ID": "S1"}, {"CLAUDE_CODE_SESSION_ID": "S2"}
    i1 = register(cb, d, "--project", "shared", env=s1)
    i2 = register(cb, d, "--project", "shared", env=s2)
    assert i1 != i2
    assert cb.json("whoami", cwd=d, env=s1)["instance_id"] == i1
    assert cb.json("whoami", cwd=d, env=s2)["instance_id"] == i2
    assert cb("heartbeat", "--task", "from S2", cwd=d, env=s2).code == 0
    assert dict(sql("SELECT instance_id, current_task FROM clambake.instances")) == {i1: None, i2: "from S2"}
    assert cb("deregister", cwd=d, env=s1).code == 0
    assert instance_ids(sql) == [i2]


def test_other_session_key_is_never_picked_up(db, cb, tmp_path):
    (d,) = make_dirs(tmp_path, "dir")
    register(cb, d, "--project", "dir", env={"CLAUDE_CODE_SESSION_ID": "T"})
    res = cb("whoami", cwd=d, env={"CLAUDE_CODE_SESSION_ID": "S"})
    assert res.code == 1, res
    assert "register" in res.err
    res = cb("heartbeat", "--task", "steal", cwd=d, env={"CLAUDE_CODE_SESSION_ID": "S"})
    assert res.code == 1
    # an instance registered without a session key is found by directory
    plain = register(cb, d, "--project", "dir")
    assert cb.json("whoami", cwd=d, env={"CLAUDE_CODE_SESSION_ID": "S"})["instance_id"] == plain


def test_several_instances_in_one_directory_note_the_choice(db, cb, sql, tmp_path):
    (d,) = make_dirs(tmp_path, "same")
    first = register(cb, d, "--project", "same")
    # registering again from the same directory without a session key re-uses the live instance
    assert register(cb, d, "--project", "same") == first
    # once it is stale, a new registration makes a new instance; then both are live again
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '31 minutes' WHERE instance_id = %s",
        (first,))
    second = register(cb, d, "--project", "same")
    assert first != second
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '1 minute' WHERE instance_id = %s",
        (first,))
    res = cb("whoami", cwd=d)
    assert res.code == 0 and res.out.startswith(second)
    assert "note" in res.err and "--as" in res.err


def test_as_prefix_and_env_override(db, cb, sql, tmp_path):
    a, b = make_dirs(tmp_path, "a", "b")
    ida = register(cb, a, "--project", "aproj")
    idb = register(cb, b, "--project", "bproj")
    prefix = idb[:len(idb) - 2]
    # from a's directory, act as b
    assert cb.json("whoami", "--as", prefix, cwd=a)["instance_id"] == idb
    assert cb.json("--as", idb, "whoami", cwd=a)["instance_id"] == idb
    assert cb.json("whoami", cwd=a, env={"CLAMBAKE_INSTANCE": idb})["instance_id"] == idb
    # --as beats CLAMBAKE_INSTANCE
    assert cb.json("whoami", "--as", ida, cwd=b, env={"CLAMBAKE_INSTANCE": idb})["instance_id"] == ida
    assert cb("heartbeat", "--as", prefix, "--task", "via prefix", cwd=a).code == 0
    assert dict(sql("SELECT instance_id, current_task FROM clambake.instances")) == {ida: None, idb: "via prefix"}
    # unknown ids are refused, not silently replaced by the directory's instance
    res = cb("whoami", "--as", "nobody-zzzz", cwd=a)
    assert res.code == 1 and "nobody-zzzz" in res.err
    res = cb("heartbeat", "--task", "x", cwd=a, env={"CLAMBAKE_INSTANCE": "nobody-zzzz"})
    assert res.code == 1 and "CLAMBAKE_INSTANCE" in res.err
    assert dict(sql("SELECT instance_id, current_task FROM clambake.instances"))[ida] is None


def test_ambiguous_as_prefix_is_refused(db, cb, sql):
    sql("INSERT INTO clambake.instances (instance_id, project, host, working_dir) "
        "VALUES ('proj-aaaa', 'proj', 'h', '/x'), ('proj-aabb', 'proj', 'h', '/y')")
    res = cb("whoami", "--as", "proj-aa")
    assert res.code == 1 and "ambiguous" in res.err
    assert cb.json("whoami", "--as", "proj-aab")["instance_id"] == "proj-aabb"


def test_not_registered_hint(db, cb, tmp_path):
    for args in (["whoami"], ["heartbeat"], ["deregister"], ["inbox"]):
        res = cb(*args, cwd=str(tmp_path))
        assert res.code == 1, (args, res)
        lines = res.err.strip().splitlines()
        assert lines[0].startswith("clambake: error: not registered")
        assert "register" in lines[-1] and len(lines) <= 2


# --------------------------------------------------------------------------
# register
# --------------------------------------------------------------------------

def test_register_prints_id_live_others_and_unread(db, cb, sql, tmp_path):
    a, b = make_dirs(tmp_path, "a", "b")
    res = cb("register", "--project", "api", "--task", "wiring routes", "--model", "opus", cwd=a)
    assert res.code == 0, res
    ida = instance_ids(sql)[0]
    first = res.out.splitlines()[0]
    assert first.startswith("registered " + ida) and "api" in first
    assert "live: no other instances" in res.out
    assert "unread: 0" in res.out
    assert len(res.out.splitlines()) <= 5
    assert re.fullmatch(r"api-[a-z0-9]{4}", ida)
    assert cb("send", "--to", "@all", "--type", "warning", "--subject", "docker restart soon", cwd=a).code == 0

    res = cb("register", "--project", "web", cwd=b)
    assert res.code == 0, res
    idb = [i for i in instance_ids(sql) if i != ida][0]
    assert res.out.splitlines()[0].startswith("registered " + idb)
    live = [l for l in res.out.splitlines() if l.startswith("live:")]
    assert live and ida in live[0] and "wiring routes" in live[0]
    assert "unread: 1" in res.out
    row = sql("SELECT project, working_dir, model, current_task, host, pid, status FROM clambake.instances "
              "WHERE instance_id = %s", (ida,))[0]
    assert row[:4] == ("api", a, "opus", "wiring routes")
    assert row[4] == socket.gethostname() and row[5] and row[6] == "active"
    # the register itself was logged
    assert sql("SELECT count(*) FROM clambake.session_log WHERE action = 'register'") == [(2,)]


def test_register_json_keys(db, cb, tmp_path):
    data = cb.json("register", "--project", "k", cwd=str(tmp_path))
    assert set(data) == {"instance_id", "project", "working_dir", "host", "reused", "unread", "live"}
    assert data["reused"] is False and data["unread"] == 0 and data["live"] == []


def test_register_project_defaults_and_normalisation(db, cb, sql, tmp_path):
    (plain,) = make_dirs(tmp_path, "Doc DB")
    res = cb("register", cwd=plain)
    assert res.code == 0, res
    assert sql("SELECT project FROM clambake.instances") == [("doc-db",)]
    assert "doc-db" in res.out

    repo, sub = make_dirs(tmp_path, "My Repo", "My Repo/src/pkg")
    os.mkdir(os.path.join(repo, ".git"))
    data = cb.json("register", cwd=sub)
    assert data["project"] == "my-repo"
    assert data["working_dir"] == sub

    (other,) = make_dirs(tmp_path, "elsewhere")
    data = cb.json("register", "--project", "  Doc   DB ", cwd=other)
    assert data["project"] == "doc-db"
    # --dir is used instead of the current directory
    (target,) = make_dirs(tmp_path, "Target Dir")
    data = cb.json("register", "--dir", target, cwd=other)
    assert data["working_dir"] == target and data["project"] == "target-dir"
    # status and send accept the un-normalised spelling too
    assert cb.json("whoami", cwd=target)["project"] == "target-dir"


def test_register_rejects_bad_input(db, cb, sql, tmp_path):
    assert cb("register", "--project", "x" * 101, cwd=str(tmp_path)).code == 2
    assert cb("register", "--task", "t" * 501, cwd=str(tmp_path)).code == 2
    assert cb("register", "--project", "   ", cwd=str(tmp_path)).code == 2
    assert instance_ids(sql) == []


# --------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------

def test_status_shows_live_instances_with_task_and_age(db, cb, sql, tmp_path):
    a, b, c = make_dirs(tmp_path, "a", "b", "c")
    ida = register(cb, a, "--project", "alpha", "--task", "refactor parser")
    idb = register(cb, b, "--project", "beta", "--task", "write docs")
    idc = register(cb, c, "--project", "gamma", "--task", "gone quiet")
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '7 minutes' WHERE instance_id = %s",
        (idb,))
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '45 minutes' WHERE instance_id = %s",
        (idc,))
    res = cb("status", cwd=a)
    assert res.code == 0, res
    lines = res.out.splitlines()
    assert lines[0].startswith("me: " + ida)
    line_a = [l for l in lines if ida in l and "alpha" in l and not l.startswith("me:")]
    line_b = [l for l in lines if idb in l and "beta" in l]
    assert line_a and "refactor parser" in line_a[0] and re.search(r"\b\d+s ago\b", line_a[0])
    assert line_a[0].startswith("*")
    assert line_b and "write docs" in line_b[0] and "7m ago" in line_b[0]
    assert socket.gethostname() in line_b[0]
    assert "live instances: 2" in res.out
    # the stale instance is not in the live list (the activity log may still mention it)
    live_part = res.out.split("\nrecent:")[0]
    assert idc not in live_part and "gone quiet" not in live_part
    assert idc not in cb("status", "--activity", "0", cwd=a).out
    # not registered: still works, says so
    res = cb("status", cwd=str(tmp_path))
    assert res.code == 0 and "me: not registered" in res.out
    # a longer live window brings the quiet one back
    res = cb("status", cwd=a, env={"CLAMBAKE_LIVE_WINDOW": "1h"})
    assert idc in res.out


def test_status_output_is_bounded(db, cb, sql):
    sql("INSERT INTO clambake.instances (instance_id, project, working_dir, host, current_task) "
        "SELECT 'bulk-' || g, 'proj' || (g % 7), '/w/' || g, 'h', repeat('long task text ', 20) "
        "FROM generate_series(1, 200) g")
    sql("INSERT INTO clambake.session_log (instance_id, project, action, summary) "
        "SELECT 'bulk-' || g, 'p', 'note', repeat('x', 500) FROM generate_series(1, 300) g")
    res = cb("status")
    assert res.code == 0, res
    lines = res.out.splitlines()
    assert len(lines) <= 30, len(lines)
    assert len(res.out) < 4000
    assert "live instances: 200" in res.out
    assert "+185 more" in res.out
    assert max(len(l) for l in lines) <= 200
    data = cb.json("status", "--limit", "40")
    assert data["live_total"] == 200 and len(data["instances"]) == 40


def test_status_claims_and_blockers_are_bounded_and_counted(db, cb, sql):
    sql("INSERT INTO clambake.instances (instance_id, project, working_dir, host) "
        "SELECT 'bulk-' || g, 'p', '/w/' || g, 'h' FROM generate_series(1, 80) g")
    sql("INSERT INTO clambake.claims (resource, instance_id, reason, expires_at) "
        "SELECT 'res' || g, 'bulk-' || g, 'why', now() + interval '1 hour' FROM generate_series(1, 80) g")
    sql("INSERT INTO clambake.messages (from_instance, to_target, target_kind, message_type, subject, expires_at) "
        "SELECT 'bulk-' || g, '@all', 'all', 'blocker', 'block ' || g, now() + interval '1 hour' "
        "FROM generate_series(1, 80) g")
    res = cb("status")
    assert res.code == 0, res
    lines = res.out.splitlines()
    assert len(lines) <= 60, len(lines)
    # the counts are the real totals, and the text says how many it left out
    assert "claims: 80" in lines and "open blockers: 80" in lines
    assert sum("+65 more" in l for l in lines) == 3
    res = cb("status", "--limit", "100")
    assert "res80:" in res.out and "block 80" in res.out
    assert "more" not in res.out


def test_status_json_keys_are_stable(db, cb, sql, tmp_path):
    (a,) = make_dirs(tmp_path, "a")
    ida = register(cb, a, "--project", "alpha", "--task", "t")
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding", cwd=a).code == 0
    data = cb.json("status", cwd=a)
    assert set(data) == {"me", "unread", "live_total", "instances", "claims", "blockers", "activity"}
    assert data["me"] == ida and data["unread"] == 0 and data["live_total"] == 1
    assert set(data["instances"][0]) == {"instance_id", "project", "task", "status", "host", "working_dir",
                                         "heartbeat_age_s"}
    assert set(data["claims"][0]) == {"resource", "instance_id", "project", "reason", "age_s", "expires_in_s",
                                      "message_id"}
    assert data["claims"][0]["resource"] == "docker"
    assert set(data["activity"][0]) == {"instance_id", "project", "action", "summary", "age_s"}
    data = cb.json("whoami", cwd=a)
    assert set(data) == {"instance_id", "project", "working_dir", "host", "session_key", "status", "task",
                         "heartbeat_age_s"}
    data = cb.json("heartbeat", cwd=a)
    assert set(data) == {"instance_id", "task", "status"}


def test_heartbeat_refreshes_and_quiet(db, cb, sql, tmp_path):
    (a,) = make_dirs(tmp_path, "a")
    register(cb, a, "--project", "alpha", "--task", "first")
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '20 minutes'")
    res = cb("heartbeat", "--quiet", cwd=a)
    assert res.code == 0 and res.out == ""
    age = sql("SELECT extract(epoch FROM now() - last_heartbeat) FROM clambake.instances")[0][0]
    assert age < 60
    # heartbeat without --task keeps the task
    assert sql("SELECT current_task FROM clambake.instances") == [("first",)]


def test_any_command_keeps_an_instance_live(db, cb, sql, tmp_path):
    (a,) = make_dirs(tmp_path, "a")
    iid = register(cb, a, "--project", "alpha")
    age = "SELECT extract(epoch FROM now() - last_heartbeat) FROM clambake.instances"
    # a heartbeat less than a minute old is left alone: read commands write nothing
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '30 seconds'")
    assert cb("inbox", cwd=a).code == 0
    assert sql(age)[0][0] >= 30
    # older than a minute: the next command refreshes it
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '10 minutes'")
    assert cb("recall", "--search", "anything", cwd=a).code == 0
    assert sql(age)[0][0] < 60
    # a stale instance is revived by a command that names it, not found by directory
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '45 minutes'")
    assert cb("whoami", cwd=a).code == 1
    assert cb("inbox", "--as", iid, cwd=a).code == 0
    assert sql(age)[0][0] < 60
    assert cb("whoami", cwd=a).code == 0


def test_deregister_releases_claims(db, cb, sql, tmp_path):
    a, b = make_dirs(tmp_path, "a", "b")
    register(cb, a, "--project", "alpha")
    idb = register(cb, b, "--project", "beta")
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "mine", cwd=a).code == 0
    res = cb("deregister", cwd=a)
    assert res.code == 0 and "docker" in res.out
    assert sql("SELECT count(*) FROM clambake.claims") == [(0,)]
    assert instance_ids(sql) == [idb]
    assert cb("check", "docker", cwd=b).code == 0


# --------------------------------------------------------------------------
# cleanup
# --------------------------------------------------------------------------

def _cleanup_fixture_rows(sql):
    sql("INSERT INTO clambake.instances (instance_id, project, host, working_dir, last_heartbeat) VALUES "
        "('stale-3h', 'p', 'h', '/a', now() - interval '3 hours'), "
        "('quiet-45m', 'p', 'h', '/b', now() - interval '45 minutes'), "
        "('fresh', 'p', 'h', '/c', now())")
    sql("INSERT INTO clambake.claims (resource, instance_id, reason, expires_at) VALUES "
        "('docker', 'stale-3h', 'old', now() + interval '1 hour'), "
        "('port 8080', 'fresh', 'mine', now() + interval '1 hour')")
    sql("INSERT INTO clambake.messages (from_instance, to_target, target_kind, message_type, subject, "
        "created_at, expires_at) VALUES "
        "('fresh', '@all', 'all', 'info', 'expired', now() - interval '2 days', now() - interval '1 day'), "
        "('fresh', '@all', 'all', 'info', 'current', now(), now() + interval '1 day')")
    sql("INSERT INTO clambake.session_log (instance_id, action, summary, created_at) VALUES "
        "('fresh', 'note', 'ancient', now() - interval '100 days'), "
        "('fresh', 'note', 'ten days', now() - interval '10 days'), "
        "('fresh', 'note', 'today', now())")


def _state(sql):
    return (instance_ids(sql),
            sql("SELECT resource FROM clambake.claims ORDER BY 1"),
            sql("SELECT subject FROM clambake.messages ORDER BY id"),
            sql("SELECT summary FROM clambake.session_log WHERE action <> 'cleanup' ORDER BY id"))


def test_cleanup_removes_stale_expired_and_old(db, cb, sql):
    _cleanup_fixture_rows(sql)
    res = cb("cleanup")
    assert res.code == 0, res
    assert len(res.out.splitlines()) == 1
    assert res.out.startswith("cleanup: removed 1 instances")
    assert "1 messages" in res.out and "1 log rows" in res.out
    ids, claims, msgs, logs = _state(sql)
    assert ids == ["quiet-45m", "fresh"]
    assert claims == [("port 8080",)]          # the stale holder's claim went with it
    assert msgs == [("current",)]
    assert logs == [("ten days",), ("today",)]
    # running it again finds nothing more
    data = cb.json("cleanup")
    assert data["instances"] == 0 and data["messages"] == 0 and data["log_rows"] == 0
    assert data["dry_run"] is False


def test_cleanup_dry_run_changes_nothing(db, cb, sql):
    _cleanup_fixture_rows(sql)
    before = _state(sql)
    res = cb("cleanup", "--dry-run")
    assert res.code == 0, res
    assert res.out.startswith("cleanup: would remove 1 instances")
    assert "1 messages" in res.out and "1 log rows" in res.out
    assert _state(sql) == before
    assert sql("SELECT count(*) FROM clambake.session_log WHERE action = 'cleanup'") == [(0,)]
    data = cb.json("cleanup", "--dry-run", "--stale-after", "30m", "--log-days", "7")
    assert data["instances"] == 2 and data["log_rows"] == 2 and data["dry_run"] is True
    assert _state(sql) == before


def test_cleanup_quiet_and_thresholds(db, cb, sql):
    _cleanup_fixture_rows(sql)
    res = cb("cleanup", "--quiet", "--stale-after", "30m", "--log-days", "7")
    assert res.code == 0 and res.out == "" and res.err == ""
    ids, claims, msgs, logs = _state(sql)
    assert ids == ["fresh"]
    assert logs == [("today",)]
    # a log-days duration form works too and bad values are usage errors
    assert cb("cleanup", "--log-days", "2w").code == 0
    assert cb("cleanup", "--stale-after", "soon").code == 2
    assert cb("cleanup", "--log-days", "-3").code == 2
    assert cb("cleanup", "--batch", "0").code == 2


@pytest.mark.slow
def test_two_concurrent_cleanups(db, cbp, sql):
    n = 3000
    sql("INSERT INTO clambake.instances (instance_id, project, host, working_dir, last_heartbeat) "
        "SELECT 'old-' || g, 'p', 'h', '/d', now() - interval '5 hours' FROM generate_series(1, %s) g", (n,))
    sql("INSERT INTO clambake.messages (to_target, target_kind, message_type, subject, expires_at) "
        "SELECT '@all', 'all', 'info', 's' || g, now() - interval '1 hour' FROM generate_series(1, %s) g", (n,))
    sql("INSERT INTO clambake.session_log (action, summary, created_at) "
        "SELECT 'note', 'l' || g, now() - interval '200 days' FROM generate_series(1, %s) g", (n,))
    sql("INSERT INTO clambake.instances (instance_id, project, host, working_dir) VALUES ('keep', 'p', 'h', '/k')")
    env = dict(os.environ, CLAMBAKE_DSN=db.dsn)
    procs = [subprocess.Popen([sys.executable, SCRIPT, "cleanup", "--json", "--batch", "100"], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, (out, err)
        assert b"Traceback" not in err
        outs.append(json.loads(out))
    # together they removed everything exactly once
    assert sum(o["instances"] for o in outs) == n
    assert sum(o["messages"] for o in outs) == n
    assert sum(o["log_rows"] for o in outs) == n
    assert instance_ids(sql) == ["keep"]
    assert sql("SELECT count(*) FROM clambake.messages") == [(0,)]
    assert sql("SELECT count(*) FROM clambake.session_log WHERE action <> 'cleanup'") == [(0,)]


def test_cleanup_database_down_exits_3(cbp, _clean_env):
    res = cbp("cleanup", "--quiet", env={"CLAMBAKE_DSN": dead_dsn()})
    assert res.code == 3, res
    assert res.err.startswith("clambake: error:") and "Traceback" not in res.err


# --------------------------------------------------------------------------
# errors and exit codes
# --------------------------------------------------------------------------

def _check_one_line_error(err):
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("clambake: error:"), err
    if len(lines) == 2:
        assert lines[1].startswith("hint:"), err
    assert "Traceback" not in err


def test_unreachable_database_real_process(cbp, _clean_env):
    port = closed_port()
    t0 = time.monotonic()
    res = cbp("status", env={"CLAMBAKE_DSN": "host=127.0.0.1 port=%d dbname=docdb user=postgres" % port})
    elapsed = time.monotonic() - t0
    assert res.code == 3, res
    assert res.out == ""
    _check_one_line_error(res.err)
    assert "127.0.0.1:%d/docdb" % port in res.err
    assert elapsed < 5, elapsed


def test_unreachable_via_db_env_vars(cbp, _clean_env):
    port = closed_port()
    res = cbp("register", "--project", "x", env={"CLAMBAKE_DB_HOST": "127.0.0.1", "CLAMBAKE_DB_PORT": port,
                                                "CLAMBAKE_DB_PASS": "s3cretXYZ",
                                                "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nope"})
    assert res.code == 3, res
    _check_one_line_error(res.err)
    assert "127.0.0.1:%d/docdb" % port in res.err
    assert "s3cretXYZ" not in res.out + res.err


def test_silent_server_times_out_within_connect_timeout(cbp, _clean_env):
    """A server that accepts TCP but never answers must not hang a session."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    try:
        t0 = time.monotonic()
        res = cbp("status", env={"CLAMBAKE_DSN": "host=127.0.0.1 port=%d dbname=docdb user=postgres" % port,
                                 "CLAMBAKE_CONNECT_TIMEOUT": "2"})
        elapsed = time.monotonic() - t0
    finally:
        srv.close()
    assert res.code == 3, res
    _check_one_line_error(res.err)
    assert elapsed < 5, elapsed


def _fake_password_server():
    """A minimal Postgres wire-protocol server that asks for a cleartext
    password and always answers 'password authentication failed'."""
    import struct

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    received = []

    def recv_exact(c, n):
        buf = b""
        while len(buf) < n:
            chunk = c.recv(n - len(buf))
            if not chunk:
                raise ConnectionError
            buf += chunk
        return buf

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            try:
                c.settimeout(10)
                while True:
                    (length,) = struct.unpack("!I", recv_exact(c, 4))
                    body = recv_exact(c, length - 4)
                    code = struct.unpack("!I", body[:4])[0]
                    if code in (80877103, 80877104):       # SSLRequest / GSSENCRequest
                        c.sendall(b"N")
                        continue
                    break                                   # StartupMessage
                c.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
                tag = recv_exact(c, 1)
                (length,) = struct.unpack("!I", recv_exact(c, 4))
                received.append(tag + recv_exact(c, length - 4))
                fields = (b"SFATAL\0VFATAL\0C28P01\0"
                          b"Mpassword authentication failed for user \"postgres\"\0\0")
                c.sendall(b"E" + struct.pack("!I", len(fields) + 4) + fields)
            except (OSError, ConnectionError):
                pass
            finally:
                c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, received


def test_wrong_password_exits_3_and_never_prints_it(cbp, _clean_env):
    srv, received = _fake_password_server()
    port = srv.getsockname()[1]
    try:
        res = cbp("status", env={"CLAMBAKE_DSN": "host=127.0.0.1 port=%d dbname=docdb user=postgres "
                                                 "password=s3cretXYZ sslmode=disable" % port})
        res2 = cbp("status", env={"CLAMBAKE_DSN": "postgresql://postgres:s3cretXYZ@127.0.0.1:%d/docdb" % port})
        res3 = cbp("whoami", env={"CLAMBAKE_DB_HOST": "127.0.0.1", "CLAMBAKE_DB_PORT": port,
                                  "CLAMBAKE_DB_PASS": "s3cretXYZ"})
    finally:
        srv.close()
    assert received and b"s3cretXYZ" in received[0]      # the client really sent it
    for r in (res, res2, res3):
        assert r.code == 3, r
        _check_one_line_error(r.err)
        assert "s3cretXYZ" not in r.out + r.err
        assert "log in" in r.err or "password" in r.err


def test_password_in_unreachable_dsn_is_never_printed(cbp, _clean_env):
    port = closed_port()
    for dsn in ("host=127.0.0.1 port=%d dbname=docdb user=postgres password=s3cretXYZ" % port,
                "postgresql://postgres:s3cretXYZ@127.0.0.1:%d/docdb" % port):
        res = cbp("status", env={"CLAMBAKE_DSN": dsn})
        assert res.code == 3, res
        assert "s3cretXYZ" not in res.out + res.err
        res = cbp("status", env={"CLAMBAKE_DSN": dsn, "CLAMBAKE_DEBUG": "1"})
        assert "s3cretXYZ" not in res.out + res.err


def test_malformed_dsn_is_a_config_error_without_the_password(cbp, _clean_env):
    for dsn in ("host=127.0.0.1 password=s3cretXYZ oops",
                "postgresql://u:s3cret%XYZ@127.0.0.1:1/x",
                "host=127.0.0.1 password='s3cretXYZ"):
        for extra in ({}, {"CLAMBAKE_DEBUG": "1"}):
            res = cbp("status", env=dict(extra, CLAMBAKE_DSN=dsn))
            assert res.code == 3, (dsn, res)
            _check_one_line_error(res.err)
            assert "CLAMBAKE_DSN" in res.err
            assert "s3cret" not in res.out + res.err, (dsn, res)


def test_missing_schema_exits_4_with_init_hint(empty_db, cb, cbp):
    for args in (["status"], ["register", "--project", "x"], ["whoami"], ["cleanup"]):
        res = cb(*args)
        assert res.code == 4, (args, res)
        _check_one_line_error(res.err)
        assert "init" in res.err
    res = cbp("status")
    assert res.code == 4 and "Traceback" not in res.err and "init" in res.err


INVALID = [
    ["heartbeat", "--status", "flying"],
    ["heartbeat", "--task", "t" * 501],
    ["register", "--task", "t" * 501],
    ["register", "--project", "p" * 101],
    ["send", "--subject", "s" * 500],
    ["send", "--subject", "ok", "--type", "shout"],
    ["send", "--subject", "ok", "--ttl", "5x"],
    ["send", "--subject", "ok", "--ttl", "0"],
    ["read", "abc"],
    ["read", "-5"],
    ["read", "99999999999"],
    ["cleanup", "--stale-after", "2 fortnights"],
    ["status", "--limit", "many"],
    ["frobnicate"],
    ["send"],
    [],
]


@pytest.mark.parametrize("argv", INVALID, ids=lambda a: " ".join(a)[:40] or "no-args")
def test_invalid_input_exits_2_before_any_sql(cb, argv, _clean_env):
    res = cb(*argv, env={"CLAMBAKE_DSN": dead_dsn()})
    assert res.code == 2, res
    assert "Traceback" not in res.err


def test_nul_byte_is_invalid_input(cb, _clean_env):
    env = {"CLAMBAKE_DSN": dead_dsn()}
    for argv in (["heartbeat", "--task", "a\x00b"], ["register", "--task", "a\x00b"],
                 ["send", "--subject", "a\x00b"]):
        res = cb(*argv, env=env)
        assert res.code == 2, (argv, res)
        _check_one_line_error(res.err)
        assert "NUL" in res.err


def test_invalid_input_real_process(cbp, _clean_env):
    res = cbp("heartbeat", "--status", "flying", env={"CLAMBAKE_DSN": dead_dsn()})
    assert res.code == 2, res
    _check_one_line_error(res.err)
    assert "flying" in res.err and "active" in res.err
    res = cbp("read", "abc", env={"CLAMBAKE_DSN": dead_dsn()})
    assert res.code == 2 and "Traceback" not in res.err


DB_COMMANDS = [
    ["init"], ["register", "--project", "p"], ["heartbeat"], ["status"], ["whoami"], ["deregister"],
    ["send", "--subject", "s"], ["inbox"], ["read", "1"], ["check", "docker"], ["wait", "--timeout", "1"],
    ["remember", "--type", "fix", "--title", "t", "--content", "c", "--project", "p"],
    ["recall", "--search", "x"], ["update-memory", "1", "--status", "resolved"],
    ["log", "--action", "note", "--summary", "s"], ["history"], ["cleanup"],
]


@pytest.mark.parametrize("argv", DB_COMMANDS, ids=lambda a: a[0])
def test_every_command_exits_3_when_database_down(cb, argv, _clean_env):
    t0 = time.monotonic()
    res = cb(*argv, env={"CLAMBAKE_DSN": dead_dsn()})
    assert res.code == 3, res
    _check_one_line_error(res.err)
    assert time.monotonic() - t0 < 5


def _subcommands():
    import argparse
    import clambake
    parser = clambake.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    raise AssertionError("no subcommands")


def test_help_lists_every_command(cbp):
    res = cbp("--help")
    assert res.code == 0, res
    names = _subcommands()
    assert {"init", "register", "heartbeat", "status", "deregister", "cleanup"} <= set(names)
    for name in names:
        assert re.search(r"^\s+%s\s+\S" % re.escape(name), res.out, re.M), name
        # the example runs as printed: this interpreter and this clambake.py, absolute (clambake.script_cmd)
        assert "e.g. %s %s %s" % (sys.executable, SCRIPT, name) in res.out, name
    assert "exit codes" in res.out
    # every subcommand has its own help with an example
    for name in ("register", "cleanup", "heartbeat"):
        r = cbp(name, "--help")
        assert r.code == 0 and "example: %s %s %s" % (sys.executable, SCRIPT, name) in r.out


def test_version(cbp):
    import clambake
    res = cbp("--version")
    assert res.code == 0
    assert clambake.__version__ in res.out
    assert res.out.startswith("clambake ")


def test_no_command_prints_usage(cbp):
    res = cbp()
    assert res.code == 2
    assert "register" in res.out + res.err


def test_output_is_safe_on_a_cp1252_console(db, cbp, tmp_path):
    env = {"PYTHONIOENCODING": "cp1252"}
    res = cbp("register", "--project", "emoji", "--task", "ship it \U0001F680 now", cwd=str(tmp_path), env=env)
    assert res.code == 0, res
    assert "Traceback" not in res.err
    for args in (["status"], ["whoami"], ["heartbeat", "--task", "still \U0001F680 \u2713 going"],
                 ["status", "--json"]):
        res = cbp(*args, cwd=str(tmp_path), env=env)
        assert res.code == 0, (args, res)
        assert "Traceback" not in res.err
    res = cbp("status", cwd=str(tmp_path), env=env)
    assert "still ? ? going" in res.out                       # replaced, not crashed
    # errors that echo the user's input are safe too (stderr)
    res = cbp("heartbeat", "--status", "\U0001F680", cwd=str(tmp_path), env=env)
    assert res.code == 2 and "Traceback" not in res.err and res.err.startswith("clambake: error:")
    # the task itself is stored intact
    assert "\\ud83d\\ude80" in cbp("status", "--json", cwd=str(tmp_path)).out


def test_debug_env_shows_traceback_only_when_asked(empty_db, cbp):
    res = cbp("status")
    assert res.code == 4 and "Traceback" not in res.err
    res = cbp("status", env={"CLAMBAKE_DEBUG": "1"})
    assert res.code != 0 and "Traceback" in res.err
