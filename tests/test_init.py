"""`init`: idempotent, concurrent-safe, touches no other schema, works without
pg_trgm, and upgrades the ORIGINAL clambake schema in place without losing rows."""

import os
import subprocess
import sys
import time
import uuid

import psycopg2
import pytest

import clambake

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "clambake.py")


def spawn(args, env):
    """Start `python clambake.py ARGS` as a real process (not waited for)."""
    return subprocess.Popen([sys.executable, SCRIPT] + list(args), env=env, cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# plain init
# --------------------------------------------------------------------------

def test_init_on_empty_database_creates_schema(empty_db, cb, sql):
    res = cb("init")
    assert res.code == 0, res
    assert "created" in res.out
    assert sql("SELECT value FROM clambake.meta WHERE key = 'schema_version'") == [(str(clambake.SCHEMA_VERSION),)]
    tables = {r[0] for r in sql("SELECT table_name FROM information_schema.tables "
                                "WHERE table_schema = 'clambake'")}
    for t in ("instances", "messages", "message_receipts", "claims", "project_memory",
              "global_memory", "session_log", "meta"):
        assert t in tables
    # the new schema is usable straight away
    assert cb("register", "--project", "fresh").code == 0


def test_init_twice_is_idempotent_and_keeps_rows(db, cb, sql, tmp_path):
    assert cb("register", "--project", "alpha", "--task", "t1", cwd=tmp_path).code == 0
    assert cb("remember", "--type", "gotcha", "--title", "Kept title", "--content", "kept body",
              cwd=tmp_path).code == 0
    assert cb("send", "--to", "@all", "--subject", "kept message", cwd=tmp_path).code == 0
    assert cb("log", "--action", "note", "--summary", "kept log", cwd=tmp_path).code == 0

    def snapshot():
        return {t: sql("SELECT * FROM clambake.%s ORDER BY 1" % t)
                for t in ("instances", "messages", "project_memory", "global_memory", "session_log",
                          "claims", "message_receipts")}

    before = snapshot()
    for _ in range(2):
        res = cb("init")
        assert res.code == 0, res
        assert "checked/upgraded" in res.out
    assert snapshot() == before
    # a third run with --json says the schema existed
    data = cb.json("init")
    assert data == {"schema_version": clambake.SCHEMA_VERSION, "existed": True, "granted": []}
    # still the same identity and inbox afterwards
    assert cb("whoami", cwd=tmp_path).out.startswith(before["instances"][0][1])


def test_init_quiet_prints_nothing(empty_db, cb):
    res = cb("init", "--quiet")
    assert res.code == 0 and res.out == "" and res.err == ""


@pytest.mark.slow
def test_five_concurrent_inits_all_succeed(empty_db, sql):
    env = dict(os.environ, CLAMBAKE_DSN=empty_db.dsn)
    procs = [spawn(["init"], env) for _ in range(5)]
    results = [finish(p) for p in procs]
    for code, out, err in results:
        assert code == 0, (code, out, err)
        assert "Traceback" not in err
    # exactly one of them created the schema, the others found it
    assert sum("created" in out for _, out, _ in results) == 1
    assert sql("SELECT value FROM clambake.meta WHERE key = 'schema_version'") == [(str(clambake.SCHEMA_VERSION),)]
    assert sql("SELECT count(*) FROM clambake.instances") == [(0,)]


def _objects_outside_clambake(sql):
    """Everything a schema change could leave behind outside schema clambake."""
    rels = sql("SELECT n.nspname, c.relname, c.relkind FROM pg_class c "
               "JOIN pg_namespace n ON n.oid = c.relnamespace "
               "WHERE n.nspname NOT IN ('clambake', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%%' "
               "AND n.nspname NOT LIKE 'pg_toast_temp%%' ORDER BY 1, 2")
    procs = sql("SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname <> 'clambake' ORDER BY 1, 2, 3")
    types = sql("SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname NOT IN ('clambake', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%%' "
                "ORDER BY 1, 2")
    schemas = sql("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_temp%%' "
                  "AND nspname NOT LIKE 'pg_toast_temp%%' ORDER BY 1")
    triggers = sql("SELECT evtname FROM pg_event_trigger ORDER BY 1")
    return rels, procs, types, schemas, triggers


def test_init_touches_no_other_schema(empty_db, cb, sql):
    sql("CREATE TABLE public.instances (id serial PRIMARY KEY, instance_id text, note text)")
    sql("INSERT INTO public.instances (instance_id, note) VALUES ('mine-1', 'not clambake'), ('mine-2', 'x')")
    sql("CREATE TABLE public.messages (id int)")
    before_rows = sql("SELECT * FROM public.instances ORDER BY id")
    before = _objects_outside_clambake(sql)
    for _ in range(2):
        assert cb("init").code == 0
    after = _objects_outside_clambake(sql)
    rels, procs, types, schemas, triggers = after
    assert rels == before[0]
    assert procs == before[1]
    assert types == before[2]
    assert set(schemas) - set(before[3]) == {("clambake",)}
    assert triggers == before[4]
    assert sql("SELECT * FROM public.instances ORDER BY id") == before_rows
    assert sql("SELECT count(*) FROM public.messages") == [(0,)]
    # clambake's commands use their own tables, not the same-named public ones
    assert cb("register", "--project", "p").code == 0
    assert sql("SELECT * FROM public.instances ORDER BY id") == before_rows


@pytest.fixture
def restricted_db(pg):
    """A database owned by a non-superuser role, where CREATE EXTENSION is refused.

    pg_trgm is a trusted extension (PG 13+), so a database owner could normally
    create it; an event trigger makes it unavailable, as on a managed server."""
    role = "cb_owner_" + uuid.uuid4().hex[:8]
    name = "t_" + uuid.uuid4().hex
    pg.admin('CREATE ROLE "%s" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE' % role)
    pg.admin('CREATE DATABASE "%s" TEMPLATE template0 OWNER "%s"' % (name, role))
    pg.admin('GRANT CREATE, CONNECT ON DATABASE "%s" TO "%s"' % (name, role))
    admin_here = psycopg2.connect(pg.dsn_for(name), connect_timeout=10)
    admin_here.autocommit = True
    with admin_here.cursor() as cur:
        cur.execute("CREATE SCHEMA guard")
        cur.execute("CREATE FUNCTION guard.no_extensions() RETURNS event_trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION 'permission denied to create extension'; END $$")
        cur.execute("CREATE EVENT TRIGGER no_extensions ON ddl_command_start "
                    "WHEN TAG IN ('CREATE EXTENSION') EXECUTE FUNCTION guard.no_extensions()")
    admin_here.close()
    params = psycopg2.extensions.parse_dsn(pg.dsn_for(name))
    params["user"] = role
    try:
        yield psycopg2.extensions.make_dsn(**params), pg.dsn_for(name)
    finally:
        pg.drop_database(name)
        pg.admin('DROP ROLE IF EXISTS "%s"' % role)


def test_init_succeeds_without_pg_trgm_and_recall_falls_back(restricted_db, cb, _clean_env):
    dsn, admin_dsn = restricted_db
    env = {"CLAMBAKE_DSN": dsn}
    # the extension really is refused here
    conn = psycopg2.connect(dsn, connect_timeout=10)
    conn.autocommit = True
    with pytest.raises(psycopg2.Error):
        conn.cursor().execute("CREATE EXTENSION pg_trgm")
    conn.close()

    res = cb("init", env=env)
    assert res.code == 0, res
    assert "Traceback" not in res.err
    assert cb("init", env=env).code == 0          # and again
    admin = psycopg2.connect(admin_dsn, connect_timeout=10)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
                        "WHERE n.nspname = 'clambake'")
            assert cur.fetchone()[0] != "postgres"
    finally:
        admin.close()

    assert cb("remember", "--project", "shop", "--type", "gotcha", "--title", "Dockerfile cache busting",
              "--content", "COPY requirements first", env=env).code == 0
    assert cb("remember", "--global", "--type", "tool", "--title", "pgbouncer pooling",
              "--content", "transaction mode breaks LISTEN", env=env).code == 0
    # full text finds whole words
    res = cb("recall", "--project", "shop", "--search", "cache", env=env)
    assert res.code == 0 and "Dockerfile cache busting" in res.out, res
    # a word fragment is not a full-text hit: the fallback (no pg_trgm) must find it
    res = cb("recall", "--project", "shop", "--search", "erfil", env=env)
    assert res.code == 0 and "Dockerfile cache busting" in res.out, res
    res = cb("recall", "--global", "--search", "bounce", env=env)
    assert res.code == 0 and "pgbouncer pooling" in res.out, res
    # the near-duplicate check (uses the fallback similarity) works too
    res = cb("remember", "--project", "shop", "--type", "gotcha", "--title", "Dockerfile cache",
             "--content", "x", env=env)
    assert res.code == 0, res
    # and the registry works for this role
    assert cb("register", "--project", "shop", env=env).code == 0
    assert cb("status", env=env).code == 0


# --------------------------------------------------------------------------
# in-place upgrade of the original schema
# --------------------------------------------------------------------------

ORIGINAL_SCHEMA = """
CREATE SCHEMA clambake;
CREATE TABLE clambake.instances (
    id serial PRIMARY KEY,
    instance_id text UNIQUE,
    project text,
    working_dir text,
    current_task text,
    model text,
    status text,
    started_at timestamp DEFAULT now(),
    last_heartbeat timestamp DEFAULT now()
);
CREATE TABLE clambake.messages (
    id serial PRIMARY KEY,
    from_instance text,
    from_project text,
    to_target text,
    message_type text,
    subject text,
    body text,
    is_read boolean DEFAULT false,
    created_at timestamp DEFAULT now(),
    expires_at timestamp
);
CREATE TABLE clambake.project_memory (
    id serial PRIMARY KEY,
    project text,
    memory_type text,
    title text,
    content text,
    status text DEFAULT 'active',
    tags text[],
    related_files text[],
    created_by text,
    created_at timestamp DEFAULT now(),
    updated_at timestamp DEFAULT now()
);
CREATE TABLE clambake.global_memory (
    id serial PRIMARY KEY,
    memory_type text,
    title text,
    content text,
    tags text[],
    created_by text,
    created_at timestamp DEFAULT now(),
    updated_at timestamp DEFAULT now()
);
CREATE TABLE clambake.session_log (
    id serial PRIMARY KEY,
    instance_id text,
    project text,
    action text,
    summary text,
    files_modified text[],
    created_at timestamp DEFAULT now()
);
"""

ORIGINAL_ROWS = """
INSERT INTO clambake.instances (instance_id, project, working_dir, current_task, model, status)
VALUES ('old-a', 'legacy', '/srv/legacy', 'porting', 'opus', 'active'),
       ('old-b', 'other', '/srv/other', NULL, NULL, 'weird-status');
INSERT INTO clambake.messages (from_instance, from_project, to_target, message_type, subject, body,
                               is_read, created_at, expires_at)
VALUES ('old-a', 'legacy', 'legacy', 'request', 'please rotate the keys', 'old body', false,
        now() - interval '1 hour', now() + interval '1 day'),
       ('old-a', 'legacy', 'legacy', 'info', 'already seen before upgrade', NULL, true,
        now() - interval '1 hour', now() + interval '1 day'),
       ('old-b', 'other', 'old-a', 'warning', 'direct to old-a', NULL, false, now(), NULL),
       ('old-b', 'other', 'all', 'info', 'ancient broadcast', NULL, false,
        now() - interval '3 days', NULL);
INSERT INTO clambake.project_memory (project, memory_type, title, content, status, tags, related_files,
                                     created_by)
VALUES ('legacy', 'gotcha', 'Legacy port clash', 'port 5433 is taken by docdb', 'active',
        ARRAY['ports'], ARRAY['docker-compose.yml'], 'old-a'),
       ('legacy', 'decision', 'Use psycopg2', 'binary wheels', NULL, NULL, NULL, 'old-a'),
       ('other', 'fix', 'Third project row', 'three', 'resolved', ARRAY['x'], ARRAY[]::text[], 'old-b');
INSERT INTO clambake.global_memory (memory_type, title, content, tags, created_by)
VALUES ('convention', 'Tabs versus spaces', 'always use zebrafish indentation', ARRAY['style'], 'old-a'),
       ('tool', 'Ripgrep flags', 'rg -uu searches hidden files', NULL, 'old-b');
INSERT INTO clambake.session_log (instance_id, project, action, summary, files_modified, created_at)
VALUES ('old-a', 'legacy', 'start', 'began porting', ARRAY['a.py'], now() - interval '2 days'),
       ('old-b', 'other', NULL, 'no action recorded', NULL, now());
"""

TABLE_COLS = {
    "instances": "id, instance_id, project, working_dir, current_task, model",
    "messages": "id, from_instance, from_project, message_type, subject, body, is_read",
    "project_memory": "id, project, memory_type, title, content, tags, related_files, created_by",
    "global_memory": "id, memory_type, title, content, tags, created_by",
    "session_log": "id, instance_id, project, summary, files_modified",
}


def _rows(sql, table):
    return sql("SELECT %s FROM clambake.%s ORDER BY id" % (TABLE_COLS[table], table))


def _norm(rows):
    # NULL arrays become empty arrays on upgrade; compare modulo that
    return [tuple([] if v is None and i >= 5 else v for i, v in enumerate(r)) for r in rows]


@pytest.fixture
def old_db(empty_db, sql):
    """empty_db holding the original clambake schema with rows in every table, then `init`."""
    sql(ORIGINAL_SCHEMA)
    sql(ORIGINAL_ROWS)
    before = {t: _rows(sql, t) for t in TABLE_COLS}
    times = sql("SELECT id, extract(epoch FROM created_at) FROM clambake.session_log ORDER BY id")
    return empty_db, before, times


def _upgrade(cb):
    res = cb("init")
    assert res.code == 0, res
    assert "checked/upgraded" in res.out
    return res


def test_upgrade_keeps_every_row_and_id(old_db, cb, sql):
    _, before, times = old_db
    _upgrade(cb)
    for table in ("instances", "messages", "global_memory"):
        after = _rows(sql, table)
        assert len(after) == len(before[table])
        assert [r[0] for r in after] == [r[0] for r in before[table]], table
    assert _rows(sql, "instances") == before["instances"]
    assert _rows(sql, "messages") == before["messages"]
    assert _rows(sql, "project_memory") == _norm(before["project_memory"])
    gm = _rows(sql, "global_memory")
    assert [r[:4] for r in gm] == [r[:4] for r in before["global_memory"]]
    assert gm[1][4] == [] and gm[0][4] == ["style"]
    assert _rows(sql, "session_log") == [
        r[:4] + ([] if r[4] is None else r[4],) for r in before["session_log"]]
    # timestamps keep their instant (timestamp -> timestamptz in the session's zone)
    assert sql("SELECT id, extract(epoch FROM created_at) FROM clambake.session_log ORDER BY id") == times
    # old enum values that the new constraints forbid were mapped, not dropped
    assert sql("SELECT status FROM clambake.instances WHERE instance_id = 'old-b'") == [("active",)]
    assert sql("SELECT status FROM clambake.project_memory WHERE id = 2") == [("active",)]
    assert sql("SELECT status FROM clambake.global_memory ORDER BY id") == [("active",), ("active",)]
    # a second init after the upgrade changes nothing
    snap = {t: _rows(sql, t) for t in TABLE_COLS}
    assert cb("init").code == 0
    assert {t: _rows(sql, t) for t in TABLE_COLS} == snap


def test_upgrade_new_memory_ids_are_unique_across_tables(old_db, cb, sql):
    _upgrade(cb)
    old_ids = {r[0] for r in sql("SELECT id FROM clambake.project_memory UNION ALL "
                                 "SELECT id FROM clambake.global_memory")}
    assert old_ids == {1, 2, 3}
    new = []
    for i in range(3):
        new.append(cb.json("remember", "--project", "legacy", "--type", "fix", "--title", "new p%d" % i,
                           "--content", "c")["id"])
        new.append(cb.json("remember", "--global", "--type", "lesson", "--title", "new g%d" % i,
                           "--content", "c")["id"])
    assert len(set(new)) == len(new)
    assert min(new) > max(old_ids)
    pm = {r[0] for r in sql("SELECT id FROM clambake.project_memory")}
    gm = {r[0] for r in sql("SELECT id FROM clambake.global_memory")}
    assert pm & gm == {1, 2}          # only the old collisions, never a new one
    # each new id names exactly one memory
    for mid in new:
        res = cb("recall", "--id", mid)
        assert res.code == 0, res


def test_upgrade_ambiguous_old_id_is_explained(old_db, cb, sql):
    _upgrade(cb)
    res = cb("update-memory", "1", "--status", "resolved")
    assert res.code == 1, res
    assert "ambiguous" in res.err
    assert "--scope" in res.err
    assert "Traceback" not in res.err
    # nothing changed
    assert sql("SELECT status FROM clambake.project_memory WHERE id = 1") == [("active",)]
    assert sql("SELECT status FROM clambake.global_memory WHERE id = 1") == [("active",)]

    res = cb("update-memory", "1", "--scope", "global", "--status", "resolved")
    assert res.code == 0, res
    assert sql("SELECT status FROM clambake.global_memory WHERE id = 1") == [("resolved",)]
    assert sql("SELECT status FROM clambake.project_memory WHERE id = 1") == [("active",)]
    res = cb("update-memory", "1", "--scope", "project", "--title", "Legacy port clash (5433)")
    assert res.code == 0, res
    assert sql("SELECT title FROM clambake.project_memory WHERE id = 1") == [("Legacy port clash (5433)",)]
    assert sql("SELECT title FROM clambake.global_memory WHERE id = 1") == [("Tabs versus spaces",)]
    # an old id that is not ambiguous needs no --scope
    res = cb("update-memory", "3", "--status", "deprecated")
    assert res.code == 0, res
    # recall --id on the ambiguous id says the same
    res = cb("recall", "--id", "2")
    assert res.code == 1 and "ambiguous" in res.err


def test_upgrade_old_global_memory_is_searchable(old_db, cb):
    _upgrade(cb)
    res = cb("recall", "--global", "--search", "zebrafish")
    assert res.code == 0, res
    assert "#1" in res.out and "Tabs versus spaces" in res.out
    res = cb("recall", "--project", "legacy", "--search", "docdb")
    assert res.code == 0 and "Legacy port clash" in res.out, res


def test_upgrade_old_unread_messages_reach_new_instance(old_db, cb, tmp_path):
    _upgrade(cb)
    res = cb("register", "--project", "legacy", "--dir", tmp_path, cwd=tmp_path)
    assert res.code == 0, res
    assert "unread: 1" in res.out
    data = cb.json("inbox", cwd=tmp_path)
    subjects = [m["subject"] for m in data["messages"]]
    assert subjects == ["please rotate the keys"]
    assert data["messages"][0]["body"] == "old body"
    # read once: gone from the inbox
    assert cb.json("inbox", cwd=tmp_path)["messages"] == []


def test_upgrade_old_direct_message_and_registry(old_db, cb, sql, tmp_path):
    _upgrade(cb)
    # the direct message to old-a became an instance message
    assert sql("SELECT target_kind FROM clambake.messages WHERE subject = 'direct to old-a'") == [("instance",)]
    data = cb.json("inbox", "--peek", "--as", "old-a")
    # (its own request to project legacy is not delivered back to it)
    assert [m["subject"] for m in data["messages"]] == ["direct to old-a"]
    # old instances can heartbeat and deregister through --as
    assert cb("heartbeat", "--as", "old-a", "--task", "after upgrade").code == 0
    assert sql("SELECT current_task FROM clambake.instances WHERE instance_id = 'old-a'") == [("after upgrade",)]
    assert cb("deregister", "--as", "old-b").code == 0
    assert sql("SELECT instance_id FROM clambake.instances ORDER BY id") == [("old-a",)]
    # and new registrations get fresh ids next to the old rows
    res = cb("register", "--project", "legacy", "--dir", tmp_path, cwd=tmp_path)
    assert res.code == 0, res
    assert sql("SELECT count(*) FROM clambake.instances") == [(2,)]


def test_upgrade_with_old_rows_holding_nulls(empty_db, cb, sql):
    """Columns the original schema left nullable may hold NULLs; init must cope."""
    sql(ORIGINAL_SCHEMA)
    sql("INSERT INTO clambake.instances (instance_id, status, started_at, last_heartbeat) "
        "VALUES ('nulls', NULL, NULL, NULL)")
    sql("INSERT INTO clambake.messages (to_target, message_type, is_read, created_at) "
        "VALUES (NULL, NULL, NULL, NULL)")
    sql("INSERT INTO clambake.project_memory (project, memory_type, title, status, created_at, updated_at) "
        "VALUES ('p', 'fix', 't', NULL, NULL, NULL)")
    sql("INSERT INTO clambake.global_memory (memory_type, title) VALUES ('tool', 'g')")
    sql("INSERT INTO clambake.session_log (instance_id) VALUES ('nulls')")
    res = cb("init")
    assert res.code == 0, res
    assert sql("SELECT count(*) FROM clambake.instances") == [(1,)]
    assert sql("SELECT count(*) FROM clambake.messages") == [(1,)]
    assert sql("SELECT count(*) FROM clambake.project_memory") == [(1,)]
    assert sql("SELECT count(*) FROM clambake.global_memory") == [(1,)]
    assert sql("SELECT count(*) FROM clambake.session_log") == [(1,)]
    assert cb("status").code == 0


def test_init_waits_for_an_init_in_progress(empty_db, cb, sql):
    """A second init queues behind one that holds the init lock, even past the
    normal per-command lock timeout (an upgrade of a big database takes a while)."""
    assert cb("init").code == 0
    holder = psycopg2.connect(empty_db.dsn, connect_timeout=10)
    try:
        cur = holder.cursor()
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('clambake.init'))")
        env = dict(os.environ, CLAMBAKE_DSN=empty_db.dsn, CLAMBAKE_STATEMENT_TIMEOUT="1s")
        proc = spawn(["init"], env)
        time.sleep(2.5)
        assert proc.poll() is None          # still waiting, not failed
        holder.commit()                     # the first init finishes
        code, out, err = finish(proc)
    finally:
        holder.close()
    assert code == 0, (code, out, err)
    assert "ready" in out


def test_original_schema_before_init_asks_for_init(empty_db, cb, sql, tmp_path):
    """Commands against the un-upgraded original schema exit 4 and point at init."""
    sql(ORIGINAL_SCHEMA)
    sql(ORIGINAL_ROWS)
    for args in (["register", "--project", "legacy"], ["status"], ["whoami", "--as", "old-a"]):
        res = cb(*args, cwd=tmp_path)
        assert res.code == 4, (args, res)
        assert res.err.startswith("clambake: error:") and "init" in res.err
        assert "Traceback" not in res.err
    # nothing was written by the failed commands
    assert sql("SELECT count(*) FROM clambake.instances") == [(2,)]


@pytest.mark.slow
def test_concurrent_inits_upgrade_the_original_schema_once(old_db, sql):
    db, before, _ = old_db
    env = dict(os.environ, CLAMBAKE_DSN=db.dsn)
    procs = [spawn(["init"], env) for _ in range(5)]
    for p in procs:
        code, out, err = finish(p)
        assert code == 0, (code, out, err)
    assert _rows(sql, "instances") == before["instances"]
    assert _rows(sql, "messages") == before["messages"]
    assert _rows(sql, "project_memory") == _norm(before["project_memory"])
    assert sql("SELECT value FROM clambake.meta WHERE key = 'schema_version'") == [(str(clambake.SCHEMA_VERSION),)]


def test_upgrade_keeps_extra_columns(empty_db, cb, sql):
    """Some original installs had project_memory.embedding vector(768); pgvector is not
    assumed here, so a real[] column stands in: init must leave it and its data alone."""
    sql(ORIGINAL_SCHEMA)
    sql(ORIGINAL_ROWS)
    sql("ALTER TABLE clambake.project_memory ADD COLUMN embedding real[]")
    sql("UPDATE clambake.project_memory SET embedding = ARRAY[0.5, 0.25]::real[] WHERE id = 1")
    assert cb("init").code == 0
    assert sql("SELECT embedding FROM clambake.project_memory WHERE id = 1") == [([0.5, 0.25],)]
    res = cb("remember", "--project", "legacy", "--type", "fix", "--title", "after", "--content", "c")
    assert res.code == 0, res
