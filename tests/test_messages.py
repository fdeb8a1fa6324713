"""Message bus (issue 3): per-recipient delivery, replies, receipts, the
10-minute rule for @all, expiry, recipient checks, `wait`, input validation
and the seed's CLAUDE.md message snippets.

Every test runs against a real, throwaway Postgres (see conftest.py).
Concurrency and `wait` use real `python clambake.py` processes.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

import pytest

from conftest import SCRIPT

PY = sys.executable


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def register(cb, project, tmp_path, name=None):
    """Register an instance in its own directory; return its id."""
    d = tmp_path / (name or project) / str(time.monotonic_ns())
    d.mkdir(parents=True)
    return cb.json("register", "--project", project, "--dir", str(d))["instance_id"]


def send(cb, who, *args, **kw):
    """send as `who`; return the new message id."""
    return cb.json("--as", who, "send", *args, **kw)["id"]


def inbox_ids(cb, who, *extra):
    data = cb.json("--as", who, "inbox", *extra)
    return [m["id"] for m in data["messages"]]


def proc_env(**extra):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def popen(*args, env=None):
    return subprocess.Popen([PY, SCRIPT] + [str(a) for a in args], env=env or proc_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)


def run(*args, env=None, timeout=60):
    return subprocess.run([PY, SCRIPT] + [str(a) for a in args], env=env or proc_env(),
                          capture_output=True, stdin=subprocess.DEVNULL, text=True, timeout=timeout)


def wait_until_listening(sql, timeout=15.0):
    """Block until a clambake backend sits idle after its LISTEN + first inbox query
    (i.e. a `wait` process is asleep in select())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND application_name = 'clambake' AND state = 'idle' "
                   "AND (query ILIKE '%%message_receipts%%' OR query ILIKE '%%clambake.claims%%')")
        if rows[0][0] >= 1:
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------------
# per-recipient delivery and read state
# --------------------------------------------------------------------------

def test_broadcast_read_state_is_per_recipient(db, cb, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    c = register(cb, "gamma", tmp_path, "c")
    mid = send(cb, s, "--to", "@all", "--type", "warning", "--subject", "Restarting Docker")

    # A reads it: still unread for B and C.
    res = cb("--as", a, "inbox")
    assert res.code == 0 and f"#{mid} WARNING" in res.out and "Restarting Docker" in res.out
    assert f"#{mid}" not in cb("--as", a, "inbox").out
    assert mid in inbox_ids(cb, b, "--peek")
    assert mid in inbox_ids(cb, c, "--peek")

    # B and C read it; then nobody sees it again.
    assert inbox_ids(cb, b) == [mid]
    assert inbox_ids(cb, c) == [mid]
    for who in (a, b, c):
        res = cb("--as", who, "inbox")
        assert res.code == 0 and f"#{mid}" not in res.out
        assert "no unread messages" in res.out
    # The sender never sees its own broadcast.
    assert mid not in inbox_ids(cb, s, "--all")
    assert "no unread messages" in cb("--as", s, "inbox").out


def test_sender_never_receives_own_project_or_direct_message(db, cb, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    mate = register(cb, "alpha", tmp_path, "mate")
    m1 = send(cb, s, "--to", "alpha", "--subject", "to my own project")
    # a message to yourself could never be delivered: refused, nothing stored
    res = cb("--as", s, "send", "--to", s, "--subject", "note to self")
    assert res.code == 1 and "is you" in res.err
    assert inbox_ids(cb, s, "--all") == []
    assert inbox_ids(cb, mate) == [m1]
    assert "note to self" not in cb("--as", mate, "inbox", "--all").out


def test_peek_leaves_unread_and_all_shows_read(db, cb, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    r = register(cb, "alpha", tmp_path, "r")
    m1 = send(cb, s, "--to", "@all", "--subject", "first")
    m2 = send(cb, s, "--to", "alpha", "--subject", "second")

    for _ in range(2):
        res = cb("--as", r, "inbox", "--peek")
        assert res.code == 0 and "first" in res.out and "second" in res.out
    data = cb.json("--as", r, "inbox", "--peek")
    assert {m["id"] for m in data["messages"]} == {m1, m2}
    assert all(m["was_read"] is False for m in data["messages"])

    assert set(inbox_ids(cb, r)) == {m1, m2}   # now marked read
    assert inbox_ids(cb, r) == []

    res = cb("--as", r, "inbox", "--all")
    assert res.code == 0 and "first" in res.out and "second" in res.out and "(read)" in res.out
    data = cb.json("--as", r, "inbox", "--all")
    assert {m["id"] for m in data["messages"]} == {m1, m2}
    assert all(m["was_read"] is True for m in data["messages"])
    # --all does not un-read or re-deliver anything
    assert inbox_ids(cb, r) == []


def test_inbox_orders_by_urgency(db, cb, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    r = register(cb, "alpha", tmp_path, "r")
    ids = {}
    for t in ("info", "done", "request", "warning", "blocker"):   # sent least urgent first
        ids[t] = send(cb, s, "--to", "alpha", "--type", t, "--subject", f"a {t} message")
    got = inbox_ids(cb, r, "--peek")
    assert got[:3] == [ids["blocker"], ids["warning"], ids["request"]]
    assert set(got[3:]) == {ids["info"], ids["done"]}

    out = cb("--as", r, "inbox").out
    pos = [out.index(f"#{ids[t]} ") for t in ("blocker", "warning", "request", "info")]
    assert pos == sorted(pos)
    assert "BLOCKER" in out and "WARNING" in out and "REQUEST" in out


def test_inbox_limit_reports_remaining(db, cb, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    r = register(cb, "alpha", tmp_path, "r")
    ids = [send(cb, s, "--to", "alpha", "--subject", f"msg {i}") for i in range(5)]
    res = cb("--as", r, "inbox", "--limit", "2")
    assert res.code == 0
    assert "3 more unread" in res.out
    assert inbox_ids(cb, r, "--limit", "2") == ids[2:4]
    data = cb.json("--as", r, "inbox", "--limit", "2")
    assert [m["id"] for m in data["messages"]] == ids[4:]
    assert data["remaining_unread"] == 0
    assert cb("--as", r, "inbox", "--limit", "0").code == 2


def test_long_body_is_cut_with_read_hint(db, cb, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    r = register(cb, "alpha", tmp_path, "r")
    body = "START " + "lorem ipsum dolor sit amet " * 40 + "THE-END-MARKER"
    mid = send(cb, s, "--to", "alpha", "--subject", "long one", "--body", body)
    short = send(cb, s, "--to", "alpha", "--subject", "short one", "--body", "tiny body")
    out = cb("--as", r, "inbox").out
    assert "START lorem" in out
    assert "THE-END-MARKER" not in out
    assert f"read {mid}" in out
    assert "tiny body" in out and f"read {short}" not in out
    assert len(out) < len(body)
    # read ID prints the whole body
    full = cb("--as", r, "read", str(mid))
    assert full.code == 0 and "THE-END-MARKER" in full.out and "START lorem" in full.out


def test_read_marks_read_for_me_only(db, cb, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "alpha", tmp_path, "b")
    mid = send(cb, s, "--to", "@all", "--type", "warning", "--subject", "Heads up", "--body", "full details")
    res = cb("--as", a, "read", str(mid))
    assert res.code == 0
    assert "Heads up" in res.out and "full details" in res.out and s in res.out
    assert mid not in inbox_ids(cb, a, "--peek")
    assert inbox_ids(cb, b, "--peek") == [mid]
    # reading again is fine and still prints it
    assert "full details" in cb("--as", a, "read", f"#{mid}").out
    # the sender reading its own message leaves no receipt
    cb("--as", s, "read", str(mid))
    data = cb.json("--as", s, "read", str(mid), "--receipts")
    assert [x["instance_id"] for x in data["read_by"]] == [a]


def test_read_unknown_or_bad_id(db, cb, tmp_path):
    r = register(cb, "alpha", tmp_path, "r")
    res = cb("--as", r, "read", "999999")
    assert res.code == 1 and "not found" in res.err
    res = cb("--as", r, "read", "abc")
    assert res.code == 2 and "Traceback" not in res.err


def test_read_shows_thread_context(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "alpha", tmp_path, "b")
    c = register(cb, "alpha", tmp_path, "c")
    q = send(cb, a, "--to", "@all", "--type", "request", "--subject", "Who owns port 5432?")
    r1 = send(cb, b, "--reply-to", str(q), "--subject", "Me, the test db")
    r2 = send(cb, c, "--reply-to", str(q), "--subject", "Not me")

    # the parent shows its replies
    res = cb("--as", a, "read", str(q))
    assert res.code == 0
    assert f"#{r1}" in res.out and "Me, the test db" in res.out and b in res.out
    assert f"#{r2}" in res.out and "Not me" in res.out
    data = cb.json("--as", a, "read", str(q))
    assert [x["id"] for x in data["replies"]] == [r1, r2]
    assert data["parent"] is None

    # a reply shows what it answers
    res = cb("--as", a, "read", str(r1))
    assert res.code == 0 and f"#{q}" in res.out and "Who owns port 5432?" in res.out
    data = cb.json("--as", a, "read", str(r1))
    assert data["reply_to"] == q and data["parent"]["id"] == q


def test_reply_goes_to_original_sender_by_default(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    c = register(cb, "beta", tmp_path, "c")
    q = send(cb, a, "--to", "@all", "--type", "request", "--subject", "Anyone using docker?")
    res = cb.json("--as", b, "send", "--reply-to", str(q), "--subject", "yes, until 3pm")
    assert res["to"] == a and res["target_kind"] == "instance"
    rid = res["id"]
    inbox = cb.json("--as", a, "inbox")["messages"]
    assert [m["id"] for m in inbox] == [rid] and inbox[0]["reply_to"] == q
    assert rid not in inbox_ids(cb, c, "--all")   # not broadcast
    assert "(re #%d)" % q in cb("--as", a, "inbox", "--all").out

    # --to overrides the default recipient
    rid2 = cb.json("--as", b, "send", "--reply-to", str(q), "--to", "beta", "--subject", "fyi team")["id"]
    assert rid2 in inbox_ids(cb, c)
    assert rid2 not in inbox_ids(cb, a, "--all")

    # replying to a message that does not exist is refused
    res = cb("--as", b, "send", "--reply-to", "999999", "--subject", "hm")
    assert res.code == 1 and "999999" in res.err


def test_reply_to_a_sender_who_left_reaches_its_project(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    q = send(cb, a, "--to", "@all", "--type", "request", "--subject", "Can someone review PR 12?")
    assert cb("--as", a, "deregister").code == 0
    res = cb("--as", b, "send", "--reply-to", str(q), "--subject", "reviewed, two comments", "--json")
    assert res.code == 0
    data = json.loads(res.out)
    assert data["to"] == "alpha" and data["target_kind"] == "project"
    assert "no longer registered" in res.err
    nxt = register(cb, "alpha", tmp_path, "next")     # the next alpha session gets the answer
    assert data["id"] in inbox_ids(cb, nxt)


def test_receipts_show_who_read_and_who_did_not(db, cb, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    c = register(cb, "gamma", tmp_path, "c")
    mid = send(cb, s, "--to", "@all", "--type", "warning", "--subject", "Restarting Docker")
    pid = send(cb, s, "--to", "alpha", "--subject", "project only")

    data = cb.json("--as", s, "read", str(mid), "--receipts")
    assert data["read_by"] == [] and sorted(data["unread_by"]) == sorted([a, b, c])

    cb("--as", a, "inbox")
    cb("--as", c, "read", str(mid))
    res = cb("--as", s, "read", str(mid), "--receipts")
    assert res.code == 0
    read_line = next(l for l in res.out.splitlines() if l.startswith("read by:"))
    unread_line = next(l for l in res.out.splitlines() if l.startswith("not read by:"))
    assert a in read_line and c in read_line and b not in read_line
    assert b in unread_line and a not in unread_line and c not in unread_line and s not in unread_line
    data = cb.json("--as", s, "read", str(mid), "--receipts")
    assert sorted(x["instance_id"] for x in data["read_by"]) == sorted([a, c])
    assert data["unread_by"] == [b]

    # a project message: only that project's members are expected readers
    data = cb.json("--as", s, "read", str(pid), "--receipts")
    assert [x["instance_id"] for x in data["read_by"]] == [a]   # a's inbox showed it
    assert data["unread_by"] == []


# --------------------------------------------------------------------------
# delivery window and expiry
# --------------------------------------------------------------------------

def test_old_broadcasts_skip_new_sessions_but_project_and_direct_mail_waits(db, cb, sql, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    old_all = send(cb, s, "--to", "@all", "--subject", "yesterday's chatter")
    recent_all = send(cb, s, "--to", "@all", "--subject", "just said")
    old_blocker = send(cb, s, "--to", "@all", "--type", "blocker", "--subject", "Editing docker-compose")
    proj = send(cb, s, "--to", "alpha", "--type", "request", "--subject", "please review PR 7")
    sql("UPDATE clambake.messages SET created_at = now() - interval '11 minutes' WHERE id IN (%s, %s)",
        (old_all, old_blocker))
    sql("UPDATE clambake.messages SET created_at = now() - interval '9 minutes' WHERE id = %s", (recent_all,))
    sql("UPDATE clambake.messages SET created_at = now() - interval '5 hours' WHERE id = %s", (proj,))

    newbie = register(cb, "alpha", tmp_path, "newbie")
    other = register(cb, "beta", tmp_path, "other")
    direct = send(cb, s, "--to", newbie, "--subject", "left for you")
    sql("UPDATE clambake.messages SET created_at = now() - interval '3 hours' WHERE id = %s", (direct,))

    got = inbox_ids(cb, newbie)
    assert sorted(got) == sorted([recent_all, proj, direct])
    assert inbox_ids(cb, other) == [recent_all]
    # the old unresolved blocker is not pushed to the inbox, but status still shows it
    st = cb("--as", newbie, "status")
    assert st.code == 0 and f"#{old_blocker}" in st.out and "Editing docker-compose" in st.out
    assert old_blocker in [b["id"] for b in cb.json("--as", newbie, "status")["blockers"]]
    # receipts do not count the newcomer as a missing reader of the old broadcast
    assert newbie not in cb.json("--as", s, "read", str(old_all), "--receipts")["unread_by"]


def test_expired_messages_are_not_delivered(db, cb, sql, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    r = register(cb, "alpha", tmp_path, "r")
    gone = send(cb, s, "--to", "alpha", "--subject", "stale news")
    gone_all = send(cb, s, "--to", "@all", "--subject", "stale broadcast")
    short = send(cb, s, "--to", "alpha", "--subject", "short lived", "--ttl", "2m")
    keep = send(cb, s, "--to", "alpha", "--subject", "still valid", "--ttl", "1h")
    sql("UPDATE clambake.messages SET expires_at = now() - interval '1 second' WHERE id IN (%s, %s)",
        (gone, gone_all))
    assert sorted(inbox_ids(cb, r, "--peek")) == sorted([short, keep])
    # the short TTL runs out (set in the database rather than slept through)
    sql("UPDATE clambake.messages SET expires_at = now() - interval '1 second' WHERE id = %s", (short,))
    assert inbox_ids(cb, r) == [keep]
    assert inbox_ids(cb, r, "--all") == [keep]
    exp = sql("SELECT expires_at - created_at FROM clambake.messages WHERE id = %s", (keep,))[0][0]
    assert 3590 <= exp.total_seconds() <= 3610
    default = send(cb, s, "--to", "alpha", "--subject", "default ttl")
    exp = sql("SELECT expires_at - created_at FROM clambake.messages WHERE id = %s", (default,))[0][0]
    assert 24 * 3600 - 10 <= exp.total_seconds() <= 24 * 3600 + 10


# --------------------------------------------------------------------------
# recipients
# --------------------------------------------------------------------------

def test_unknown_recipient_refused_with_close_matches(db, cbp, cb, sql, tmp_path):
    s = register(cb, "docdb-v2", tmp_path, "s")
    register(cb, "frontend", tmp_path, "f")
    res = cbp("--as", s, "send", "--to", "docdb-v3", "--subject", "typo")
    assert res.code == 1
    assert "unknown recipient" in res.err and "docdb-v2" in res.err and "--force" in res.err
    assert "Traceback" not in res.err
    assert sql("SELECT count(*) FROM clambake.messages")[0][0] == 0

    res = cbp("--as", s, "send", "--to", "frontnd", "--subject", "typo 2")
    assert res.code == 1 and "frontend" in res.err

    # --force sends anyway; a session that later joins that project gets it
    res = cb.json("--as", s, "send", "--to", "docdb-v3", "--subject", "for the next one", "--force")
    assert res["to"] == "docdb-v3" and res["target_kind"] == "project"
    later = register(cb, "docdb-v3", tmp_path, "later")
    assert inbox_ids(cb, later) == [res["id"]]


def test_recipient_forms(db, cb, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    r = register(cb, "Beta Team", tmp_path, "r")   # normalised to beta-team
    m1 = cb.json("--as", s, "send", "--to", "Beta Team", "--subject", "by project name")
    assert m1["to"] == "beta-team" and m1["target_kind"] == "project"
    m2 = cb.json("--as", s, "send", "--to", r[:-1], "--subject", "by id prefix")
    assert m2["to"] == r and m2["target_kind"] == "instance"
    m3 = cb.json("--as", s, "send", "--subject", "no --to means @all")
    assert m3["to"] == "@all"
    assert sorted(inbox_ids(cb, r)) == sorted([m1["id"], m2["id"], m3["id"]])


# --------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------

def test_send_input_validation(db, cbp, cb, sql, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    res = cbp("--as", s, "send", "--type", "urgent", "--subject", "x")
    assert res.code == 2 and "urgent" in res.err and "blocker" in res.err and "Traceback" not in res.err
    res = cbp("--as", s, "send", "--subject", "x" * 201)
    assert res.code == 2 and "subject" in res.err and "Traceback" not in res.err
    res = cbp("--as", s, "send", "--subject", "   ")
    assert res.code == 2
    res = cbp("--as", s, "send")
    assert res.code == 2 and "subject" in res.err
    res = cbp("--as", s, "send", "--subject", "x", "--ttl", "soon")
    assert res.code == 2 and "ttl" in res.err
    res = cbp("--as", s, "send", "--subject", "x", "--body", "-", input="a\x00b")
    assert res.code == 2 and "NUL" in res.err
    assert sql("SELECT count(*) FROM clambake.messages")[0][0] == 0


def test_body_from_stdin(db, cbp, cb, sql, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    r = register(cb, "alpha", tmp_path, "r")
    text = "line one with 'quotes' and \"double\" and $(not a subshell)\nline two\n"
    res = cbp("--as", s, "send", "--to", "alpha", "--subject", "from stdin", "--body", "-", input=text)
    assert res.code == 0 and res.out.startswith("sent #")
    mid = int(res.out.split("#")[1].split()[0])
    assert sql("SELECT body FROM clambake.messages WHERE id = %s", (mid,))[0][0] == text
    out = cb("--as", r, "read", str(mid)).out
    assert "$(not a subshell)" in out and "line two" in out


def test_send_output_is_one_line_with_id(db, cbp, cb, sql, tmp_path):
    s = register(cb, "alpha", tmp_path, "s")
    res = cbp("--as", s, "send", "--to", "@all", "--type", "info", "--subject", "hello")
    assert res.code == 0 and res.err == ""
    lines = res.out.strip().splitlines()
    assert len(lines) == 1
    mid = sql("SELECT max(id) FROM clambake.messages")[0][0]
    assert f"#{mid}" in lines[0]


# --------------------------------------------------------------------------
# session log
# --------------------------------------------------------------------------

def test_every_send_claim_release_takeover_is_logged(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    m_warn = send(cb, a, "--to", "@all", "--type", "warning", "--subject", "Restarting Docker")
    m_claim = send(cb, a, "--type", "blocker", "--resource", "docker", "--subject", "rebuilding images")
    m_take = send(cb, b, "--type", "blocker", "--resource", "docker", "--subject", "hotfix", "--force")
    m_done = send(cb, b, "--type", "done", "--resource", "docker", "--subject", "hotfix deployed")
    m_req = send(cb, b, "--to", a, "--type", "request", "--subject", "sorry, it's yours again")

    entries = cb.json("history", "--limit", "100")["entries"]
    by_action = {}
    for e in entries:
        by_action.setdefault(e["action"], []).append(e)

    def logged(action, who, *needles):
        for e in by_action.get(action, []):
            if e["instance_id"] == who and all(n in e["summary"] for n in needles):
                return True
        return False

    assert logged("send", a, f"#{m_warn}", "Restarting Docker")
    assert logged("claim", a, "docker", f"#{m_claim}")
    assert logged("takeover", b, "docker", a, f"#{m_take}")
    assert logged("done", b, "released docker", f"#{m_done}")
    assert logged("send", b, f"#{m_req}")
    text = cb("history", "--limit", "100").out
    assert "takeover" in text and "took docker from " + a in text


# --------------------------------------------------------------------------
# seed CLAUDE.md snippets, unchanged
# --------------------------------------------------------------------------

def test_seed_claude_md_message_snippets_run_unchanged(db, cbp, tmp_path):
    """The seed flow, typed exactly as in CLAUDE-seed.md, from two working dirs
    (identity found by directory, no --as)."""
    dir_a = tmp_path / "docdb"
    dir_b = tmp_path / "frontend"
    dir_a.mkdir()
    dir_b.mkdir()
    assert cbp("register", "--project", "docdb", "--dir", str(dir_a), cwd=str(dir_a)).code == 0
    assert cbp("register", "--project", "frontend", "--dir", str(dir_b), cwd=str(dir_b)).code == 0

    A = dict(cwd=str(dir_a))
    B = dict(cwd=str(dir_b))
    res = cbp("send", "--to", "@all", "--type", "warning", "--subject", "Restarting Docker",
              "--body", "Details here", **A)
    assert res.code == 0, res.err
    warn_id = int(res.out.split("#")[1].split()[0])
    res = cbp("send", "--to", "@all", "--type", "blocker", "--subject", "Editing docker-compose",
              "--body", "Details here", **A)
    assert res.code == 0, res.err
    blk_id = int(res.out.split("#")[1].split()[0])

    st = cbp("status", **B)
    assert "open blockers: 1" in st.out and f"#{blk_id}" in st.out

    res = cbp("inbox", **B)
    assert res.code == 0
    assert res.out.index(f"#{blk_id} BLOCKER") < res.out.index(f"#{warn_id} WARNING")
    assert "Restarting Docker" in res.out and "Details here" in res.out
    res = cbp("read", str(warn_id), **B)
    assert res.code == 0 and "Restarting Docker" in res.out and "Details here" in res.out

    res = cbp("send", "--to", "@all", "--type", "done", "--subject", "Docker rebuild complete", **A)
    assert res.code == 0, res.err
    st = cbp("status", **B)
    assert "open blockers" not in st.out, st.out
    res = cbp("inbox", **B)
    assert res.code == 0 and "Docker rebuild complete" in res.out
    assert "Restarting Docker" not in res.out   # already read
    assert cbp("inbox", **A).out.strip() == "no unread messages"   # the sender's own


# --------------------------------------------------------------------------
# wait
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_wait_wakes_promptly_on_matching_message(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    latencies = []
    for rnd in range(3):
        w = popen("--as", b, "wait", "--timeout", "30")
        try:
            assert wait_until_listening(sql), "wait never went to sleep"
            # a message for someone else must not wake it (or be consumed)
            send(cb, a, "--to", "alpha", "--subject", "not for beta %d" % rnd)
            time.sleep(0.3)
            assert w.poll() is None, "wait returned on a message for another project"
            assert wait_until_listening(sql)
            t0 = time.monotonic()
            mid = send(cb, a, "--to", b, "--type", "request", "--subject", "ping %d" % rnd)
            out, err = w.communicate(timeout=30)
            latency = time.monotonic() - t0
        finally:
            if w.poll() is None:
                w.kill()
                w.communicate()
        assert w.returncode == 0, err
        assert f"#{mid} REQUEST" in out and "ping %d" % rnd in out
        assert "not for beta" not in out
        assert latency < 5.0, latency
        latencies.append(latency)
        # wait showed it, so it counts as read
        assert mid not in inbox_ids(cb, b, "--peek")
    print("\nwait wake-up latency after send commit: %s s (median %.3f s)"
          % (", ".join("%.3f" % x for x in latencies), statistics.median(latencies)))


@pytest.mark.slow
def test_wait_does_not_miss_a_message_that_lands_during_its_own_query(db, cb, sql, tmp_path):
    """A burst of messages for someone else keeps `wait` re-querying; the
    matching message right after the burst often notifies while that query
    runs.  It must still wake at once, not at the next fallback poll (set to
    30 s here so a lost notification shows)."""
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    insert = ("INSERT INTO clambake.messages (from_instance, from_project, to_target, target_kind, "
              "message_type, subject, expires_at) VALUES (%s, 'alpha', %s, %s, 'info', %s, now() + interval '1h')")
    latencies = []
    for rnd in range(5):
        w = popen("--as", b, "wait", "--timeout", "40", "--poll", "30")
        try:
            assert wait_until_listening(sql)
            for i in range(200):
                sql(insert, (a, "alpha", "project", "noise %d" % i))
            sql(insert, (a, b, "instance", "the one %d" % rnd))
            t0 = time.monotonic()
            out, err = w.communicate(timeout=40)
            latencies.append(time.monotonic() - t0)
        finally:
            if w.poll() is None:
                w.kill()
                w.communicate()
        assert w.returncode == 0, err
        assert "the one %d" % rnd in out and "noise" not in out
    assert max(latencies) < 10, latencies
    print("\nwait wake-up after a burst of 200 unrelated messages: %s s"
          % ", ".join("%.3f" % x for x in latencies))


@pytest.mark.slow
def test_wait_wakes_on_send_from_another_process(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    w = popen("--as", b, "wait", "--timeout", "30", "--json")
    try:
        assert wait_until_listening(sql)
        s = run("--as", a, "send", "--to", "@all", "--type", "warning", "--subject", "Restarting Docker")
        t_sent = time.monotonic()
        assert s.returncode == 0, s.stderr
        out, err = w.communicate(timeout=30)
        latency = time.monotonic() - t_sent
    finally:
        if w.poll() is None:
            w.kill()
            w.communicate()
    assert w.returncode == 0, err
    data = json.loads(out)
    assert [m["subject"] for m in data["messages"]] == ["Restarting Docker"]
    assert latency < 5.0
    print("\nwait wake-up after a `send` process exited: %.3f s" % latency)


def test_wait_returns_at_once_when_unread_mail_exists(db, cbp, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    mid = send(cb, a, "--to", b, "--subject", "already here")
    t0 = time.monotonic()
    res = cbp("--as", b, "wait", "--timeout", "20")
    assert res.code == 0 and f"#{mid}" in res.out and "already here" in res.out
    assert time.monotonic() - t0 < 10


def test_wait_times_out_with_exit_1(db, cbp, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    send(cb, b, "--to", "@all", "--subject", "my own message does not count")
    t0 = time.monotonic()
    res = cbp("--as", b, "wait", "--timeout", "1")
    elapsed = time.monotonic() - t0
    assert res.code == 1
    assert "timeout" in res.out and "Traceback" not in res.err
    assert 0.9 <= elapsed < 10, elapsed
    res = cbp("--as", a, "wait", "--timeout", "1s", "--json")
    assert res.code == 0   # a does have b's broadcast waiting
    res = cbp("--as", a, "wait", "--timeout", "1s", "--json")
    assert res.code == 1 and json.loads(res.out)["timeout"] is True
    assert cbp("--as", a, "wait", "--timeout", "never").code == 2


@pytest.mark.slow
def test_wait_resource_returns_when_holder_says_done(db, cb, cbp, sql, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    res = cbp("--as", b, "wait", "--resource", "docker", "--timeout", "5")
    assert res.code == 0 and "docker: free" in res.out     # free now: returns at once
    assert cb("--as", a, "send", "--type", "blocker", "--resource", "docker", "--subject", "rebuild").code == 0
    res = cbp("--as", b, "wait", "--resource", "docker", "--timeout", "1")
    assert res.code == 1 and "docker still held" in res.out

    w = popen("--as", b, "wait", "--resource", "docker", "--timeout", "30")
    try:
        assert wait_until_listening(sql)
        time.sleep(0.2)
        assert w.poll() is None
        t0 = time.monotonic()
        assert cb("--as", a, "send", "--type", "done", "--resource", "docker", "--subject", "rebuilt").code == 0
        out, err = w.communicate(timeout=30)
        latency = time.monotonic() - t0
    finally:
        if w.poll() is None:
            w.kill()
            w.communicate()
    assert w.returncode == 0, err
    assert "docker: free" in out
    assert latency < 5.0
    print("\nwait --resource wake-up after done: %.3f s" % latency)


@pytest.mark.slow
def test_wait_resource_returns_when_claim_ttl_runs_out(db, cb, cbp, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    assert cb("--as", a, "send", "--type", "blocker", "--resource", "docker", "--subject", "quick",
              "--ttl", "1s").code == 0
    t0 = time.monotonic()
    res = cbp("--as", b, "wait", "--resource", "docker", "--timeout", "20")
    assert res.code == 0 and "docker: free" in res.out
    assert time.monotonic() - t0 < 10


@pytest.mark.slow
def test_wait_resource_wakes_when_holder_deregisters(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    assert cb("--as", a, "send", "--type", "blocker", "--resource", "docker", "--subject", "rebuild").code == 0
    w = popen("--as", b, "wait", "--resource", "docker", "--timeout", "40", "--poll", "30")
    try:
        assert wait_until_listening(sql)
        t0 = time.monotonic()
        assert cb("--as", a, "deregister").code == 0
        out, err = w.communicate(timeout=40)
        latency = time.monotonic() - t0
    finally:
        if w.poll() is None:
            w.kill()
            w.communicate()
    assert w.returncode == 0 and "docker: free" in out, err
    assert latency < 10, latency     # woken by the release, not by the 30 s poll


@pytest.mark.slow
def test_wait_still_wakes_without_notifications(db, cb, sql, tmp_path):
    """Behind a transaction-pooling proxy LISTEN/NOTIFY does not arrive; the
    slow poll must still deliver (here: the notify trigger is switched off)."""
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    sql("ALTER TABLE clambake.messages DISABLE TRIGGER messages_notify")
    w = popen("--as", b, "wait", "--timeout", "30")
    try:
        assert wait_until_listening(sql)
        t0 = time.monotonic()
        mid = send(cb, a, "--to", b, "--subject", "no notify for this one")
        out, err = w.communicate(timeout=30)
        latency = time.monotonic() - t0
    finally:
        if w.poll() is None:
            w.kill()
            w.communicate()
    assert w.returncode == 0, err
    assert f"#{mid}" in out and "no notify for this one" in out
    assert latency < 15, latency
    print("\nwait wake-up by the fallback poll alone: %.3f s" % latency)


@pytest.mark.slow
def test_wait_ctrl_c_ends_cleanly(db, cb, sql, tmp_path):
    b = register(cb, "beta", tmp_path, "b")
    w = popen("--as", b, "wait", "--timeout", "60")
    try:
        assert wait_until_listening(sql)
        w.send_signal(signal.SIGINT)
        out, err = w.communicate(timeout=20)
    finally:
        if w.poll() is None:
            w.kill()
            w.communicate()
    assert w.returncode == 1
    assert "Traceback" not in err and "interrupted" in err


# --------------------------------------------------------------------------
# many real processes at once
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_concurrent_senders_and_readers_deliver_exactly_once(db, cb, sql, tmp_path):
    """20 sender processes broadcast and message a project while reader
    processes poll `inbox --json` for 5 recipients (two pollers each, so one
    instance's concurrent reads race too).  Afterwards every recipient has
    seen every message addressed to it exactly once, and no sender its own."""
    recipients = {register(cb, "alpha", tmp_path, "r%d" % i): "alpha" for i in range(3)}
    recipients.update({register(cb, "beta", tmp_path, "r%d" % i): "beta" for i in range(3, 5)})
    senders = [register(cb, "sender%d" % (i % 4), tmp_path, "s%d" % i) for i in range(20)]
    per_sender = 3
    env = proc_env()

    sent = {}            # message id -> (sender, target)
    send_failures = []
    seen = {r: [] for r in recipients}   # recipient -> list of ids, in every inbox output
    lock = threading.Lock()
    stop = threading.Event()

    def sender(iid, n):
        for k in range(per_sender):
            target = "@all" if (n + k) % 2 == 0 else "alpha"
            p = subprocess.run([PY, SCRIPT, "--as", iid, "send", "--to", target, "--type", "info",
                                "--subject", "msg %d from %s" % (k, iid), "--json"],
                               env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
            with lock:
                if p.returncode != 0:
                    send_failures.append((iid, p.returncode, p.stderr))
                else:
                    sent[json.loads(p.stdout)["id"]] = (iid, target)

    reader_failures = []
    reader_runs = [0]

    def reader(iid):
        while True:
            last = stop.is_set()
            p = subprocess.run([PY, SCRIPT, "--as", iid, "inbox", "--json", "--limit", "7"],
                               env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
            with lock:
                reader_runs[0] += 1
                if p.returncode != 0:
                    reader_failures.append((iid, p.returncode, p.stderr))
                else:
                    seen[iid].extend(m["id"] for m in json.loads(p.stdout)["messages"])
            if last:
                return

    t0 = time.monotonic()
    readers = [threading.Thread(target=reader, args=(r,)) for r in recipients for _ in range(2)]
    senders_t = [threading.Thread(target=sender, args=(iid, n)) for n, iid in enumerate(senders)]
    for t in readers + senders_t:
        t.start()
    for t in senders_t:
        t.join(timeout=120)
    stop.set()
    for t in readers:
        t.join(timeout=120)
    busy = time.monotonic() - t0

    assert not send_failures, send_failures
    assert not reader_failures, reader_failures
    assert len(sent) == 20 * per_sender
    assert sql("SELECT count(*) FROM clambake.messages")[0][0] == 20 * per_sender

    # final drain
    for r in recipients:
        while True:
            ids = inbox_ids(cb, r, "--limit", "500")
            seen[r].extend(ids)
            if not ids:
                break

    for r, project in recipients.items():
        expected = {mid for mid, (_, target) in sent.items() if target in ("@all", project)}
        dupes = sorted({m for m in seen[r] if seen[r].count(m) > 1})
        assert not dupes, "%s got duplicates %r" % (r, dupes)
        assert set(seen[r]) == expected, "%s missing %r, extra %r" % (
            r, sorted(expected - set(seen[r])), sorted(set(seen[r]) - expected))
    # senders: every broadcast from the others, never their own (checked for a few)
    for s in senders[:4]:
        got = []
        while True:
            ids = inbox_ids(cb, s, "--limit", "500")
            got.extend(ids)
            if not ids:
                break
        own = [m for m, (who, _) in sent.items() if who == s]
        assert not set(own) & set(got)
        expected = {m for m, (who, target) in sent.items() if target == "@all" and who != s}
        assert sorted(got) == sorted(expected)
    print("\n20 senders x %d messages with %d concurrent inbox runs: %.1f s"
          % (per_sender, reader_runs[0], busy))


# --------------------------------------------------------------------------
# wall time of send and inbox as real processes (reported, not asserted tightly)
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_wall_time_of_send_and_inbox(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "alpha", tmp_path, "b")
    env = proc_env()

    def timed(*args):
        t0 = time.perf_counter()
        p = subprocess.run([PY, SCRIPT] + list(args), env=env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        dt = time.perf_counter() - t0
        assert p.returncode == 0, p.stderr
        return dt, p.stdout

    sends, inboxes, inbox_empty = [], [], []
    for i in range(10):
        dt, out = timed("--as", a, "send", "--to", "alpha", "--type", "warning", "--subject", "timing %d" % i)
        assert out.startswith("sent #")
        sends.append(dt)
        dt, out = timed("--as", b, "inbox")
        assert "timing %d" % i in out
        inboxes.append(dt)
        dt, out = timed("--as", b, "inbox")
        assert "no unread messages" in out
        inbox_empty.append(dt)
    dt_help = [timed("--help")[0] for _ in range(5)]
    med = statistics.median
    print("\nwall time (median of 10 real processes): send %.3f s, inbox (1 message) %.3f s, "
          "inbox (empty) %.3f s; bare `--help` %.3f s"
          % (med(sends), med(inboxes), med(inbox_empty), med(dt_help)))
    assert med(sends) < 5 and med(inboxes) < 5
