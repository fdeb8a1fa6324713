"""Project and global memory: remember, recall, update-memory (issue 4).

The ranking tests share one database holding a fixed corpus of ~50 realistic
memories (tests/memory_corpus.py) across three projects and global memory;
every other test gets its own fresh database.
"""

import json
import re
import time

import pytest

from conftest import run_inprocess
from test_hooks import sid, start
from memory_corpus import CORPUS, PROJECTS

KEYS = [m["key"] for m in CORPUS]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def remember_args(scope, mtype, title, content, tags=None, files=None):
    args = ["remember"] + (["--global"] if scope == "global" else ["--project", scope])
    args += ["--type", mtype, "--title", title, "--content", content]
    if tags:
        args += ["--tags", tags]
    if files:
        args += ["--files", files]
    return args


def remember(cb, scope, mtype, title, content="text", *extra, tags=None, files=None):
    """Store one memory (must succeed); return its id."""
    res = cb(*remember_args(scope, mtype, title, content, tags, files), *extra, "--json")
    assert res.code == 0, res
    return json.loads(res.out)["id"]


def ids_of(data):
    return [m["id"] for m in data["memories"]]


def counts(sql):
    return sql("SELECT (SELECT count(*) FROM clambake.project_memory), "
               "(SELECT count(*) FROM clambake.global_memory)")[0]


# --------------------------------------------------------------------------
# the corpus: one database for the whole module, loaded through `remember`
# --------------------------------------------------------------------------

class Corpus:
    def __init__(self, dsn, ids, instances):
        self.dsn = dsn
        self.ids = ids                      # key -> id
        self.keys = {v: k for k, v in ids.items()}
        self.instances = instances          # project -> instance id registered there

    def run(self, *args, env=None):
        return run_inprocess([str(a) for a in args], env=dict({"CLAMBAKE_DSN": self.dsn}, **(env or {})))

    def recall(self, *args, env=None):
        res = self.run("recall", *args, "--json", env=env)
        assert res.code == 0, res
        return json.loads(res.out)

    def first(self, *args, env=None):
        data = self.recall(*args, env=env)
        return self.keys.get(data["memories"][0]["id"]) if data["memories"] else None

    def keys_of(self, data):
        return [self.keys[m["id"]] for m in data["memories"]]


@pytest.fixture(scope="module")
def corpus(pg, _template, tmp_path_factory):
    name = pg.create_database(_template)
    dsn = pg.dsn_for(name)
    env = {"CLAMBAKE_DSN": dsn}
    try:
        ids = {}
        for m in CORPUS:
            res = run_inprocess(remember_args(m["scope"], m["type"], m["title"], m["content"],
                                              m["tags"], m["files"]) + ["--json"], env=env)
            assert res.code == 0, (m["key"], res)
            ids[m["key"]] = json.loads(res.out)["id"]
            if m.get("status"):
                res = run_inprocess(["update-memory", str(ids[m["key"]]), "--status", m["status"]], env=env)
                assert res.code == 0, res
        # Realistic ages: the corpus was written over four months (the recency boost is mild).
        import psycopg2
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            for i, m in enumerate(CORPUS):
                table = "global_memory" if m["scope"] == "global" else "project_memory"
                cur.execute(f"UPDATE clambake.{table} SET created_at = now() - %s * interval '1 day', "
                            f"updated_at = now() - %s * interval '1 day' WHERE id = %s",
                            ((i * 7) % 120 + 1, (i * 7) % 120 + 1, ids[m["key"]]))
        conn.close()
        instances = {}
        for project in ("docdb", "webapp"):
            d = tmp_path_factory.mktemp(project)
            res = run_inprocess(["register", "--project", project, "--dir", str(d), "--json"], env=env)
            assert res.code == 0, res
            instances[project] = json.loads(res.out)["instance_id"]
        yield Corpus(dsn, ids, instances)
    finally:
        pg.drop_database(name)


def test_corpus_is_big_and_spread_over_projects_and_global(corpus):
    assert len(CORPUS) >= 40 and len(set(KEYS)) == len(KEYS)
    assert {m["scope"] for m in CORPUS} == set(PROJECTS) | {"global"}
    for scope in set(PROJECTS) | {"global"}:
        assert sum(m["scope"] == scope for m in CORPUS) >= 8, scope
    everything = corpus.recall("--status", "any", "--limit", "200")   # not registered: every scope
    assert everything["total"] == len(CORPUS)


# (case id, recall arguments, key that must come first, method or None)
RANKING = [
    # stemming: the query uses another form of the word than the entry
    ("stem-restarting", ["--project", "docdb", "--search", "restarting docker"], "docker-restart-builds", "fulltext"),
    ("stem-vacuuming", ["--global", "--search", "vacuuming"], "vacuum-full-lock", "fulltext"),
    ("stem-loading", ["--all-projects", "--search", "bulk loading"], "copy-bulk-load", "fulltext"),
    ("stem-rotating-keys", ["--all-projects", "--search", "rotating keys"], "jwt-key-rotation", "fulltext"),
    ("stem-restoring", ["--all-projects", "--search", "restoring dump extension"], "restore-vector-ext", None),
    # several words, some shared with many entries
    ("multi-nginx-upload", ["--all-projects", "--search", "nginx upload size limit"], "nginx-413", "fulltext"),
    ("multi-windows-watch", ["--all-projects", "--search", "windows file watching"], "windows-file-watch", None),
    ("multi-case-insensitive", ["--global", "--search", "COMMIT MESSAGES"], "imperative-commits", None),
    ("number", ["--all-projects", "--search", "413"], "nginx-413", None),
    # quoted phrases
    ("phrase-connection-refused", ["--all-projects", "--search", '"connection refused"'],
     "worker-connection-refused", "fulltext"),
    ("phrase-inotify", ["--all-projects", "--search", '"inotify events"'], "windows-file-watch", None),
    # typos: the words are corrected against the vocabulary of the stored memories
    ("typo-dokcer-compse", ["--global", "--search", "dokcer compse"], "compose-v2", "corrected"),
    ("typo-dokcer-compse-unscoped", ["--search", "dokcer compse"], "compose-v2", "corrected"),
    ("typo-playwrite", ["--all-projects", "--search", "playwrite screnshots"], "playwright-flaky", "corrected"),
    ("typo-pgvectr", ["--all-projects", "--search", "pgvectr"], "pgvector-index-mem", "corrected"),
    # weights: title above tags above body
    ("tag-over-body", ["--all-projects", "--search", "security"], "tokens-cookies", "fulltext"),
    ("title-over-body-websocket", ["--project", "webapp", "--search", "websocket"], "nginx-websocket", "fulltext"),
    ("title-over-body-env", ["--all-projects", "--search", "environment variables"], "env-import-time", None),
    # -excluded words
    ("excluded-word", ["--all-projects", "--search", "flaky -playwright"], "upload-test-ci", "fulltext"),
    # scope: the same query, a different best answer per scope
    ("scope-project-api", ["--project", "api", "--search", "port already allocated"], "port-8000-conflict", None),
    ("scope-project-webapp", ["--project", "webapp", "--search", "port already allocated"], "vite-port-5173", None),
    ("scope-global", ["--global", "--search", "port already allocated"], "shared-postgres", None),
    ("scope-all-projects", ["--all-projects", "--search", "port already allocated"], "port-5433-allocated", None),
    # --type
    ("type-none", ["--project", "api", "--search", "alembic migrations"], "downgrade-required", None),
    ("type-gotcha", ["--project", "api", "--search", "alembic migrations", "--type", "gotcha"],
     "enum-autogenerate", None),
    ("type-issue", ["--all-projects", "--search", "docker", "--type", "issue"], "webapp-docker-slow", None),
    ("type-global-tool", ["--global", "--search", "postgres", "--type", "tool"], "pg-activity", None),
    # --status
    ("status-default-active", ["--project", "docdb", "--search", "celery redis"], "docdb-layout", None),
    ("status-resolved", ["--project", "docdb", "--search", "celery redis", "--status", "resolved"],
     "redis-maxmemory", None),
    ("status-any", ["--project", "api", "--search", "refresh token expired", "--status", "any"], "refresh-500", None),
    ("status-superseded", ["--all-projects", "--search", "CI", "--status", "superseded"], "circleci-move", None),
]


@pytest.mark.parametrize("args,expected,method", [c[1:] for c in RANKING], ids=[c[0] for c in RANKING])
def test_ranking_puts_the_right_entry_first(corpus, args, expected, method):
    data = corpus.recall(*args)
    got = corpus.keys_of(data)
    assert got, f"recall {args} found nothing (method {data['method']}); expected {expected} first"
    assert got[0] == expected, f"recall {args}: expected {expected} first, got {got} ({data['method']})"
    if method:
        assert data["method"] == method
    assert data["total"] >= len(got)


def test_ranking_has_at_least_15_queries_of_each_required_kind():
    kinds = {c[0].split("-")[0] for c in RANKING}
    assert len(RANKING) >= 15
    assert {"stem", "multi", "phrase", "typo", "tag", "title", "excluded", "scope", "type", "status"} <= kinds


def test_phrase_needs_the_words_adjacent(corpus):
    loose = corpus.keys_of(corpus.recall("--all-projects", "--search", "connection refused"))
    phrase = corpus.recall("--all-projects", "--search", '"connection refused"')
    # "Connection pool exhausted ... were then refused" has both words, apart
    assert "pool-exhausted" in loose
    assert corpus.keys_of(phrase) == ["worker-connection-refused"] and phrase["total"] == 1


def test_excluded_word_drops_entries_that_contain_it(corpus):
    both = corpus.keys_of(corpus.recall("--all-projects", "--search", "flaky"))
    assert set(both) == {"playwright-flaky", "upload-test-ci"}
    data = corpus.recall("--all-projects", "--search", "flaky -playwright")
    assert corpus.keys_of(data) == ["upload-test-ci"] and data["total"] == 1


def test_full_text_wins_over_the_fuzzy_fallback(corpus):
    data = corpus.recall("--global", "--search", "docker compose")
    assert data["method"] == "fulltext" and corpus.keys_of(data)[0] == "compose-v2"
    data = corpus.recall("--all-projects", "--search", "zzqx wibble")
    assert data["memories"] == [] and data["total"] == 0


@pytest.mark.parametrize("project,query,expected", [
    ("docdb", "port already allocated", "port-5433-allocated"),
    ("webapp", "port taken by another project", "vite-port-5173"),
])
def test_default_scope_is_my_project_plus_global(corpus, project, query, expected):
    env = {"CLAMBAKE_INSTANCE": corpus.instances[project]}
    data = corpus.recall("--search", query, env=env)
    assert corpus.keys_of(data)[0] == expected
    assert {(m["scope"], m["project"]) for m in data["memories"]} <= {("project", project), ("global", None)}
    assert "shared-postgres" in corpus.keys_of(data)          # global memory is included
    # without a search: only my project and global, nothing else
    data = corpus.recall("--limit", "200", env=env)
    assert data["total"] == sum(1 for m in CORPUS if m["scope"] in (project, "global") and not m.get("status"))
    assert {m["project"] for m in data["memories"]} == {project, None}


def test_scope_flags_return_only_that_scope(corpus):
    for args, ok in ((["--project", "api"], lambda m: m["scope"] == "project" and m["project"] == "api"),
                     (["--global"], lambda m: m["scope"] == "global" and m["project"] is None),
                     (["--all-projects"], lambda m: m["scope"] == "project")):
        data = corpus.recall(*args, "--search", "postgres port docker", "--limit", "200")
        assert data["memories"] and all(ok(m) for m in data["memories"]), args
    # project names are normalised like everywhere else
    assert corpus.recall("--project", " API ", "--limit", "200")["total"] == \
        corpus.recall("--project", "api", "--limit", "200")["total"] > 0


def test_type_filter_applies_to_every_result(corpus):
    data = corpus.recall("--all-projects", "--type", "gotcha", "--limit", "200")
    assert data["total"] == sum(1 for m in CORPUS if m["type"] == "gotcha" and m["scope"] != "global")
    assert {m["type"] for m in data["memories"]} == {"gotcha"}
    data = corpus.recall("--all-projects", "--search", "postgres", "--type", "fix", "--limit", "200")
    assert corpus.keys_of(data) == ["worker-connection-refused", "port-5433-allocated"]   # title, then tag
    res = corpus.run("recall", "--type", "gotchas")
    assert res.code == 2 and "gotcha" in res.err


def test_status_filter(corpus):
    default = corpus.recall("--all-projects", "--limit", "200")
    assert {m["status"] for m in default["memories"]} == {"active"}
    inactive = {m["key"] for m in CORPUS if m.get("status")}
    assert not inactive & set(corpus.keys_of(default))
    resolved = corpus.recall("--all-projects", "--status", "resolved", "--limit", "200")
    assert set(corpus.keys_of(resolved)) == {"redis-maxmemory", "refresh-500"}
    anything = corpus.recall("--all-projects", "--status", "any", "--limit", "200")
    assert anything["total"] == sum(1 for m in CORPUS if m["scope"] != "global")
    res = corpus.run("recall", "--status", "done")
    assert res.code == 2 and "resolved" in res.err


def test_tag_filter(corpus):
    data = corpus.recall("--all-projects", "--tag", "flaky")
    assert set(corpus.keys_of(data)) == {"playwright-flaky", "upload-test-ci"} and data["total"] == 2
    data = corpus.recall("--all-projects", "--tag", "docker,builds")        # all of them
    assert set(corpus.keys_of(data)) == {"docker-restart-builds", "webapp-docker-slow"}
    data = corpus.recall("--all-projects", "--tag", "FLAKY", "--search", "github actions")
    assert corpus.keys_of(data) == ["upload-test-ci"]
    assert all("ci" in m["tags"] for m in corpus.recall("--global", "--tag", "ci")["memories"])


def test_search_only_tag_word_finds_by_tag(corpus):
    # "realtime" is only a tag, never in a title or body
    data = corpus.recall("--all-projects", "--search", "realtime")
    assert corpus.keys_of(data) == ["socketio-polling"]


def test_json_keys_are_stable(corpus):
    data = corpus.recall("--project", "docdb", "--search", "restart docker", "--limit", "1")
    assert set(data) >= {"method", "total", "memories"}
    m = data["memories"][0]
    assert set(m) >= {"id", "scope", "project", "type", "title", "status", "tags", "files"}
    assert m["id"] == corpus.ids["docker-restart-builds"]
    assert (m["scope"], m["project"], m["type"], m["status"]) == ("project", "docdb", "gotcha", "active")
    assert m["title"] == "Docker restart kills in-flight image builds"
    assert m["tags"] == ["docker", "builds"] and m["files"] == ["docker-compose.yml"]


# --------------------------------------------------------------------------
# compact output
# --------------------------------------------------------------------------

HEADER = re.compile(r"^#(\d+) (\w+) .*\d+[smhd] ago$")


def test_default_recall_is_compact(corpus):
    res = corpus.run("recall", "--all-projects")              # default limit 10
    assert res.code == 0, res
    lines = res.out.splitlines()
    headers = [l for l in lines if HEADER.match(l)]
    previews = [l for l in lines if l.startswith("    ")]
    assert len(headers) == 10 and len(previews) == 10
    assert len(lines) == 21                                     # 10 x (header + preview) + footer
    total = sum(1 for m in CORPUS if m["scope"] != "global" and not m.get("status"))
    assert re.fullmatch(r"\(%d more match.*\)" % (total - 10), lines[-1]), lines[-1]
    for h, p in zip(lines[0:20:2], lines[1:20:2]):
        mid = int(HEADER.match(h).group(1))
        m = next(c for c in CORPUS if corpus.ids[c["key"]] == mid)
        assert m["type"] in h and m["title"] in h and "(" + m["scope"] + ")" in h
        assert "[" + m["tags"] + "]" in h                       # tags as [a,b]
        preview = p[4:]
        assert len(preview) <= 100
        assert " ".join(m["content"].split()).startswith(preview[:-3] if preview.endswith("...") else preview)
        assert m["content"] not in res.out or len(m["content"]) <= 100   # never the whole long body
    assert len(res.out.encode()) < 2500, len(res.out.encode())


def test_recall_footer_only_mentions_more_when_there_are_more(corpus):
    res = corpus.run("recall", "--project", "api", "--search", "alembic migrations")
    assert res.code == 0
    assert "more match" not in res.out
    res = corpus.run("recall", "--project", "api", "--search", "alembic migrations", "--limit", "1")
    assert res.out.splitlines()[-1].startswith("(1 more match")
    res = corpus.run("recall", "--all-projects", "--search", "zzqx wibble")
    assert res.code == 0 and res.out.strip() == "no memories match"


def test_status_shown_in_line_when_not_active(corpus):
    res = corpus.run("recall", "--project", "webapp", "--status", "superseded")
    assert "[superseded]" in res.out.splitlines()[0]
    res = corpus.run("recall", "--project", "webapp", "--limit", "200")
    assert "[superseded]" not in res.out and "[active]" not in res.out


def test_full_and_id_print_whole_entries(corpus):
    m = next(c for c in CORPUS if c["key"] == "socketio-polling")
    mid = corpus.ids[m["key"]]
    assert len(m["content"]) > 200
    short = corpus.run("recall", "--project", "webapp", "--search", "socket.io polling")
    assert m["content"] not in short.out and "..." in short.out
    full = corpus.run("recall", "--project", "webapp", "--search", "socket.io polling", "--full")
    assert m["content"] in full.out
    one = corpus.run("recall", "--id", mid)
    assert one.code == 0
    assert one.out.startswith(f"#{mid} pattern (webapp)")
    assert m["title"] in one.out and m["content"] in one.out
    assert "realtime" in one.out and "src/realtime.ts" in one.out
    data = json.loads(corpus.run("recall", "--id", f"#{mid}", "--json").out)
    assert data["content"] == m["content"] and data["id"] == mid
    missing = corpus.run("recall", "--id", "999999")
    assert missing.code == 1 and "999999" in missing.err
    assert corpus.run("recall", "--id", "abc").code == 2


# --------------------------------------------------------------------------
# one id space
# --------------------------------------------------------------------------

def test_project_and_global_memories_never_share_an_id(db, cb, sql):
    made = {"project": [], "global": []}
    for i in range(25):
        made["project"].append(remember(cb, "api", "fix", f"project note {i}", f"body {i}"))
        made["global"].append(remember(cb, "global", "lesson", f"global note {i}", f"body {i}"))
        if i % 5 == 0:   # rows inserted by plain SQL draw from the same sequence
            sql("INSERT INTO clambake.global_memory (memory_type, title, content) VALUES ('tool', %s, 'x')",
                (f"sql note {i}",))
    assert not set(made["project"]) & set(made["global"])
    assert sql("SELECT count(*) FROM clambake.project_memory p JOIN clambake.global_memory g USING (id)") == [(0,)]
    every = [r[0] for r in sql("SELECT id FROM clambake.project_memory UNION ALL "
                               "SELECT id FROM clambake.global_memory")]
    assert len(every) == len(set(every)) == 55


def test_update_memory_finds_both_kinds_and_bumps_updated_at(db, cb, sql):
    pid = remember(cb, "docdb", "issue", "Autovacuum lag on chunks", "big table")
    gid = remember(cb, "global", "lesson", "Announce docker restarts", "always")
    sql("UPDATE clambake.project_memory SET updated_at = now() - interval '3 days'")
    sql("UPDATE clambake.global_memory SET updated_at = now() - interval '3 days'")
    for mid, table in ((pid, "project_memory"), (gid, "global_memory")):
        res = cb("update-memory", mid, "--status", "resolved")
        assert res.code == 0, res
        assert f"#{mid}" in res.out
        status, fresh = sql(f"SELECT status, updated_at > now() - interval '1 minute' FROM clambake.{table} "
                            f"WHERE id = %s", (mid,))[0]
        assert (status, fresh) == ("resolved", True)
    got = cb.json("recall", "--all-projects", "--status", "resolved")["memories"]
    assert [m["id"] for m in got] == [pid]
    assert cb.json("recall", "--id", gid)["status"] == "resolved"
    # text, tags, files and type change too
    assert cb("update-memory", gid, "--title", "Announce Docker restarts first", "--tags", "Docker,ops",
              "--content", "send a warning first").code == 0
    m = cb.json("recall", "--id", gid)
    assert (m["title"], m["tags"], m["content"]) == ("Announce Docker restarts first", ["docker", "ops"],
                                                     "send a warning first")
    assert cb("update-memory", pid, "--files", "sql/tuning.sql", "--type", "gotcha").code == 0
    m = cb.json("recall", "--id", pid)
    assert (m["files"], m["type"]) == (["sql/tuning.sql"], "gotcha")


def test_update_memory_refuses_unknown_ids_and_bad_input(db, cb, sql):
    mid = remember(cb, "api", "fix", "Something", "x")
    res = cb("update-memory", mid + 1000, "--status", "resolved")
    assert res.code == 1 and f"#{mid + 1000} not found" in res.err
    assert cb("update-memory", "nope", "--status", "resolved").code == 2
    assert cb("update-memory", mid, "--status", "finished").code == 2
    assert cb("update-memory", mid).code == 2                          # nothing to update
    assert cb("update-memory", mid, "--type", "lesson").code == 2      # a global type on a project memory
    assert sql("SELECT status, memory_type FROM clambake.project_memory") == [("active", "fix")]


# --------------------------------------------------------------------------
# duplicates
# --------------------------------------------------------------------------

def test_exact_duplicate_title_is_refused_with_the_existing_id(db, cb, sql):
    first = remember(cb, "docdb", "gotcha", "Docker restart kills builds", "announce first")
    res = cb(*remember_args("docdb", "gotcha", "  docker RESTART   kills builds ", "again"))
    assert res.code == 1
    assert f"#{first}" in res.err and f"update-memory {first}" in res.err
    assert "--force" in res.err
    assert counts(sql) == (1, 0)
    # --force stores it anyway
    res = cb(*remember_args("docdb", "gotcha", "docker restart kills builds", "again"), "--force")
    assert res.code == 0 and counts(sql) == (2, 0)
    # the same title in another project, and in global memory, is fine
    assert cb(*remember_args("api", "gotcha", "Docker restart kills builds", "x")).code == 0
    assert cb(*remember_args("global", "lesson", "Docker restart kills builds", "x")).code == 0
    assert counts(sql) == (3, 1)
    # global duplicates are refused too
    res = cb(*remember_args("global", "lesson", "DOCKER restart kills builds", "x"))
    assert res.code == 1 and "update-memory" in res.err
    assert counts(sql) == (3, 1)


def test_resolved_memory_does_not_block_its_title(db, cb, sql):
    old = remember(cb, "api", "issue", "Login fails on Safari", "cookie SameSite")
    assert cb(*remember_args("api", "issue", "Login fails on Safari", "again")).code == 1
    assert cb("update-memory", old, "--status", "resolved").code == 0
    new = remember(cb, "api", "issue", "Login fails on Safari", "again, new cause")
    assert new != old and counts(sql) == (2, 0)


def test_near_duplicate_is_stored_with_a_note(db, cb, sql):
    first = remember(cb, "docdb", "gotcha", "Docker restart kills in-flight image builds", "x")
    res = cb(*remember_args("docdb", "gotcha", "Docker restart kills in-flight builds", "y"))
    assert res.code == 0, res
    assert res.out.startswith("stored #")
    note = [l for l in res.out.splitlines() if "similar" in l]
    assert len(note) == 1 and f"#{first}" in note[0]
    assert counts(sql) == (2, 0)
    data = cb.json(*remember_args("docdb", "gotcha", "Docker restarts kill in-flight image builds", "z"))
    assert first in [n["id"] for n in data["near_duplicates"]]
    # an unrelated title gets no note
    res = cb(*remember_args("docdb", "gotcha", "Redis evicts queued jobs", "z"))
    assert res.code == 0 and "similar" not in res.out
    # a similar title in another project is not a near duplicate
    res = cb(*remember_args("api", "gotcha", "Docker restart kills in-flight builds", "y"))
    assert res.code == 0 and "similar" not in res.out


# --------------------------------------------------------------------------
# secrets guard
# --------------------------------------------------------------------------

def _fake(*parts):
    # Assembled at run time so this file itself holds no token-shaped string.
    return "".join(parts)


SECRETS = [
    ("private-key", "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
     "private key", "MIIEow"),
    ("aws", "aws key id " + _fake("AKIA", "IOSFODNN7", "EXAMPLE") + " for the uploader", "AWS", "IOSFODNN7"),
    ("github", "token " + _fake("ghp_", "a1B2c3D4e5F6g7H8i9J0", "k1L2m3N4o5P6q7R8") + " for CI", "GitHub", "a1B2c3"),
    ("slack", "bot " + _fake("xoxb-", "1234567890", "-abcdefghijkl"), "Slack", "123456"),
    ("sk", "openai " + _fake("sk-", "proj-", "Abc123Def456Ghi789Jkl0"), "sk-", "Abc123"),
    ("jwt", "header Authorization: Bearer " + _fake("eyJhbGciOiJIUzI1NiJ9", ".", "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
                                                     ".", "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
     "JSON web token", "IxMjM0"),
    ("url-password", "connect to postgres://app:" + "pw@db.internal:5432/app", "URL with an embedded password",
     "pw@"),
    ("password-assignment", "staging uses password" + "=hunter2", "password/secret assignment", "hunter2"),
    ("secret-colon", "the webhook secret" + ": abc123", "password/secret assignment", "abc123"),
]


@pytest.mark.parametrize("text,what,value", [s[1:] for s in SECRETS], ids=[s[0] for s in SECRETS])
def test_secrets_guard_refuses_and_can_be_overridden(db, cb, sql, text, what, value):
    res = cb(*remember_args("global", "credential", "Staging connection", text))
    assert res.code == 2, res
    assert what in res.err and "--allow-secret" in res.err
    assert value not in res.err + res.out                 # the refusal does not repeat the secret
    assert counts(sql) == (0, 0)
    # the title is checked too
    res = cb(*remember_args("api", "fix", "note " + text.splitlines()[0], "body"))
    assert res.code == 2 and what in res.err
    # update-memory: content and title
    mid = remember(cb, "api", "fix", "Staging connection", "ask the team")
    res = cb("update-memory", mid, "--content", text)
    assert res.code == 2 and what in res.err
    assert cb.json("recall", "--id", mid)["content"] == "ask the team"
    # the override stores it
    assert cb("update-memory", mid, "--content", text, "--allow-secret").code == 0
    assert cb.json("recall", "--id", mid)["content"] == text
    gid = remember(cb, "global", "credential", "Staging connection", text, "--allow-secret")
    assert cb.json("recall", "--id", gid)["content"] == text


HARMLESS = [
    "the password is in 1Password under 'db'",
    "password=<from vault>",
    "password=${POSTGRES_PASSWORD} in docker-compose.yml",
    "password: ******",
    "API_KEY=... (ask the team lead)",
    "token: <redacted>",
    "secret: see the vault entry 'staging'",
    "client_secret: from the vault, never in .env",
    "password = os.environ['DB_PASSWORD'] in settings.py",
    "PASSWORD = settings.DB_PASSWORD",
    "def refresh(token: str) -> Session",
    "connect with postgres://app@db:5432/app, password via PGPASSFILE",
    "DSN template postgres://{user}:{password}@{host}/app",
    "postgres://app:${PGPASSWORD}@localhost/app",
    "rotate the api key every 90 days; the sk- prefix means a secret key",
    "JWT access tokens expire after 15 minutes",
]


@pytest.mark.parametrize("text", HARMLESS)
def test_secrets_guard_lets_harmless_text_through(db, cb, text):
    res = cb(*remember_args("global", "credential", "Where the staging credentials live", text))
    assert res.code == 0, res
    mid = int(re.search(r"#(\d+)", res.out).group(1))
    assert cb("update-memory", mid, "--content", text + " (checked)").code == 0


# --------------------------------------------------------------------------
# hostile queries: % _ quotes backslashes SQL
# --------------------------------------------------------------------------

@pytest.fixture
def odd(db, cb):
    ids = {
        "pct": remember(cb, "api", "gotcha", "Disk at 100% stops the WAL archiver", "free space first"),
        "big": remember(cb, "api", "issue", "Build needs 1500 MB of RAM", "raise the runner memory"),
        "under": remember(cb, "api", "gotcha", "Raise max_connections before load tests", "default 100"),
        "nounder": remember(cb, "api", "fix", "Connection limits per role", "ALTER ROLE app CONNECTION LIMIT"),
        "quote": remember(cb, "api", "decision", "Don't run VACUUM FULL in business hours", "it locks"),
        "path": remember(cb, "api", "gotcha", "Windows paths need escaping", r"C:\Users\dev\app breaks in .env"),
        "plain": remember(cb, "api", "pattern", "Feature flags at boot", "flags load once"),
    }
    return ids


def test_percent_and_underscore_are_literal(odd, cb, sql):
    before = counts(sql)
    data = cb.json("recall", "--project", "api", "--search", "100%")
    assert ids_of(data)[0] == odd["pct"]
    data = cb.json("recall", "--project", "api", "--search", "50%")
    assert data["memories"] == []             # an unescaped LIKE would match "1500" and "100%"
    data = cb.json("recall", "--project", "api", "--search", "%")
    assert ids_of(data) == [odd["pct"]]       # only the entry with a literal %
    data = cb.json("recall", "--project", "api", "--search", "_")
    assert ids_of(data) == [odd["under"]]     # only the entry with a literal _
    data = cb.json("recall", "--project", "api", "--search", "%%")
    assert data["memories"] == []
    data = cb.json("recall", "--project", "api", "--search", "max_connections")
    assert ids_of(data)[0] == odd["under"]
    assert counts(sql) == before


def test_quotes_and_backslashes(odd, cb, sql):
    before = counts(sql)
    assert ids_of(cb.json("recall", "--project", "api", "--search", "don't"))[0] == odd["quote"]
    assert ids_of(cb.json("recall", "--project", "api", "--search", "Don't run"))[0] == odd["quote"]
    data = cb.json("recall", "--project", "api", "--search", '"unterminated phrase')
    assert data["total"] == 0
    for q in ("'", '"', "''", '""', "\\", "\\\\", "'\\'"):
        res = cb("recall", "--project", "api", "--search", q, "--json")
        assert res.code == 0, (q, res)
        assert len(json.loads(res.out)["memories"]) < 7, q          # never "everything"
    assert ids_of(cb.json("recall", "--project", "api", "--search", "\\"))== [odd["path"]]
    assert ids_of(cb.json("recall", "--project", "api", "--search", r"C:\Users"))[0] == odd["path"]
    assert ids_of(cb.json("recall", "--project", "api", "--search", r"\Users\dev"))[0] == odd["path"]
    assert counts(sql) == before


@pytest.mark.parametrize("q", [
    "'; DROP TABLE clambake.project_memory; --",
    "x' OR '1'='1",
    "1); DELETE FROM clambake.global_memory; --",
    "$$; TRUNCATE clambake.project_memory; $$",
    "flags' UNION SELECT * FROM clambake.instances --",
    "\\'; DROP SCHEMA clambake CASCADE; --",
    "!!(&|<->):*",
])
def test_sql_fragments_change_nothing(odd, cb, sql, q):
    before = counts(sql)
    snapshot = sql("SELECT id, title, content, status FROM clambake.project_memory ORDER BY id")
    for scope in (["--project", "api"], ["--global"], []):
        res = cb("recall", *scope, "--search", q, "--json")
        assert res.code == 0, res
        assert len(json.loads(res.out)["memories"]) < 7             # not every row
    res = cb(*remember_args("api", "fix", q, q))                       # stored verbatim, as data
    assert res.code == 0, res
    mid = int(re.search(r"#(\d+)", res.out).group(1))
    assert cb.json("recall", "--id", mid)["title"] == " ".join(q.split())
    assert cb.json("recall", "--id", mid)["content"] == q
    assert cb("update-memory", mid, "--content", q + q).code == 0
    assert counts(sql) == (before[0] + 1, before[1])
    assert sql("SELECT id, title, content, status FROM clambake.project_memory WHERE id <> %s ORDER BY id",
               (mid,)) == snapshot
    assert "flags" in cb("recall", "--project", "api", "--search", "flags").out


# --------------------------------------------------------------------------
# input: --content -, scope rules, validation
# --------------------------------------------------------------------------

def test_content_dash_reads_stdin(db, cb):
    text = "line one with 'quotes' and \"double\"\n  indented $HOME `ticks`\nlast line\n"
    res = cb("remember", "--project", "api", "--type", "fix", "--title", "From stdin", "--content", "-",
             input=text)
    assert res.code == 0, res
    mid = int(re.search(r"#(\d+)", res.out).group(1))
    assert cb.json("recall", "--id", mid)["content"] == text
    assert cb("update-memory", mid, "--content", "-", input="replaced\nvia stdin\n").code == 0
    assert cb.json("recall", "--id", mid)["content"] == "replaced\nvia stdin\n"
    full = cb("recall", "--id", mid).out
    assert "replaced\nvia stdin" in full


def test_content_dash_through_a_real_process(db, cbp):
    text = "multi\nline body from a pipe: 100% sure\n"
    res = cbp("remember", "--global", "--type", "lesson", "--title", "Piped body", "--content", "-", input=text)
    assert res.code == 0, res
    mid = int(re.search(r"#(\d+)", res.out).group(1))
    got = cbp("recall", "--id", mid, "--json")
    assert got.code == 0 and json.loads(got.out)["content"] == text


def test_remember_uses_my_project_when_registered(db, cb, tmp_path):
    reg = cb.json("register", "--project", "Doc DB", "--dir", str(tmp_path))
    env = {"CLAMBAKE_INSTANCE": reg["instance_id"]}
    res = cb("remember", "--type", "gotcha", "--title", "Uses my project", "--content", "x", env=env)
    assert res.code == 0 and "doc-db" in res.out
    got = cb.json("recall", "--search", "uses my project", env=env)["memories"][0]
    assert (got["scope"], got["project"]) == ("project", "doc-db")
    mine = cb.json("recall", "--id", got["id"])
    assert mine["created_by"] == reg["instance_id"]
    # not registered and no scope: a clear usage error
    res = cb("remember", "--type", "gotcha", "--title", "Nowhere", "--content", "x")
    assert res.code == 2 and "--global" in res.err


def test_remember_validates_before_storing(db, cb, sql):
    assert cb(*remember_args("api", "lesson", "Wrong type", "x")).code == 2         # a global type
    res = cb(*remember_args("global", "gotcha", "Wrong type", "x"))
    assert res.code == 2 and "drop --global" in res.err
    assert cb("remember", "--project", "api", "--title", "No type", "--content", "x").code == 2
    assert cb("remember", "--project", "api", "--type", "fix", "--title", "No content").code == 2
    assert cb(*remember_args("api", "fix", "   ", "x")).code == 2
    assert cb(*remember_args("api", "fix", "t" * 201, "x")).code == 2
    assert cb(*remember_args("api", "fix", "Big", "x" * (64 * 1024 + 1))).code == 2
    assert cb(*remember_args("api", "fix", "Nul", "a\x00b")).code == 2
    assert counts(sql) == (0, 0)
    res = cb(*remember_args("api", "fix", "Tags and files", "x", tags=" Docker , CI ,", files="a.py, b/c.py"),
             "--json")
    mid = json.loads(res.out)["id"]
    m = cb.json("recall", "--id", mid)
    assert m["tags"] == ["docker", "ci"] and m["files"] == ["a.py", "b/c.py"]
    assert "Tags and files" in cb("history", "--action", "remember").out          # remembering is logged


def test_sql_fragment_through_a_real_process(odd, cbp, sql):
    before = counts(sql)
    res = cbp("recall", "--search", "'; DROP TABLE clambake.project_memory; --")
    assert res.code == 0 and "Traceback" not in res.err, res
    res = cbp("recall", "--search", "100%", "--json")
    assert res.code == 0 and json.loads(res.out)["memories"][0]["id"] == odd["pct"]
    assert counts(sql) == before


# --------------------------------------------------------------------------
# recency: a mild boost, never stronger than relevance
# --------------------------------------------------------------------------

def test_recency_breaks_ties_but_does_not_beat_relevance(db, cb, sql):
    # equally good matches; the older one has the higher id, so only recency can put the other first
    new = remember(cb, "api", "gotcha", "Redis restart drops the mail queue", "mails lost")
    old = remember(cb, "api", "gotcha", "Redis restart drops the job queue", "jobs lost")
    sql("UPDATE clambake.project_memory SET updated_at = now() - interval '200 days' WHERE id = %s", (old,))
    sql("UPDATE clambake.project_memory SET updated_at = now() - interval '2 days' WHERE id = %s", (new,))
    assert ids_of(cb.json("recall", "--project", "api", "--search", "redis restart"))[:2] == [new, old]
    # the old entry is the better match: it wins despite its age
    assert ids_of(cb.json("recall", "--project", "api", "--search", "redis job queue"))[0] == old
    assert ids_of(cb.json("recall", "--project", "api", "--search", "redis jobs"))[0] == old


# --------------------------------------------------------------------------
# the most useful memories first, without reading them all (clambake.memory_rank and its indexes)
# --------------------------------------------------------------------------

def _memory_rows_read(sql, before=None):
    """Rows the server has read from the memory tables (pg_stat_user_tables); with `before`, wait until a
    finished session's counts have reached the statistics (a backend reports them when it ends)."""
    query = ("SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) FROM pg_stat_user_tables "
             "WHERE schemaname = 'clambake' AND relname IN ('project_memory', 'global_memory')")
    deadline = time.monotonic() + 5
    while True:
        n = sql(query)[0][0]
        if before is None or n != before or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def test_recall_and_the_briefing_read_only_the_memories_they_list(db, sql, cb, tmp_path):
    kinds = "ARRAY['tool', 'decision', 'lesson', 'gotcha', 'architecture', 'convention', 'issue', 'infrastructure']"
    for table, extra_col, extra_val in (("global_memory", "", ""), ("project_memory", ", project", ", 'shop'")):
        sql(f"INSERT INTO clambake.{table} (memory_type, title, content, updated_at{extra_col}) "
            f"SELECT ({kinds})[1 + g % 8], '{table} entry ' || g, 'what was learned, number ' || g, "
            f"now() - g * interval '1 minute'{extra_val} FROM generate_series(1, 4000) g")
        sql(f"ANALYZE clambake.{table}")
    before = _memory_rows_read(sql)
    data = cb.json("recall", "--global", "--limit", "10")
    # gotchas and conventions first (rank 0), newest first: entries 3, 5, 11, 13, ...
    assert [m["title"] for m in data["memories"][:4]] == [f"global_memory entry {g}" for g in (3, 5, 11, 13)]
    read = _memory_rows_read(sql, before) - before
    # the ten it lists, and its total, counted up to 1000 (recall's cap); sorting would read all 4000
    assert read <= 1100, f"recall --global --limit 10 read {read} memory rows of 8000"
    before += read
    shop = tmp_path / "shop"
    shop.mkdir()
    _, ctx = start(cb, sid(), shop)
    assert "project_memory entry 3" in ctx and "global_memory entry 5" in ctx     # a convention (global notes)
    read = _memory_rows_read(sql, before) - before
    assert read <= 200, f"the session-start briefing read {read} memory rows of 8000"
