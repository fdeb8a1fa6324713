"""Consolidation (issue 13): `consolidate` lists duplicate clusters and likely stale entries with the
command that merges or retires each; `remember --supersedes` stores the merged entry and marks the
others superseded, pointing to it; recall and the session-start briefing hide superseded entries.

The corpus is tests/memory_corpus.py (49 realistic memories over three projects and global memory)
plus tests/consolidate_corpus.py: planted duplicates (the same knowledge written down again in other
words) that must all be found, and near misses (same subject, another fact) that must not be.
"""

import json
import os
import random
import subprocess
import time

import pytest

import clambake

from consolidate_corpus import DUPLICATES, NEAR_MISSES
from memory_corpus import CORPUS

SCOPES = ("docdb", "api", "webapp", "global")


def remember(cb, m, **kw):
    scope = ["--global"] if m["scope"] == "global" else ["--project", m["scope"]]
    args = ["remember"] + scope + ["--type", m["type"], "--title", m["title"], "--content", m["content"],
                                   "--force"]
    if m.get("tags"):
        args += ["--tags", m["tags"]]
    if m.get("files"):
        args += ["--files", m["files"]]
    return cb.json(*args, **kw)["id"]


@pytest.fixture
def planted(db, cb):
    """All corpus entries plus the planted ones -> {id: key}."""
    return {remember(cb, m): m["key"] for m in CORPUS + DUPLICATES + NEAR_MISSES}


def scope_args(scope):
    return ["--global"] if scope == "global" else ["--project", scope]


def expected_groups(scope):
    groups = {}
    for d in DUPLICATES:
        if d["scope"] == scope:
            groups.setdefault(d["dup_of"], {d["dup_of"]}).add(d["key"])
    return sorted(sorted(g) for g in groups.values())


def test_finds_every_planted_duplicate_and_clusters_nothing_else(planted, cb):
    for scope in SCOPES:
        data = cb.json("consolidate", *scope_args(scope))
        found = sorted(sorted(planted[i] for i in c["ids"]) for c in data["clusters"])
        assert found == expected_groups(scope), scope
        assert data["clusters_total"] == len(found)
        near = {n["key"] for n in NEAR_MISSES}
        assert not near & {k for g in found for k in g}


def test_report_is_compact_and_each_cluster_has_its_merge_command(planted, cb):
    res = cb("consolidate", "--project", "docdb")
    assert res.code == 0
    lines = res.out.splitlines()
    assert lines[0].startswith("consolidate docdb: 20 active memories; 4 duplicate cluster(s) (9 entries)")
    merges = [ln.strip()[len("merge: "):] for ln in lines if ln.strip().startswith("merge: ")]
    assert len(merges) == 4
    ids = {k: i for i, k in planted.items()}
    vacuum = next(m for m in merges if f"--supersedes {ids['autovacuum-chunks']}," in m)
    assert vacuum.startswith(f"{clambake.script_cmd()} remember --project docdb --type ")
    assert " --content - " in vacuum
    want = sorted([ids["autovacuum-chunks"], ids["dup-vacuum-1"], ids["dup-vacuum-2"]])
    assert vacuum.endswith("--supersedes " + ",".join(map(str, want)))
    assert len(res.out) < 3000


def run_printed(command, text, dsn, cwd):
    """Run a command exactly as clambake printed it, through a real shell, from another directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAMBAKE_", "PG"))}
    env["CLAMBAKE_DSN"] = dsn
    return subprocess.run(command, shell=True, input=text, capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=60, executable="/bin/bash")


def test_merge_as_printed_supersedes_the_cluster(planted, db, cb, sql, tmp_path):
    ids = {k: i for i, k in planted.items()}
    data = cb.json("consolidate", "--project", "docdb")
    cluster = next(c for c in data["clusters"] if ids["autovacuum-chunks"] in c["ids"])
    merged = ("Re-embedding rewrites millions of chunks rows and autovacuum falls behind (40 GB of bloat). "
              "Set autovacuum_vacuum_scale_factor = 0.02 on chunks and run VACUUM (ANALYZE) chunks after each "
              "bulk re-embed.")
    proc = run_printed(cluster["command"], merged, db.dsn, str(tmp_path))
    assert proc.returncode == 0, proc
    assert "superseded " + ", ".join(f"#{i}" for i in cluster["ids"]) in proc.stdout
    new_id = int(proc.stdout.split("#", 1)[1].split()[0])
    rows = sql("SELECT id, status, superseded_by FROM clambake.project_memory WHERE id = ANY(%s) ORDER BY id",
               (cluster["ids"],))
    assert rows == [(i, "superseded", new_id) for i in cluster["ids"]]
    new = cb.json("recall", "--id", new_id)
    assert new["content"] == merged and new["status"] == "active"
    assert set(new["tags"]) == {"postgres", "performance"} and new["files"] == ["sql/tuning.sql"]
    # hidden from default recall and search; shown with --status; the old one names its successor
    listed = cb.json("recall", "--project", "docdb", "--limit", "50")
    assert not set(cluster["ids"]) & {m["id"] for m in listed["memories"]}
    hits = cb.json("recall", "--project", "docdb", "--search", "chunks vacuum")["memories"]
    assert [m["id"] for m in hits] == [new_id]
    assert set(cluster["ids"]) <= {m["id"] for m in cb.json("recall", "--project", "docdb", "--status",
                                                             "superseded")["memories"]}
    listed = cb("recall", "--project", "docdb", "--status", "superseded").out
    assert f"#{cluster['ids'][0]} " in listed and f"[superseded -> #{new_id}]" in listed
    old = cb("recall", "--id", cluster["ids"][0])
    assert f"superseded by #{new_id}: {new['title']} (recall --id {new_id})" in old.out
    assert cb.json("recall", "--id", cluster["ids"][0])["superseded_by"] == new_id
    # consolidate no longer proposes it
    again = cb.json("consolidate", "--project", "docdb")
    assert not any(new_id in c["ids"] or ids["autovacuum-chunks"] in c["ids"] for c in again["clusters"])
    assert len(again["clusters"]) == len(data["clusters"]) - 1
    # brought back by hand: no longer points to a successor
    cb("update-memory", cluster["ids"][0], "--status", "active")
    assert sql("SELECT status, superseded_by FROM clambake.project_memory WHERE id = %s",
               (cluster["ids"][0],)) == [("active", None)]


def test_supersedes_refuses_bad_ids_atomically(db, cb, sql):
    a = cb.json("remember", "--project", "shop", "--type", "gotcha", "--title", "A", "--content", "a")["id"]
    b = cb.json("remember", "--project", "shop", "--type", "gotcha", "--title", "B", "--content", "b")["id"]
    other = cb.json("remember", "--project", "blog", "--type", "gotcha", "--title", "C", "--content", "c")["id"]
    glob = cb.json("remember", "--global", "--type", "lesson", "--title", "D", "--content", "d")["id"]
    count = sql("SELECT count(*) FROM clambake.project_memory")

    def merge(ids, content="merged", scope=("--project", "shop")):
        return cb("remember", *scope, "--type", "gotcha", "--title", "AB", "--content", content,
                  "--supersedes", ids)
    res = merge(f"{a},999999")
    assert res.code == 1 and "memory #999999 is not in project shop" in res.err
    res = merge(f"{a},{other}")
    assert res.code == 1 and f"memory #{other} is in project blog, not shop" in res.err
    res = merge(f"{a},{glob}")
    assert res.code == 1 and "(it is in global memory)" in res.err
    res = merge(f"{glob}", scope=("--global",))
    assert res.code == 2            # gotcha is not a global type: checked before anything
    assert merge(f"{a},{b}", content="").code == 2
    assert merge(f"{a},{b}", content="   \n").code == 2
    assert merge("x,1").code == 2
    assert sql("SELECT count(*) FROM clambake.project_memory") == count
    assert sql("SELECT DISTINCT status FROM clambake.project_memory") == [("active",)]
    # the merged entry may keep the title of one it replaces
    res = cb.json("remember", "--project", "shop", "--type", "gotcha", "--title", "A", "--content", "a and b",
                  "--supersedes", f"{a},{b}")
    assert res["supersedes"] == [a, b]
    again = merge(f"{a}")
    assert again.code == 1 and f"memory #{a} is already superseded by #{res['id']}" in again.err


def test_briefing_prefers_the_merged_entry(db, cb, sql, tmp_path):
    work = tmp_path / "shop"
    work.mkdir()
    old = cb.json("remember", "--project", "shop", "--type", "gotcha", "--title", "Worker caches config",
                  "--content", "Restart the worker after deploys.")["id"]
    cb("remember", "--project", "shop", "--type", "gotcha", "--title", "Restart the worker after each deploy",
       "--content", "-", "--supersedes", str(old), input="The worker caches its config: restart it after every deploy.")
    hook = cb("hook", "session-start", input=json.dumps({"session_id": "s-brief", "cwd": str(work),
                                                          "source": "startup"}),
              env={"CLAUDE_CODE_SESSION_ID": "s-brief"}, cwd=str(work))
    context = json.loads(hook.out)["hookSpecificOutput"]["additionalContext"]
    assert "Restart the worker after each deploy" in context
    assert "Worker caches config" not in context


def test_likely_stale_entries(db, cb, sql, tmp_path):
    proj = tmp_path / "shop"
    (proj / "app").mkdir(parents=True)
    (proj / "app" / "main.py").write_text("print('hi')\n")
    kept = cb.json("remember", "--project", "shop", "--type", "pattern", "--title", "Entry point",
                   "--content", "app/main.py builds the app.", "--files", "app/main.py")["id"]
    moved = cb.json("remember", "--project", "shop", "--type", "gotcha", "--title", "Old settings module",
                    "--content", "Settings are read in app/settings.py.", "--files", "app/main.py,app/settings.py")["id"]
    old_issue = cb.json("remember", "--project", "shop", "--type", "issue", "--title", "Checkout flaky on Safari",
                        "--content", "Sometimes the pay button does nothing.")["id"]
    fresh = cb.json("remember", "--project", "shop", "--type", "issue", "--title", "Search slow",
                    "--content", "Search takes 2 s.")["id"]
    done = cb.json("remember", "--project", "shop", "--type", "issue", "--title", "Login loop",
                   "--content", "Fixed by clearing the cookie path.")["id"]
    cb("update-memory", done, "--status", "resolved")
    sql("UPDATE clambake.project_memory SET updated_at = now() - interval '120 days' WHERE id = ANY(%s)",
        ([old_issue, done],))
    # no project directory known: files are not checked, and the report says so
    res = cb("consolidate", "--project", "shop")
    assert "related files not checked" in res.out
    data = cb.json("consolidate", "--project", "shop", "--dir", str(proj))
    stale = {s["id"]: s for s in data["stale"]}
    assert set(stale) == {moved, old_issue}
    assert stale[moved]["missing_files"] == ["app/settings.py"]
    assert stale[moved]["command"] == f"{clambake.script_cmd()} update-memory {moved} --status deprecated"
    assert stale[old_issue]["reasons"] == ["issue unresolved for 120d"]
    assert stale[old_issue]["command"].endswith(f"update-memory {old_issue} --status resolved")
    assert kept not in stale and fresh not in stale
    # the registered directory of the project is used without --dir
    cb("register", "--project", "shop", "--dir", str(proj), env={"CLAUDE_CODE_SESSION_ID": "s-stale"})
    text = cb("consolidate", "--project", "shop").out
    assert f"#{moved} gotcha Old settings module: missing file: app/settings.py -> {clambake.script_cmd()} " \
           f"update-memory {moved} --status deprecated" in text
    assert cb("consolidate", "--project", "shop", "--stale-after", "200d", "--dir", str(proj)).out.count("#") == 1


WORDS = ("alembic api async backup bucket cache celery certificate cluster compose config container cookie cron "
         "csrf dashboard deploy dns docker endpoint env etag feature flag gateway grafana healthcheck helm "
         "index ingress invoice job kafka kernel lambda latency lock log memory metrics migration minio "
         "mount mypy nginx node oauth orm pagination partition payload pipeline pool port postgres proxy "
         "pytest queue quota rate redis refresh replica retry role router rust s3 scheduler schema secret "
         "sentry session shard signal smtp snapshot socket sqlalchemy ssl staging storage stream swap "
         "systemd table template terraform thread timeout tls token trace traefik trigger ttl uvicorn "
         "vacuum vault vector volume webhook websocket worker yaml zone").split()


def synthetic(n, seed=13):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        topic = rnd.sample(WORDS, 3)
        facts = [" ".join(rnd.sample(WORDS, 6)) for _ in range(3)]
        out.append(dict(key=f"syn-{i}", scope="docdb", type=rnd.choice(("gotcha", "fix", "pattern", "decision")),
                        title=f"{topic[0]} {topic[1]} and {topic[2]} note {i}",
                        content=f"When {facts[0]}, expect {facts[1]}; we settled on {facts[2]} (case {i}).",
                        tags=",".join(topic[:2]), files=""))
    return out


def test_report_size_and_time_on_500_memories(db, cb, sql):
    entries = CORPUS + DUPLICATES + NEAR_MISSES
    docdb = [m for m in entries if m["scope"] == "docdb"]
    fill = synthetic(500 - len(docdb))
    rows = [(m["type"], m["title"], m["content"], m["tags"].split(",") if m["tags"] else [],
             m["files"].split(",") if m["files"] else [], m["key"]) for m in docdb + fill]
    keys = {}
    for mtype, title, content, tags, files, key in rows:
        [(i,)] = sql("INSERT INTO clambake.project_memory (project, memory_type, title, content, tags, "
                     "related_files) VALUES ('docdb', %s, %s, %s, %s, %s) RETURNING id",
                     (mtype, title, content, tags, files))
        keys[i] = key
    assert sql("SELECT count(*) FROM clambake.project_memory WHERE project = 'docdb'") == [(500,)]
    t0 = time.monotonic()
    res = cb("consolidate", "--project", "docdb")
    dt = time.monotonic() - t0
    assert res.code == 0
    data = cb.json("consolidate", "--project", "docdb")
    found = sorted(sorted(keys[i] for i in c["ids"]) for c in data["clusters"])
    assert found == expected_groups("docdb")            # the same clusters among 500 entries
    lines = res.out.count("\n")
    print(f"\nconsolidate report on 500 memories: {len(res.out)} characters, {lines} lines, {dt:.2f}s")
    assert len(res.out) < 4000 and lines < 40
    assert dt < 10
