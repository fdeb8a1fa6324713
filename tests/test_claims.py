"""Blockers as claims (issue 3): `send --type blocker --resource R` takes an
exclusive claim; `done` releases it; TTL, stale holders, deregister and
`--force` end it; `check` and `status` show it; racing processes get exactly
one winner.  Real Postgres; the races use real `python clambake.py` processes.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import SCRIPT

PY = sys.executable


def register(cb, project, tmp_path, name=None):
    d = tmp_path / (name or project) / str(time.monotonic_ns())
    d.mkdir(parents=True)
    return cb.json("register", "--project", project, "--dir", str(d))["instance_id"]


def claim(cb, who, resource, subject="working on it", *extra):
    return cb("--as", who, "send", "--type", "blocker", "--resource", resource, "--subject", subject, *extra)


def holder(cb, resource):
    res = cb("check", resource, "--json")
    assert res.code in (0, 1), res
    return json.loads(res.out)["holder"]


# --------------------------------------------------------------------------
# the race
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_ten_processes_race_for_docker_exactly_one_wins_every_round(db, cb, sql, tmp_path):
    """10 real processes, as 10 instances, claim docker at once; repeated.  Between
    rounds the claim ends in turn by `done`, by TTL expiry and by the holder going
    stale, so both the plain insert and the take-over-an-old-row paths are raced."""
    ids = [register(cb, "proj%d" % (i % 3), tmp_path, "i%d" % i) for i in range(11)]
    env = dict(os.environ)
    winners = []
    sitting_out = ids[-1]
    for rnd in range(9):
        racers = [i for i in ids if i != sitting_out]
        assert len(racers) == 10
        procs = [subprocess.Popen([PY, SCRIPT, "--as", iid, "send", "--type", "blocker", "--resource", "docker",
                                   "--subject", "round %d by %s" % (rnd, iid)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, text=True)
                 for iid in racers]
        results = []
        for iid, p in zip(racers, procs):
            out, err = p.communicate(timeout=60)
            results.append((iid, p.returncode, out, err))
        ok = [r for r in results if r[1] == 0]
        assert len(ok) == 1, "round %d: %d winners: %r" % (rnd, len(ok), results)
        win = ok[0][0]
        winners.append(win)
        assert "claimed docker" in ok[0][2]
        for iid, code, out, err in results:
            if iid == win:
                continue
            assert code == 1, (iid, code, out, err)
            assert "docker is claimed by " + win in err, err
            assert "round %d by %s" % (rnd, win) in err      # the holder's reason
            assert "Traceback" not in err
        # The database agrees: one claim row, the winner's, and one blocker message.
        assert sql("SELECT instance_id FROM clambake.claims WHERE resource = 'docker'") == [(win,)]
        assert sql("SELECT count(*) FROM clambake.messages WHERE message_type = 'blocker' "
                   "AND subject LIKE %s", ("round %d %%" % rnd,))[0][0] == 1
        assert holder(cb, "docker") == win
        # end the claim for the next round
        how = ("done", "expired", "stale")[rnd % 3]
        cb("--as", sitting_out, "heartbeat")
        sitting_out = ids[-1]
        if how == "done":
            res = cb("--as", win, "send", "--type", "done", "--resource", "docker",
                     "--subject", "round %d done" % rnd)
            assert res.code == 0 and "released docker" in res.out
        elif how == "expired":
            sql("UPDATE clambake.claims SET expires_at = now() - interval '1 second' WHERE resource = 'docker'")
        else:
            sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '31 minutes' "
                "WHERE instance_id = %s", (win,))
            sitting_out = win
        assert cb("check", "docker").code == 0
    print("\nrace winners per round:", winners)


# --------------------------------------------------------------------------
# claim lifecycle
# --------------------------------------------------------------------------

def test_second_claim_refused_naming_holder_reason_age_expiry(db, cbp, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    res = claim(cb, a, "docker", "Rebuilding images")
    assert res.code == 0 and "claimed docker" in res.out
    res = cbp("--as", b, "send", "--type", "blocker", "--resource", "docker", "--subject", "me too")
    assert res.code == 1
    first = res.err.splitlines()[0]
    assert first.startswith("clambake: error: docker is claimed by " + a)
    assert "Rebuilding images" in first and "ago" in first and "expires in" in first
    assert "hint:" in res.err and "wait --resource docker" in res.err
    # resource names are normalised: case and spacing do not dodge the claim
    assert claim(cb, b, " Docker ").code == 1
    # the holder can renew its own claim
    assert claim(cb, a, "docker", "still rebuilding").code == 0
    assert holder(cb, "docker") == a
    # a different resource is independent
    assert claim(cb, b, "port-5432").code == 0


def test_check_exit_codes(db, cbp, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    res = cbp("--as", b, "check", "docker")
    assert res.code == 0 and "free" in res.out
    assert claim(cb, a, "docker", "compose down").code == 0
    res = cbp("--as", b, "check", "docker")
    assert res.code == 1 and a in res.out and "compose down" in res.out
    res = cbp("check", "docker")          # not registered: still answers
    assert res.code == 1 and a in res.out
    res = cbp("--as", a, "check", "docker")   # the holder itself may proceed
    assert res.code == 0 and "held by you" in res.out
    res = cb("--as", b, "check", "docker", "--json")
    assert res.code == 1
    data = json.loads(res.out)
    assert data["free"] is False and data["holder"] == a and data["reason"] == "compose down"


def test_done_releases_named_claim(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    assert claim(cb, a, "docker").code == 0
    assert claim(cb, a, "port-8080").code == 0
    res = cb("--as", a, "send", "--type", "done", "--resource", "docker", "--subject", "docker back")
    assert res.code == 0 and "released docker" in res.out
    assert cb("--as", b, "check", "docker").code == 0
    assert cb("--as", b, "check", "port-8080").code == 1      # only the named one
    assert claim(cb, b, "docker").code == 0
    # someone else's done does not release my claim
    res = cb("--as", a, "send", "--type", "done", "--resource", "docker", "--subject", "not mine")
    assert res.code == 0 and "held no claim on docker" in res.out
    assert holder(cb, "docker") == b


def test_done_without_resource_releases_all_my_claims(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    for r in ("docker", "docker-compose.yml", "port-5432"):
        assert claim(cb, a, r).code == 0
    assert claim(cb, b, "gpu").code == 0
    res = cb("--as", a, "send", "--to", "@all", "--type", "done", "--subject", "all done")
    assert res.code == 0
    assert "docker" in res.out and "docker-compose.yml" in res.out and "port-5432" in res.out
    for r in ("docker", "docker-compose.yml", "port-5432"):
        assert cb("--as", b, "check", r).code == 0
    assert holder(cb, "gpu") == b


def test_unkeyed_blocker_listed_until_done(db, cb, tmp_path):
    """The seed flow: blocker without a resource, later done without one."""
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    bid = cb.json("--as", a, "send", "--to", "@all", "--type", "blocker",
                  "--subject", "Editing docker-compose")["id"]
    # still listed after everyone read it
    cb("--as", b, "inbox")
    st = cb.json("--as", b, "status")
    assert [x["id"] for x in st["blockers"]] == [bid]
    assert "Editing docker-compose" in cb("--as", b, "status").out
    # another instance's done does not resolve it
    cb("--as", b, "send", "--to", "@all", "--type", "done", "--subject", "unrelated")
    assert [x["id"] for x in cb.json("status")["blockers"]] == [bid]
    cb("--as", a, "send", "--to", "@all", "--type", "done", "--subject", "Docker rebuild complete")
    assert cb.json("status")["blockers"] == []


def test_unkeyed_blocker_ends_when_sender_deregisters_or_goes_stale(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    ba = cb.json("--as", a, "send", "--type", "blocker", "--subject", "A blocks")["id"]
    bb = cb.json("--as", b, "send", "--type", "blocker", "--subject", "B blocks")["id"]
    assert sorted(x["id"] for x in cb.json("status")["blockers"]) == sorted([ba, bb])
    assert cb("--as", a, "deregister").code == 0
    assert [x["id"] for x in cb.json("status")["blockers"]] == [bb]
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '31 minutes' WHERE instance_id = %s", (b,))
    assert cb.json("status")["blockers"] == []


def test_stale_holder_is_taken_over(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    assert claim(cb, a, "docker", "long job").code == 0
    assert claim(cb, b, "docker").code == 1
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '31 minutes' WHERE instance_id = %s", (a,))
    assert cb("--as", b, "check", "docker").code == 0      # a stale holder does not count
    res = claim(cb, b, "docker", "my turn")
    assert res.code == 0, res.err
    assert "took over from " + a in res.out
    assert holder(cb, "docker") == b
    log = cb.json("history", "--action", "takeover")["entries"]
    assert len(log) == 1 and log[0]["instance_id"] == b and a in log[0]["summary"]
    # the stale instance coming back does not get it back silently
    cb("--as", a, "heartbeat")
    res = claim(cb, a, "docker", "back again")
    assert res.code == 1 and b in res.err


def test_ttl_expiry_releases(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    res = claim(cb, a, "docker", "quick restart", "--ttl", "90s")
    assert res.code == 0
    ttl = sql("SELECT expires_at - claimed_at FROM clambake.claims WHERE resource = 'docker'")[0][0]
    assert 89 <= ttl.total_seconds() <= 91
    assert cb("--as", b, "check", "docker").code == 1
    assert claim(cb, b, "docker").code == 1
    # the TTL runs out (set in the database rather than slept through)
    sql("UPDATE clambake.claims SET expires_at = now() - interval '1 second' WHERE resource = 'docker'")
    assert cb("--as", b, "check", "docker").code == 0
    assert "docker" not in [c["resource"] for c in cb.json("status")["claims"]]
    res = claim(cb, b, "docker", "after expiry")
    assert res.code == 0 and "took over" not in res.out   # an expired claim is simply free
    assert holder(cb, "docker") == b
    # default claim TTL is 2h
    st = cb.json("status")["claims"]
    assert 7100 < st[0]["expires_in_s"] <= 7200


def test_force_takes_over_live_claim_and_is_logged(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    assert claim(cb, a, "docker", "slow migration").code == 0
    assert claim(cb, b, "docker", "urgent fix").code == 1
    res = claim(cb, b, "docker", "urgent fix", "--force")
    assert res.code == 0 and "took over from " + a in res.out
    assert holder(cb, "docker") == b
    res = cb("--as", a, "check", "docker")
    assert res.code == 1 and b in res.out
    log = cb.json("history", "--action", "takeover")["entries"]
    assert len(log) == 1 and log[0]["instance_id"] == b
    assert "docker" in log[0]["summary"] and a in log[0]["summary"] and "slow migration" in log[0]["summary"]
    # the old holder's done must not release the new holder's claim
    cb("--as", a, "send", "--type", "done", "--resource", "docker", "--subject", "oops")
    assert holder(cb, "docker") == b


def test_deregister_releases_claims(db, cb, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    assert claim(cb, a, "docker").code == 0
    assert claim(cb, a, "port-5432").code == 0
    res = cb("--as", a, "deregister")
    assert res.code == 0 and "docker" in res.out and "port-5432" in res.out
    assert cb("--as", b, "check", "docker").code == 0
    assert cb("--as", b, "check", "port-5432").code == 0
    assert claim(cb, b, "docker").code == 0
    dereg = cb.json("history", "--action", "deregister")["entries"]
    assert dereg and "docker" in dereg[0]["summary"]


def test_status_lists_every_active_claim(db, cb, sql, tmp_path):
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    c = register(cb, "gamma", tmp_path, "c")
    assert claim(cb, a, "docker", "rebuild").code == 0
    assert claim(cb, b, "port-5432", "test db").code == 0
    assert claim(cb, c, "docker-compose.yml", "editing").code == 0
    assert claim(cb, c, "short", "gone soon", "--ttl", "1m").code == 0
    sql("UPDATE clambake.claims SET expires_at = now() - interval '1 second' WHERE resource = 'short'")
    out = cb("--as", a, "status").out
    assert "claims: 3" in out
    for res, who, why in (("docker", a, "rebuild"), ("port-5432", b, "test db"),
                          ("docker-compose.yml", c, "editing")):
        line = next(l for l in out.splitlines() if l.strip().startswith(res + ":"))
        assert who in line and why in line and "expires in" in line
    claims_part = out.split("claims: 3", 1)[1].split("recent:", 1)[0]
    assert "short" not in claims_part and "gone soon" not in claims_part
    data = cb.json("status")["claims"]
    assert sorted((x["resource"], x["instance_id"]) for x in data) == sorted(
        [("docker", a), ("port-5432", b), ("docker-compose.yml", c)])


def test_a_claim_by_a_long_silent_sender_still_holds(db, cb, sql, tmp_path):
    """A session that registered long ago and never sent a heartbeat since is
    alive the moment it sends: its claim must hold, and its unkeyed blocker
    must show in status."""
    a = register(cb, "alpha", tmp_path, "a")
    b = register(cb, "beta", tmp_path, "b")
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '45 minutes' WHERE instance_id = %s", (a,))
    res = claim(cb, a, "docker", "rebuild after a long think")
    assert res.code == 0 and "claimed docker" in res.out
    res = cb("--as", b, "check", "docker")
    assert res.code == 1 and a in res.out
    assert claim(cb, b, "docker").code == 1
    assert [c["instance_id"] for c in cb.json("status")["claims"]] == [a]

    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '45 minutes' WHERE instance_id = %s", (a,))
    bid = cb.json("--as", a, "send", "--type", "blocker", "--subject", "Editing docker-compose")["id"]
    assert bid in [x["id"] for x in cb.json("status")["blockers"]]
