"""schema.sql is written current-shape-first with the upgrades in one section: a fresh install and an
upgraded original schema (its first release, and its latest version with the tasks and agent_roles
tables, views and the `embedding vector(768)` columns with HNSW indexes) end in the same shape."""

import pytest

from conftest import SQL, run_inprocess
from test_init import ORIGINAL_ROWS, ORIGINAL_SCHEMA

# The original clambake's latest schema (the shape its users have): NOT NULL columns, CHECK lists under
# default names, pgvector embedding columns with HNSW indexes, views, and tables clambake does not use.
LATEST_ORIGINAL = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA clambake;
CREATE TABLE clambake.instances (
    id SERIAL PRIMARY KEY, instance_id TEXT UNIQUE NOT NULL, project TEXT NOT NULL, working_dir TEXT,
    current_task TEXT, model TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'idle', 'busy', 'shutting_down')),
    started_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), last_heartbeat TIMESTAMPTZ NOT NULL DEFAULT NOW());
CREATE INDEX idx_instances_heartbeat ON clambake.instances (last_heartbeat);
CREATE TABLE clambake.messages (
    id SERIAL PRIMARY KEY, from_instance TEXT NOT NULL, from_project TEXT, to_target TEXT NOT NULL,
    message_type TEXT NOT NULL DEFAULT 'info'
        CHECK (message_type IN ('info', 'warning', 'blocker', 'request', 'done')),
    subject TEXT NOT NULL, body TEXT, is_read BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), expires_at TIMESTAMPTZ DEFAULT NOW() + INTERVAL '24 hours');
CREATE INDEX idx_messages_to_unread ON clambake.messages (to_target, is_read) WHERE NOT is_read;
CREATE INDEX idx_messages_created ON clambake.messages (created_at DESC);
CREATE TABLE clambake.project_memory (
    id SERIAL PRIMARY KEY, project TEXT NOT NULL,
    memory_type TEXT NOT NULL CHECK (memory_type IN ('architecture', 'feature', 'issue', 'fix', 'decision',
                                                     'pattern', 'gotcha', 'update')),
    title TEXT NOT NULL, content TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'resolved', 'deprecated', 'superseded')),
    tags TEXT[] DEFAULT '{}', related_files TEXT[] DEFAULT '{}', created_by TEXT DEFAULT 'human',
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    embedding vector(768));
CREATE INDEX idx_project_memory_project_type ON clambake.project_memory (project, memory_type);
CREATE INDEX idx_project_memory_status ON clambake.project_memory (status) WHERE status = 'active';
CREATE INDEX idx_project_memory_tags ON clambake.project_memory USING GIN (tags);
CREATE INDEX idx_project_memory_embedding ON clambake.project_memory
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE TABLE clambake.global_memory (
    id SERIAL PRIMARY KEY,
    memory_type TEXT NOT NULL CHECK (memory_type IN ('infrastructure', 'convention', 'tool', 'preference',
                                                     'credential', 'lesson')),
    title TEXT NOT NULL, content TEXT NOT NULL, tags TEXT[] DEFAULT '{}', created_by TEXT DEFAULT 'human',
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    embedding vector(768));
CREATE INDEX idx_global_memory_type ON clambake.global_memory (memory_type);
CREATE INDEX idx_global_memory_embedding ON clambake.global_memory
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE TABLE clambake.session_log (
    id SERIAL PRIMARY KEY, instance_id TEXT NOT NULL, project TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('started', 'task_started', 'task_completed', 'issue_found',
                                           'issue_resolved', 'docker_operation', 'file_modified', 'shutdown',
                                           'idle')),
    summary TEXT NOT NULL, files_modified TEXT[] DEFAULT '{}', created_at TIMESTAMPTZ NOT NULL DEFAULT NOW());
CREATE INDEX idx_session_log_project ON clambake.session_log (project, created_at DESC);
CREATE INDEX idx_session_log_instance ON clambake.session_log (instance_id, created_at DESC);
CREATE VIEW clambake.active_instances AS
    SELECT instance_id, project, working_dir, current_task, model, status, started_at, last_heartbeat
      FROM clambake.instances WHERE last_heartbeat > NOW() - INTERVAL '30 minutes';
CREATE VIEW clambake.unread_messages AS
    SELECT m.*, i.project AS sender_project FROM clambake.messages m
      LEFT JOIN clambake.instances i ON i.instance_id = m.from_instance WHERE NOT m.is_read;
CREATE VIEW clambake.recent_activity AS
    SELECT project, action, summary, files_modified, created_at, instance_id FROM clambake.session_log
     WHERE created_at > NOW() - INTERVAL '7 days';
CREATE TABLE clambake.agent_roles (
    id SERIAL PRIMARY KEY, name TEXT UNIQUE NOT NULL, description TEXT NOT NULL, system_prompt TEXT NOT NULL,
    capabilities TEXT[] DEFAULT '{}', created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), tool_allowlist TEXT[] DEFAULT '{}',
    tool_denylist TEXT[] DEFAULT '{}');
CREATE TABLE clambake.tasks (
    id SERIAL PRIMARY KEY, title TEXT NOT NULL, description TEXT, project TEXT NOT NULL,
    priority INT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'in_progress', 'done', 'failed')),
    assigned_role TEXT REFERENCES clambake.agent_roles(name), assigned_instance TEXT,
    file_scope TEXT[] DEFAULT '{}', depends_on INT[] DEFAULT '{}', result TEXT,
    created_by TEXT NOT NULL DEFAULT 'human', created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    claimed_at TIMESTAMPTZ, completed_at TIMESTAMPTZ, pipeline_run_id TEXT, pipeline_step INT);
CREATE INDEX idx_tasks_status ON clambake.tasks (status) WHERE status IN ('pending', 'claimed', 'in_progress');
CREATE VIEW clambake.available_tasks AS SELECT t.* FROM clambake.tasks t WHERE t.status = 'pending';
"""

LATEST_ROWS = """
INSERT INTO clambake.instances (instance_id, project, status) VALUES ('orig-1', 'Doc DB v2', 'busy');
INSERT INTO clambake.messages (from_instance, to_target, subject) VALUES ('orig-1', '@all', 'hello');
INSERT INTO clambake.project_memory (project, memory_type, title, content, tags)
VALUES ('Doc DB v2', 'gotcha', 'Original gotcha', 'from the original tool', ARRAY['docker']);
INSERT INTO clambake.global_memory (memory_type, title, content) VALUES ('tool', 'Original tool', 'rg -uu');
INSERT INTO clambake.session_log (instance_id, project, action, summary)
VALUES ('orig-1', 'Doc DB v2', 'task_started', 'porting');
INSERT INTO clambake.agent_roles (name, description, system_prompt) VALUES ('coder', 'writes code', 'You code.');
INSERT INTO clambake.tasks (title, project, assigned_role) VALUES ('Port the loader', 'doc-db-v2', 'coder');
"""

SHAPE_QUERIES = {
    "columns": """
        SELECT c.table_name, c.column_name, format_type(a.atttypid, a.atttypmod), c.is_nullable,
               c.column_default, c.is_generated, c.generation_expression
          FROM information_schema.columns c
          JOIN pg_attribute a ON a.attrelid = ('clambake.' || quote_ident(c.table_name))::regclass
                             AND a.attname = c.column_name
         WHERE c.table_schema = 'clambake' AND c.table_name = ANY(%(tables)s)""",
    "constraints": """
        SELECT t.relname, c.conname, c.contype, pg_get_constraintdef(c.oid), c.convalidated
          FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
         WHERE t.relnamespace = 'clambake'::regnamespace AND t.relname = ANY(%(tables)s)""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
         WHERE schemaname = 'clambake' AND tablename = ANY(%(tables)s)""",
    "triggers": """
        SELECT t.relname, g.tgname, pg_get_triggerdef(g.oid) FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
         WHERE t.relnamespace = 'clambake'::regnamespace AND t.relname = ANY(%(tables)s) AND NOT g.tgisinternal""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc) FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'clambake' AND p.proname NOT IN (SELECT e.proname FROM pg_proc e JOIN pg_depend d
               ON d.objid = e.oid AND d.deptype = 'e')""",
    "meta": "SELECT key, value FROM clambake.meta WHERE key <> 'embedding_model'",
}


def shape(dsn, tables=None):
    s = SQL(dsn)
    try:
        # render vector types and opclasses alike whichever schema holds the extension
        s("SET search_path = clambake, public")
        if tables is None:
            tables = [r[0] for r in s("SELECT tablename FROM pg_tables WHERE schemaname = 'clambake'")]
        return {k: sorted(s(v, {"tables": tables} if "%(" in v else None)) for k, v in SHAPE_QUERIES.items()}, tables
    finally:
        s.close()


def init(dsn):
    res = run_inprocess(["init"], env={"CLAMBAKE_DSN": dsn})
    assert res.code == 0, res
    return res


@pytest.fixture
def databases(vector_pg):
    made = []

    def make(*setup):
        name = vector_pg.create_database("template0")
        made.append(name)
        dsn = vector_pg.dsn_for(name)
        s = SQL(dsn)
        try:
            for statement in setup:
                s(statement)
        finally:
            s.close()
        return dsn

    yield make
    for name in made:
        vector_pg.drop_database(name)


def assert_same(fresh, upgraded, what):
    for key in fresh:
        missing = sorted(set(fresh[key]) - set(upgraded[key]))
        extra = sorted(set(upgraded[key]) - set(fresh[key]))
        assert not missing and not extra, f"{what}: {key} differ\n  only fresh: {missing}\n  only upgraded: {extra}"


def test_fresh_and_upgraded_originals_end_in_the_same_shape(databases):
    fresh = databases()
    init(fresh)
    want, tables = shape(fresh)
    assert {"instances", "messages", "message_receipts", "claims", "project_memory", "global_memory",
            "memory_words", "session_log", "meta"} == set(tables)
    assert ("project_memory", "embedding", "vector(768)", "YES", None, "NEVER", None) in want["columns"]
    # idempotent: a second init changes nothing
    init(fresh)
    assert shape(fresh, tables)[0] == want

    first = databases(ORIGINAL_SCHEMA, ORIGINAL_ROWS)
    init(first)
    assert_same(want, shape(first, tables)[0], "first release")

    latest = databases(LATEST_ORIGINAL, LATEST_ROWS)
    init(latest)
    got, _ = shape(latest, tables)
    assert_same(want, got, "latest original")
    init(latest)
    assert shape(latest, tables)[0] == got
    # its other tables, their rows and its views are still there; the rows were upgraded in place
    s = SQL(latest)
    try:
        assert s("SELECT t.title, r.name FROM clambake.tasks t JOIN clambake.agent_roles r "
                 "ON r.name = t.assigned_role") == [("Port the loader", "coder")]
        assert s("SELECT count(*) FROM clambake.active_instances") == [(1,)]
        assert s("SELECT count(*) FROM clambake.available_tasks") == [(1,)]
        assert s("SELECT project, embedding IS NULL FROM clambake.project_memory") == [("doc-db-v2", True)]
        assert s("SELECT ndoc FROM clambake.memory_words WHERE word = ''") == [(2,)]
    finally:
        s.close()
    # and the upgraded original works: the action its CHECK list refused, an embedding-less remember
    env = {"CLAMBAKE_DSN": latest}
    res = run_inprocess(["log", "--action", "note", "--summary", "after the upgrade", "--project", "doc-db-v2"],
                        env=env)
    assert res.code == 0, res
    res = run_inprocess(["recall", "--search", "original gotcha", "--json"], env=env)
    assert res.code == 0 and "Original gotcha" in res.out, res
