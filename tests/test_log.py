"""Session log: `log` appends, `history` reads it back (issue 4)."""

import json
import re

import pytest


def register(cb, project, d):
    return cb.json("register", "--project", project, "--dir", str(d))["instance_id"]


def history(cb, *args, env=None):
    return cb.json("history", *args, env=env)["entries"]


@pytest.fixture
def two(db, cb, tmp_path):
    """Two registered instances: api and webapp."""
    (tmp_path / "a").mkdir()
    (tmp_path / "w").mkdir()
    return {"api": register(cb, "api", tmp_path / "a"), "webapp": register(cb, "webapp", tmp_path / "w")}


def log(cb, inst, action, summary, *extra):
    res = cb("log", "--action", action, "--summary", summary, *extra, env={"CLAMBAKE_INSTANCE": inst})
    assert res.code == 0, res
    m = re.fullmatch(r"logged #(\d+) (\S+)\n", res.out)
    assert m, res.out
    return int(m.group(1))


def test_log_appends_an_entry_with_files(two, cb, sql):
    before = sql("SELECT count(*) FROM clambake.session_log")[0][0]
    lid = log(cb, two["api"], "fix", "patched retry loop in uploader", "--files", "app/upload.py, tests/test_upload.py")
    assert sql("SELECT count(*) FROM clambake.session_log")[0][0] == before + 1
    e = history(cb, "--limit", "1")[0]
    assert e["id"] == lid
    assert (e["action"], e["summary"], e["files"], e["instance_id"], e["project"]) == (
        "fix", "patched retry loop in uploader", ["app/upload.py", "tests/test_upload.py"], two["api"], "api")
    assert e["age_s"] < 60
    text = cb("history", "--limit", "1").out.strip()
    assert text.startswith(f"#{lid} ")
    assert f"{two['api']} (api) fix: patched retry loop in uploader" in text
    assert text.endswith("[app/upload.py, tests/test_upload.py]")


def test_log_action_is_normalised_and_project_can_be_given(db, cb):
    res = cb("log", "--action", " Deploy ", "--summary", "shipped v2", "--project", "Doc DB")
    assert res.code == 0, res
    e = history(cb, "--limit", "1")[0]
    assert (e["action"], e["project"], e["instance_id"]) == ("deploy", "doc-db", None)


@pytest.mark.parametrize("action", ["fixed the bug", "", "   ", "fix;", "DROP TABLE x", "-fix", "a" * 40, "fix\nfix"])
def test_invalid_action_word_exits_2(db, cb, sql, action):
    res = cb("log", "--action", action, "--summary", "s", "--project", "api")
    assert res.code == 2, res
    assert "action" in res.err and "\n" == res.err[-1] and "Traceback" not in res.err
    assert sql("SELECT count(*) FROM clambake.session_log") == [(0,)]


def test_log_summary_rules(db, cb, sql):
    assert cb("log", "--action", "note", "--summary", "", "--project", "api").code == 2
    assert cb("log", "--action", "note", "--summary", "x" * 4001, "--project", "api").code == 2
    assert cb("log", "--action", "note", "--project", "api").code == 2          # --summary is required
    assert sql("SELECT count(*) FROM clambake.session_log") == [(0,)]
    res = cb("log", "--action", "note", "--summary", "-", "--project", "api", input="from stdin\nsecond line\n")
    assert res.code == 0, res
    assert history(cb)[0]["summary"] == "from stdin\nsecond line\n"


def test_history_is_newest_first_and_bounded(two, cb, sql):
    ids = [log(cb, two["api"], "edit", f"step {i}") for i in range(25)]
    entries = history(cb, "--action", "edit")
    assert [e["id"] for e in entries] == ids[::-1][:20]                     # default limit 20, newest first
    assert [e["id"] for e in history(cb, "--action", "edit", "--limit", "3")] == ids[:-4:-1]
    text = cb("history", "--limit", "5").out.splitlines()
    assert len(text) == 5 and text[0].startswith(f"#{ids[-1]} ")
    assert len(history(cb, "--limit", "500")) == 25 + 2                   # + the two registrations
    for bad in ("0", "-1", "501"):
        assert cb("history", "--limit", bad).code == 2


def test_history_filters_by_project_instance_action(two, cb):
    a1 = log(cb, two["api"], "fix", "api fix")
    w1 = log(cb, two["webapp"], "build", "webapp build")
    a2 = log(cb, two["api"], "test", "api tests green")
    w2 = log(cb, two["webapp"], "fix", "webapp fix")
    assert [e["id"] for e in history(cb, "--project", "api") if e["action"] != "register"] == [a2, a1]
    assert {e["project"] for e in history(cb, "--project", "API")} == {"api"}
    assert [e["id"] for e in history(cb, "--instance", two["webapp"])][:2] == [w2, w1]
    assert {e["instance_id"] for e in history(cb, "--instance", two["webapp"])} == {two["webapp"]}
    assert [e["id"] for e in history(cb, "--action", "fix")] == [w2, a1]
    assert [e["id"] for e in history(cb, "--action", "fix", "--project", "webapp")] == [w2]
    assert history(cb, "--project", "nope") == []
    assert cb("history", "--project", "nope").out.strip() == "no log entries"
    mine = history(cb, "--mine", env={"CLAMBAKE_INSTANCE": two["api"]})
    assert {e["instance_id"] for e in mine} == {two["api"]} and mine[0]["id"] == a2


def test_history_since(two, cb, sql):
    old = log(cb, two["api"], "fix", "three days ago")
    mid = log(cb, two["api"], "fix", "five hours ago")
    new = log(cb, two["api"], "fix", "just now")
    sql("UPDATE clambake.session_log SET created_at = now() - interval '3 days' WHERE id = %s", (old,))
    sql("UPDATE clambake.session_log SET created_at = now() - interval '5 hours' WHERE id = %s", (mid,))
    assert [e["id"] for e in history(cb, "--action", "fix", "--since", "1h")] == [new]
    assert [e["id"] for e in history(cb, "--action", "fix", "--since", "6h")] == [new, mid]
    assert [e["id"] for e in history(cb, "--action", "fix", "--since", "7d")] == [new, mid, old]
    assert [e["id"] for e in history(cb, "--action", "fix", "--since", "7200")] == [new]
    text = cb("history", "--action", "fix").out.splitlines()
    ages = [" ".join(l.split()[1:3]) for l in text]
    assert re.fullmatch(r"\d+s ago", ages[0]) and ages[1:] == ["5h ago", "3d ago"]
    assert cb("history", "--since", "yesterday").code == 2


def test_commands_log_automatically(db, cb, tmp_path):
    inst = register(cb, "api", tmp_path)
    env = {"CLAMBAKE_INSTANCE": inst}
    mid = json.loads(cb("remember", "--type", "fix", "--title", "Auto logged", "--content", "x", "--json",
                        env=env).out)["id"]
    assert cb("update-memory", mid, "--status", "resolved", env=env).code == 0
    assert cb("deregister", env=env).code == 0
    entries = history(cb, "--instance", inst)
    assert [e["action"] for e in entries] == ["deregister", "update", "remember", "register"]
    assert all(e["project"] == "api" for e in entries)
    assert f"#{mid}" in entries[2]["summary"] and "Auto logged" in entries[2]["summary"]
    # the log outlives the instance row
    assert cb("whoami", env=env).code == 1


def test_log_through_a_real_process(db, cbp):
    res = cbp("log", "--action", "note", "--summary", "-", "--files", "a,b", "--project", "api",
              input="piped summary")
    assert res.code == 0 and res.out.startswith("logged #"), res
    res = cbp("history", "--json")
    assert res.code == 0
    e = json.loads(res.out)["entries"][0]
    assert (e["summary"], e["files"]) == ("piped summary", ["a", "b"])
    res = cbp("log", "--action", "two words", "--summary", "x", "--project", "api")
    assert res.code == 2 and res.err.startswith("clambake: error:") and "Traceback" not in res.err
