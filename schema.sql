-- Clambake schema.  Applied by `python clambake.py init` in one transaction
-- under an advisory lock.  Idempotent: safe to run again, safe to run
-- concurrently.  It creates and changes objects in schema `clambake` only.
--
-- Layout:
--   1. prelude: the schema, optional extensions (pg_trgm, pgvector), helpers
--   2. tables in their CURRENT shape: every column, named constraints
--   3. upgrades from older schemas (the original clambake's first release and
--      its later versions, and clambake's own schema versions 1-3): the only
--      section that knows old shapes; on a fresh install it changes nothing
--   4. indexes, functions and triggers on the current shape; schema version
--
-- Optional extensions are tried and skipped when unavailable or not
-- permitted: without pg_trgm typo correction falls back to substring
-- matching; without pgvector there is no embedding column and recall is
-- lexical only.

---------------------------------------------------------------------------
-- 1. prelude
---------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS clambake;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION pg_trgm SCHEMA clambake;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'clambake: pg_trgm unavailable (%), fuzzy recall falls back to substring matching', SQLERRM;
        END;
    END IF;
    -- pgvector: where the server has it (the original schema needed it for its embedding column)
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        BEGIN
            CREATE EXTENSION vector SCHEMA clambake;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'clambake: pgvector unavailable (%), recall stays lexical', SQLERRM;
        END;
    END IF;
END
$$;

-- Adds a named constraint unless a constraint of that name exists.  A constraint that old rows
-- violate is added NOT VALID (new rows are checked; the old ones are kept as they are).
CREATE OR REPLACE FUNCTION clambake._add_constraint(tbl text, name text, def text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                   WHERE n.nspname = 'clambake' AND c.conname = name) THEN
        BEGIN
            EXECUTE format('ALTER TABLE clambake.%I ADD CONSTRAINT %I %s', tbl, name, def);
        EXCEPTION WHEN check_violation THEN
            RAISE NOTICE 'clambake: old rows of % break %, kept (constraint checks new rows only)', tbl, name;
            EXECUTE format('ALTER TABLE clambake.%I ADD CONSTRAINT %I %s NOT VALID', tbl, name, def);
        END;
    END IF;
END
$$;

-- Text of a tag array for the full-text column (array_to_string is only
-- STABLE in general; for text[] it is immutable).
CREATE OR REPLACE FUNCTION clambake.tags_text(tags text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT coalesce(array_to_string(tags, ' '), '') $$;

-- The order in which memory types matter to a session at work: gotchas and conventions first, then
-- issues and infrastructure, decisions, architecture and lessons, then the rest.  recall without
-- search words and the session-start briefing list memories in this order (clambake.py names it
-- MEMORY_TYPE_RANK); the *_useful_idx indexes below serve that order.
CREATE OR REPLACE FUNCTION clambake.memory_rank(memory_type text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE memory_type WHEN 'gotcha' THEN 0 WHEN 'convention' THEN 0 WHEN 'issue' THEN 1
                           WHEN 'infrastructure' THEN 1 WHEN 'decision' THEN 2 WHEN 'architecture' THEN 3
                           WHEN 'lesson' THEN 3 ELSE 4 END $$;

-- Project names are normalised everywhere (lower case, runs of white space to '-', trimmed), as
-- clambake.py does with every name it is given.
CREATE OR REPLACE FUNCTION clambake.norm_project(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT lower(regexp_replace(regexp_replace(name, '^\s+|\s+$', '', 'g'), '\s+', '-', 'g')) $$;

---------------------------------------------------------------------------
-- 2. tables, current shape
---------------------------------------------------------------------------

-- Key/value facts about this schema (schema_version, embedding_model, ...).
CREATE TABLE IF NOT EXISTS clambake.meta (
    key        text NOT NULL,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT meta_pkey PRIMARY KEY (key)
);
COMMENT ON TABLE clambake.meta IS 'Schema facts: schema_version, the embedding model and its dimension.';

CREATE TABLE IF NOT EXISTS clambake.instances (
    id             serial,
    instance_id    text NOT NULL,
    project        text,
    working_dir    text,
    current_task   text,
    model          text,
    status         text NOT NULL DEFAULT 'active',
    started_at     timestamptz NOT NULL DEFAULT now(),
    last_heartbeat timestamptz NOT NULL DEFAULT now(),
    session_key    text,
    host           text,
    pid            integer,
    hook_seen_at   timestamptz,
    CONSTRAINT instances_pkey PRIMARY KEY (id),
    CONSTRAINT instances_instance_id_key UNIQUE (instance_id),
    CONSTRAINT instances_status_check CHECK (status IN ('active', 'idle', 'busy', 'shutting_down')),
    CONSTRAINT instances_project_length CHECK (char_length(project) <= 100),
    CONSTRAINT instances_task_length CHECK (char_length(current_task) <= 500)
);
COMMENT ON TABLE clambake.instances IS
    'One row per registered session. Live while last_heartbeat is fresh; deregister deletes the row.';

CREATE TABLE IF NOT EXISTS clambake.messages (
    id            serial,
    from_instance text,
    from_project  text,
    to_target     text NOT NULL,
    message_type  text NOT NULL,
    subject       text,
    body          text,
    is_read       boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    target_kind   text NOT NULL,
    reply_to      integer,
    resource      text,
    resolved_at   timestamptz,
    CONSTRAINT messages_pkey PRIMARY KEY (id),
    CONSTRAINT messages_type_check CHECK (message_type IN ('info', 'warning', 'blocker', 'request', 'done')),
    CONSTRAINT messages_target_kind_check CHECK (target_kind IN ('all', 'project', 'instance')),
    CONSTRAINT messages_subject_length CHECK (char_length(subject) <= 200),
    CONSTRAINT messages_body_length CHECK (char_length(body) <= 65536)
);
COMMENT ON TABLE clambake.messages IS
    'Messages to @all, a project or an instance. Read state lives in message_receipts; '
    'is_read is kept only from the original schema (true = read before the upgrade).';

CREATE TABLE IF NOT EXISTS clambake.message_receipts (
    message_id  integer NOT NULL,
    instance_id text NOT NULL,
    read_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_receipts_pkey PRIMARY KEY (instance_id, message_id),
    CONSTRAINT message_receipts_message_fk FOREIGN KEY (message_id)
        REFERENCES clambake.messages (id) ON DELETE CASCADE,
    CONSTRAINT message_receipts_instance_fk FOREIGN KEY (instance_id)
        REFERENCES clambake.instances (instance_id) ON DELETE CASCADE ON UPDATE CASCADE
);
COMMENT ON TABLE clambake.message_receipts IS
    'One row per (recipient, message) once that recipient has been shown the message.';

CREATE TABLE IF NOT EXISTS clambake.claims (
    resource    text NOT NULL,
    instance_id text NOT NULL,
    message_id  integer,
    reason      text,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CONSTRAINT claims_pkey PRIMARY KEY (resource),
    CONSTRAINT claims_instance_fk FOREIGN KEY (instance_id)
        REFERENCES clambake.instances (instance_id) ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT claims_message_fk FOREIGN KEY (message_id) REFERENCES clambake.messages (id) ON DELETE SET NULL,
    CONSTRAINT claims_resource_length CHECK (char_length(resource) <= 100)
);
COMMENT ON TABLE clambake.claims IS
    'At most one holder per resource (primary key). Ends on done, expiry, deregister or stale holder.';

-- Memory: project_memory and global_memory share one id sequence.  search_tsv weighs title (A)
-- above tags (B) above content (C).  Provenance: source_file / source_heading say where an imported
-- entry came from (a path relative to the project's directory, or template:NAME, and the heading
-- path "Parent > Child"); one entry per source section, so a re-import updates instead of copying;
-- source_hash is a digest of the section as last imported (unchanged sections are skipped).
-- superseded_by: the merged entry that replaced this one (status superseded), same table, so same
-- scope.  embedding (pgvector only) is added in section 4's optional part: its type exists only
-- with the extension.
CREATE SEQUENCE IF NOT EXISTS clambake.memory_id_seq;
COMMENT ON SEQUENCE clambake.memory_id_seq IS 'One id space across project_memory and global_memory.';

CREATE TABLE IF NOT EXISTS clambake.project_memory (
    id            integer NOT NULL DEFAULT nextval('clambake.memory_id_seq'),
    project       text NOT NULL,
    memory_type   text NOT NULL,
    title         text NOT NULL,
    content       text,
    status        text NOT NULL DEFAULT 'active',
    tags          text[] NOT NULL DEFAULT '{}',
    related_files text[] NOT NULL DEFAULT '{}',
    created_by    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    search_tsv    tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english'::regconfig, clambake.tags_text(tags)), 'B') ||
        setweight(to_tsvector('english'::regconfig, coalesce(content, '')), 'C')) STORED,
    source_file   text,
    source_heading text,
    source_hash   text,
    superseded_by integer,
    CONSTRAINT project_memory_pkey PRIMARY KEY (id),
    CONSTRAINT project_memory_superseded_by_fk FOREIGN KEY (superseded_by) REFERENCES clambake.project_memory (id) ON DELETE SET NULL,
    CONSTRAINT project_memory_superseded_by_check CHECK (superseded_by IS NULL OR superseded_by <> id),
    CONSTRAINT project_memory_source_check CHECK ((source_file IS NULL) = (source_heading IS NULL)),
    CONSTRAINT project_memory_status_check CHECK (status IN ('active', 'resolved', 'deprecated', 'superseded')),
    CONSTRAINT project_memory_title_length CHECK (char_length(title) <= 200),
    CONSTRAINT project_memory_content_length CHECK (char_length(content) <= 65536),
    CONSTRAINT project_memory_project_length CHECK (char_length(project) <= 100)
);
COMMENT ON TABLE clambake.project_memory IS 'Knowledge about one project (gotchas, decisions, fixes...).';

CREATE TABLE IF NOT EXISTS clambake.global_memory (
    id            integer NOT NULL DEFAULT nextval('clambake.memory_id_seq'),
    memory_type   text NOT NULL,
    title         text NOT NULL,
    content       text,
    tags          text[] NOT NULL DEFAULT '{}',
    created_by    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'active',
    related_files text[] NOT NULL DEFAULT '{}',
    search_tsv    tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english'::regconfig, clambake.tags_text(tags)), 'B') ||
        setweight(to_tsvector('english'::regconfig, coalesce(content, '')), 'C')) STORED,
    source_file   text,
    source_heading text,
    source_hash   text,
    superseded_by integer,
    CONSTRAINT global_memory_pkey PRIMARY KEY (id),
    CONSTRAINT global_memory_superseded_by_fk FOREIGN KEY (superseded_by) REFERENCES clambake.global_memory (id) ON DELETE SET NULL,
    CONSTRAINT global_memory_superseded_by_check CHECK (superseded_by IS NULL OR superseded_by <> id),
    CONSTRAINT global_memory_source_check CHECK ((source_file IS NULL) = (source_heading IS NULL)),
    CONSTRAINT global_memory_status_check CHECK (status IN ('active', 'resolved', 'deprecated', 'superseded')),
    CONSTRAINT global_memory_title_length CHECK (char_length(title) <= 200),
    CONSTRAINT global_memory_content_length CHECK (char_length(content) <= 65536)
);
COMMENT ON TABLE clambake.global_memory IS 'Knowledge shared by every project (infrastructure, conventions...).';

-- Document frequency of every lexeme of search_tsv over both memory tables, kept current by
-- triggers (section 4): recall weighs rare words above common ones and corrects query words
-- against this vocabulary.  The row with word '' counts the memories.
CREATE TABLE IF NOT EXISTS clambake.memory_words (
    word text COLLATE "C" NOT NULL,       -- "C": the primary key also serves prefix searches
    ndoc integer NOT NULL,
    CONSTRAINT memory_words_pkey PRIMARY KEY (word)
);
COMMENT ON TABLE clambake.memory_words IS
    'Lexeme -> number of memories containing it (recall''s rare-word weighting and typo correction).';

CREATE TABLE IF NOT EXISTS clambake.session_log (
    id             serial,
    instance_id    text,
    project        text,
    action         text NOT NULL,
    summary        text,
    files_modified text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT session_log_pkey PRIMARY KEY (id),
    CONSTRAINT session_log_action_length CHECK (char_length(action) <= 32)
);
COMMENT ON TABLE clambake.session_log IS 'Append-only audit trail of what sessions did.';

---------------------------------------------------------------------------
-- 3. upgrades from older schemas
--
-- The original clambake's first release had plain `timestamp` columns, no
-- constraints and nullable everything; its later versions had CHECK lists
-- under default names, NOT NULL content, `embedding vector(768)` on both
-- memory tables with HNSW indexes, views over these tables and more tables
-- (tasks, agent_roles, ...), which are left alone.  clambake's own versions
-- 1-2 lacked provenance, superseded_by, memory_words and the length limits; 3 lacked the last two.
---------------------------------------------------------------------------

-- `timestamp without time zone` -> timestamptz (interpreted in the server's time zone, where now()
-- put them).  Views of the original over a column are dropped first (the type change needs it) and
-- recreated from their saved definitions afterwards.
CREATE OR REPLACE FUNCTION clambake._to_timestamptz(tbl text, col text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v record;
    saved text[] := '{}';
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = 'clambake' AND table_name = tbl
                 AND column_name = col AND data_type = 'timestamp without time zone') THEN
        FOR v IN SELECT DISTINCT c.oid::regclass::text AS name, pg_get_viewdef(c.oid) AS def
                   FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                   JOIN pg_class c ON c.oid = r.ev_class
                  WHERE d.refobjid = format('clambake.%I', tbl)::regclass AND c.relkind = 'v'
                    AND c.oid <> format('clambake.%I', tbl)::regclass LOOP
            saved := saved || format('CREATE VIEW %s AS %s', v.name, v.def);
            EXECUTE format('DROP VIEW %s', v.name);
        END LOOP;
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN %I TYPE timestamptz', tbl, col);
        FOR i IN 1 .. coalesce(array_length(saved, 1), 0) LOOP
            EXECUTE saved[i];
        END LOOP;
    END IF;
END
$$;

-- Makes a column match its section-2 shape: added when missing, default, NULLs filled, NOT NULL.
CREATE OR REPLACE FUNCTION clambake._upgrade_column(tbl text, col text, typ text, dflt text, fill text,
                                                    not_null boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE clambake.%I ADD COLUMN IF NOT EXISTS %I %s', tbl, col, typ);
    IF dflt IS NULL THEN
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN %I DROP DEFAULT', tbl, col);
    ELSE
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN %I SET DEFAULT %s', tbl, col, dflt);
    END IF;
    IF fill IS NOT NULL THEN
        EXECUTE format('UPDATE clambake.%I SET %I = %s WHERE %I IS NULL', tbl, col, fill, col);
    END IF;
    IF not_null THEN
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN %I SET NOT NULL', tbl, col);
    ELSE
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN %I DROP NOT NULL', tbl, col);
    END IF;
END
$$;

-- The original's CHECK lists under default names: replaced by the named constraints of section 2
-- (its session_log action list and memory type lists would refuse what clambake writes now).
ALTER TABLE clambake.messages DROP CONSTRAINT IF EXISTS messages_message_type_check;
ALTER TABLE clambake.project_memory DROP CONSTRAINT IF EXISTS project_memory_memory_type_check;
ALTER TABLE clambake.global_memory DROP CONSTRAINT IF EXISTS global_memory_memory_type_check;
ALTER TABLE clambake.session_log DROP CONSTRAINT IF EXISTS session_log_action_check;

-- instances
SELECT clambake._to_timestamptz('instances', 'started_at');
SELECT clambake._to_timestamptz('instances', 'last_heartbeat');
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS session_key text;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS host text;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS pid integer;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS hook_seen_at timestamptz;
-- Schema 5: Claude Code session lifecycle (PROTOCOL.md "Session lifecycle"): the Claude Code process that runs
-- the hooks, the session's transcript directory, when /clear handed the instance over, when the
-- session was last resumed, the session's off switch, and what the Stop hook last reminded of.
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS client_pid integer;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS transcript_dir text;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS handed_over_at timestamptz;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS resumed_at timestamptz;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS hooks_off_at timestamptz;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS stop_reminded text;
UPDATE clambake.instances SET started_at = coalesce(started_at, last_heartbeat, now()),
                              last_heartbeat = coalesce(last_heartbeat, started_at, now())
 WHERE started_at IS NULL OR last_heartbeat IS NULL;
UPDATE clambake.instances SET status = 'active'
 WHERE status IS NULL OR status NOT IN ('active', 'idle', 'busy', 'shutting_down');
SELECT clambake._upgrade_column('instances', 'status', 'text', '''active''', NULL, true);
SELECT clambake._upgrade_column('instances', 'started_at', 'timestamptz', 'now()', NULL, true);
SELECT clambake._upgrade_column('instances', 'last_heartbeat', 'timestamptz', 'now()', NULL, true);
SELECT clambake._upgrade_column('instances', 'project', 'text', NULL, NULL, false);
ALTER TABLE clambake.instances ALTER COLUMN instance_id SET NOT NULL;
SELECT clambake._add_constraint('instances', 'instances_status_check',
    $c$CHECK (status IN ('active', 'idle', 'busy', 'shutting_down'))$c$);
SELECT clambake._add_constraint('instances', 'instances_project_length', 'CHECK (char_length(project) <= 100)');
SELECT clambake._add_constraint('instances', 'instances_task_length', 'CHECK (char_length(current_task) <= 500)');

-- messages
SELECT clambake._to_timestamptz('messages', 'created_at');
SELECT clambake._to_timestamptz('messages', 'expires_at');
ALTER TABLE clambake.messages ADD COLUMN IF NOT EXISTS target_kind text;
ALTER TABLE clambake.messages ADD COLUMN IF NOT EXISTS reply_to integer;
ALTER TABLE clambake.messages ADD COLUMN IF NOT EXISTS resource text;
ALTER TABLE clambake.messages ADD COLUMN IF NOT EXISTS resolved_at timestamptz;
UPDATE clambake.messages SET target_kind = CASE
        WHEN to_target IS NULL OR to_target IN ('@all', 'all', '*') THEN 'all'
        WHEN EXISTS (SELECT 1 FROM clambake.instances i WHERE i.instance_id = messages.to_target) THEN 'instance'
        ELSE 'project' END
 WHERE target_kind IS NULL;
UPDATE clambake.messages SET to_target = '@all' WHERE target_kind = 'all' AND to_target IS DISTINCT FROM '@all';
UPDATE clambake.messages SET created_at = now() WHERE created_at IS NULL;
UPDATE clambake.messages SET expires_at = created_at + interval '24 hours' WHERE expires_at IS NULL;
UPDATE clambake.messages SET message_type = 'info'
 WHERE message_type IS NULL OR message_type NOT IN ('info', 'warning', 'blocker', 'request', 'done');
SELECT clambake._upgrade_column('messages', 'is_read', 'boolean', 'false', 'false', true);
SELECT clambake._upgrade_column('messages', 'target_kind', 'text', NULL, NULL, true);
SELECT clambake._upgrade_column('messages', 'created_at', 'timestamptz', 'now()', NULL, true);
SELECT clambake._upgrade_column('messages', 'expires_at', 'timestamptz', NULL, NULL, true);
SELECT clambake._upgrade_column('messages', 'message_type', 'text', NULL, NULL, true);
SELECT clambake._upgrade_column('messages', 'to_target', 'text', NULL, NULL, true);
SELECT clambake._upgrade_column('messages', 'from_instance', 'text', NULL, NULL, false);
SELECT clambake._upgrade_column('messages', 'subject', 'text', NULL, NULL, false);
SELECT clambake._add_constraint('messages', 'messages_type_check',
    $c$CHECK (message_type IN ('info', 'warning', 'blocker', 'request', 'done'))$c$);
SELECT clambake._add_constraint('messages', 'messages_target_kind_check',
    $c$CHECK (target_kind IN ('all', 'project', 'instance'))$c$);
SELECT clambake._add_constraint('messages', 'messages_subject_length', 'CHECK (char_length(subject) <= 200)');
SELECT clambake._add_constraint('messages', 'messages_body_length', 'CHECK (char_length(body) <= 65536)');

-- claims, message_receipts (clambake's own; FKs named from the start)
SELECT clambake._add_constraint('claims', 'claims_resource_length', 'CHECK (char_length(resource) <= 100)');

-- memory tables
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['project_memory', 'global_memory'] LOOP
        PERFORM clambake._to_timestamptz(t, 'created_at');
        PERFORM clambake._to_timestamptz(t, 'updated_at');
        EXECUTE format('UPDATE clambake.%I SET created_at = coalesce(created_at, updated_at, now()), '
                       'updated_at = coalesce(updated_at, created_at, now()) '
                       'WHERE created_at IS NULL OR updated_at IS NULL', t);
        PERFORM clambake._upgrade_column(t, 'status', 'text', '''active''', '''active''', true);
        EXECUTE format('UPDATE clambake.%I SET status = %L WHERE status NOT IN '
                       '(''active'', ''resolved'', ''deprecated'', ''superseded'')', t, 'active');
        PERFORM clambake._upgrade_column(t, 'tags', 'text[]', '''{}''', '''{}''', true);
        PERFORM clambake._upgrade_column(t, 'related_files', 'text[]', '''{}''', '''{}''', true);
        PERFORM clambake._upgrade_column(t, 'created_at', 'timestamptz', 'now()', NULL, true);
        PERFORM clambake._upgrade_column(t, 'updated_at', 'timestamptz', 'now()', NULL, true);
        PERFORM clambake._upgrade_column(t, 'content', 'text', NULL, NULL, false);
        PERFORM clambake._upgrade_column(t, 'created_by', 'text', NULL, NULL, false);
        EXECUTE format('UPDATE clambake.%I SET memory_type = %L WHERE memory_type IS NULL', t,
                       CASE t WHEN 'global_memory' THEN 'lesson' ELSE 'update' END);
        EXECUTE format('UPDATE clambake.%I SET title = %L WHERE title IS NULL', t, '(untitled)');
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN memory_type SET NOT NULL', t);
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN title SET NOT NULL', t);
        -- new rows draw from the shared sequence (old ids are kept as they are)
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN id SET DEFAULT nextval(%L)', t, 'clambake.memory_id_seq');
        IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                       WHERE table_schema = 'clambake' AND table_name = t AND column_name = 'search_tsv') THEN
            EXECUTE format($f$ALTER TABLE clambake.%I ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') ||
                setweight(to_tsvector('english'::regconfig, clambake.tags_text(tags)), 'B') ||
                setweight(to_tsvector('english'::regconfig, coalesce(content, '')), 'C')) STORED$f$, t);
        END IF;
        -- clambake 3 (import, export, consolidate): provenance and superseded_by
        EXECUTE format('ALTER TABLE clambake.%I ADD COLUMN IF NOT EXISTS source_file text', t);
        EXECUTE format('ALTER TABLE clambake.%I ADD COLUMN IF NOT EXISTS source_heading text', t);
        EXECUTE format('ALTER TABLE clambake.%I ADD COLUMN IF NOT EXISTS source_hash text', t);
        EXECUTE format('ALTER TABLE clambake.%I ADD COLUMN IF NOT EXISTS superseded_by integer', t);
        PERFORM clambake._add_constraint(t, t || '_superseded_by_fk',
            format('FOREIGN KEY (superseded_by) REFERENCES clambake.%I (id) ON DELETE SET NULL', t));
        PERFORM clambake._add_constraint(t, t || '_superseded_by_check',
            'CHECK (superseded_by IS NULL OR superseded_by <> id)');
        PERFORM clambake._add_constraint(t, t || '_source_check',
            'CHECK ((source_file IS NULL) = (source_heading IS NULL))');
        PERFORM clambake._add_constraint(t, t || '_status_check',
            $c$CHECK (status IN ('active', 'resolved', 'deprecated', 'superseded'))$c$);
        PERFORM clambake._add_constraint(t, t || '_title_length', 'CHECK (char_length(title) <= 200)');
        PERFORM clambake._add_constraint(t, t || '_content_length', 'CHECK (char_length(content) <= 65536)');
    END LOOP;
    -- the first release allowed a project memory without a project
    UPDATE clambake.project_memory SET project = 'unknown' WHERE project IS NULL;
    ALTER TABLE clambake.project_memory ALTER COLUMN project SET NOT NULL;
    PERFORM clambake._add_constraint('project_memory', 'project_memory_project_length',
                                     'CHECK (char_length(project) <= 100)');
    -- the original's HNSW indexes on embedding, kept under the names section 4 uses
    IF to_regclass('clambake.idx_project_memory_embedding') IS NOT NULL
       AND to_regclass('clambake.project_memory_embedding_idx') IS NULL THEN
        ALTER INDEX clambake.idx_project_memory_embedding RENAME TO project_memory_embedding_idx;
    END IF;
    IF to_regclass('clambake.idx_global_memory_embedding') IS NOT NULL
       AND to_regclass('clambake.global_memory_embedding_idx') IS NULL THEN
        ALTER INDEX clambake.idx_global_memory_embedding RENAME TO global_memory_embedding_idx;
    END IF;
END
$$;

-- The shared sequence starts above every id already used in either table.
SELECT setval('clambake.memory_id_seq', greatest(m.top, 1), m.top > 0)
  FROM (SELECT greatest(
          (SELECT coalesce(max(id), 0) FROM clambake.project_memory),
          (SELECT coalesce(max(id), 0) FROM clambake.global_memory),
          (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM clambake.memory_id_seq)) AS top) m;
-- The original per-table sequences are no longer used; keep them (harmless)
-- so that nothing outside clambake that referenced them breaks.

-- session_log
SELECT clambake._to_timestamptz('session_log', 'created_at');
UPDATE clambake.session_log SET created_at = now() WHERE created_at IS NULL;
UPDATE clambake.session_log SET action = 'note' WHERE action IS NULL;
SELECT clambake._upgrade_column('session_log', 'files_modified', 'text[]', '''{}''', '''{}''', true);
SELECT clambake._upgrade_column('session_log', 'created_at', 'timestamptz', 'now()', NULL, true);
SELECT clambake._upgrade_column('session_log', 'action', 'text', NULL, NULL, true);
SELECT clambake._upgrade_column('session_log', 'instance_id', 'text', NULL, NULL, false);
SELECT clambake._upgrade_column('session_log', 'project', 'text', NULL, NULL, false);
SELECT clambake._upgrade_column('session_log', 'summary', 'text', NULL, NULL, false);
SELECT clambake._add_constraint('session_log', 'session_log_action_length', 'CHECK (char_length(action) <= 32)');

-- The original tool stored project names as typed ("Doc DB v2"); normalise those rows so that old
-- memories, log rows and messages are found under the new name.
UPDATE clambake.instances SET project = clambake.norm_project(project)
 WHERE project IS DISTINCT FROM clambake.norm_project(project);
UPDATE clambake.project_memory SET project = clambake.norm_project(project)
 WHERE project IS DISTINCT FROM clambake.norm_project(project);
UPDATE clambake.session_log SET project = clambake.norm_project(project)
 WHERE project IS DISTINCT FROM clambake.norm_project(project);
UPDATE clambake.messages SET from_project = clambake.norm_project(from_project)
 WHERE from_project IS DISTINCT FROM clambake.norm_project(from_project);
UPDATE clambake.messages SET to_target = clambake.norm_project(to_target)
 WHERE target_kind = 'project' AND to_target IS DISTINCT FROM clambake.norm_project(to_target);

-- indexes replaced by those of section 4: clambake 1-2's, and the original's (its tasks, agent_roles
-- and other tables, their indexes and its views are left as they are)
DROP INDEX IF EXISTS clambake.messages_target_idx;
DROP INDEX IF EXISTS clambake.idx_instances_heartbeat;
DROP INDEX IF EXISTS clambake.idx_messages_to_unread;
DROP INDEX IF EXISTS clambake.idx_messages_created;
DROP INDEX IF EXISTS clambake.idx_project_memory_project_type;
DROP INDEX IF EXISTS clambake.idx_project_memory_status;
DROP INDEX IF EXISTS clambake.idx_project_memory_tags;
DROP INDEX IF EXISTS clambake.idx_global_memory_type;
DROP INDEX IF EXISTS clambake.idx_session_log_project;
DROP INDEX IF EXISTS clambake.idx_session_log_instance;

---------------------------------------------------------------------------
-- 4. indexes, functions, triggers
---------------------------------------------------------------------------

-- Optional part of the current shape (pgvector): `embedding vector(768)` on both memory tables
-- (768 dimensions: nomic-embed-text, the original's model; `clambake embed --reindex` changes it to
-- another model's dimension) with an HNSW cosine index.  The original's column is adopted in place.
DO $$
DECLARE
    t text;
    vec text := (SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                  WHERE e.extname = 'vector');
BEGIN
    IF vec IS NULL THEN
        RETURN;
    END IF;
    -- an `embedding` column of another type (an install that stored vectors without pgvector) is left
    -- alone, with its data: semantic recall stays off there
    IF EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type y ON y.oid = a.atttypid
                WHERE a.attrelid IN ('clambake.project_memory'::regclass, 'clambake.global_memory'::regclass)
                  AND a.attname = 'embedding' AND NOT a.attisdropped AND y.typname <> 'vector') THEN
        RAISE NOTICE 'clambake: memory column "embedding" is not a pgvector vector; semantic recall stays off';
        RETURN;
    END IF;
    FOREACH t IN ARRAY ARRAY['project_memory', 'global_memory'] LOOP
        EXECUTE format('ALTER TABLE clambake.%I ADD COLUMN IF NOT EXISTS embedding %s.vector(768)', t, vec);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I USING hnsw (embedding %s.vector_cosine_ops) '
                       'WITH (m = 16, ef_construction = 64)', t || '_embedding_idx', t, vec);
    END LOOP;
    INSERT INTO clambake.meta (key, value) VALUES ('embedding_dims',
        (SELECT a.atttypmod::text FROM pg_attribute a
          WHERE a.attrelid = 'clambake.project_memory'::regclass AND a.attname = 'embedding'))
    ON CONFLICT (key) DO NOTHING;
END
$$;

CREATE INDEX IF NOT EXISTS instances_session_key_idx ON clambake.instances (session_key)
    WHERE session_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS instances_host_dir_idx ON clambake.instances (host, working_dir);
CREATE INDEX IF NOT EXISTS instances_heartbeat_idx ON clambake.instances (last_heartbeat DESC);
CREATE INDEX IF NOT EXISTS instances_project_idx ON clambake.instances (project);

-- Delivery: candidates for one recipient are found per target.  expires_at third: only unexpired
-- candidates are read (most rows of a busy target are expired until cleanup runs); created_at last
-- for the @all registration cut.
CREATE INDEX IF NOT EXISTS messages_delivery_idx ON clambake.messages (target_kind, to_target, expires_at, created_at);
CREATE INDEX IF NOT EXISTS messages_expires_idx ON clambake.messages (expires_at);
CREATE INDEX IF NOT EXISTS messages_open_blockers_idx ON clambake.messages (from_instance)
    WHERE message_type = 'blocker' AND resolved_at IS NULL;
-- "open blockers not yet expired" (status, briefing, prompt hook): without it the planner, which cannot
-- see that nearly every blocker gets resolved, ANDs in the expires_at index (50k rows at 1M messages).
CREATE INDEX IF NOT EXISTS messages_open_blockers_exp_idx ON clambake.messages (expires_at)
    WHERE message_type = 'blocker' AND resolved_at IS NULL;
CREATE INDEX IF NOT EXISTS messages_reply_to_idx ON clambake.messages (reply_to) WHERE reply_to IS NOT NULL;
CREATE INDEX IF NOT EXISTS message_receipts_message_idx ON clambake.message_receipts (message_id);
CREATE INDEX IF NOT EXISTS claims_instance_idx ON clambake.claims (instance_id);

DO $$
DECLARE
    t text;
    -- schema holding pg_trgm's operator class, when pg_trgm is installed
    trgm text := (SELECT quote_ident(n.nspname) FROM pg_opclass o JOIN pg_namespace n ON n.oid = o.opcnamespace
                   WHERE o.opcname = 'gin_trgm_ops' LIMIT 1);
BEGIN
    FOREACH t IN ARRAY ARRAY['project_memory', 'global_memory'] LOOP
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I USING gin (search_tsv)', t || '_search_idx', t);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I USING gin (tags)', t || '_tags_idx', t);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I (lower(title))', t || '_title_idx', t);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I (updated_at DESC)', t || '_updated_idx', t);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I (superseded_by) WHERE superseded_by IS NOT NULL',
                       t || '_superseded_by_idx', t);
        -- trigram indexes for the typo-tolerant fallback, when pg_trgm is installed
        IF trgm IS NOT NULL THEN
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I USING gin (title %s.gin_trgm_ops)',
                           t || '_title_trgm_idx', t, trgm);
            -- recall's last fallback (substring in title, content or tags) uses these instead of
            -- reading every entry in scope (40 ms -> under 1 ms at 100k memories)
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I USING gin (content %s.gin_trgm_ops)',
                           t || '_content_trgm_idx', t, trgm);
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I '
                           'USING gin (clambake.tags_text(tags) %s.gin_trgm_ops)',
                           t || '_tags_trgm_idx', t, trgm);
        END IF;
    END LOOP;
    IF trgm IS NOT NULL THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS memory_words_trgm_idx ON clambake.memory_words '
                       'USING gist (word %s.gist_trgm_ops)', trgm);
    END IF;
END
$$;
CREATE INDEX IF NOT EXISTS project_memory_project_idx ON clambake.project_memory (project, updated_at DESC);
-- the most useful active memories first (the briefing's key memories, recall without search words): at
-- 100,000 memories the briefing read every active entry of the project and of the global scope to
-- pick 15 and 6 (40 ms); in this order it reads those alone
CREATE INDEX IF NOT EXISTS project_memory_useful_idx
    ON clambake.project_memory (project, clambake.memory_rank(memory_type), updated_at DESC) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS global_memory_useful_idx
    ON clambake.global_memory (clambake.memory_rank(memory_type), updated_at DESC) WHERE status = 'active';
-- one entry per imported source section
CREATE UNIQUE INDEX IF NOT EXISTS project_memory_source_idx
    ON clambake.project_memory (project, source_file, source_heading) WHERE source_file IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS global_memory_source_idx
    ON clambake.global_memory (source_file, source_heading) WHERE source_file IS NOT NULL;

-- Fuzzy matching used by recall's fallback and remember's near-duplicate
-- note: trigram similarity when pg_trgm is installed, plain substring
-- matching otherwise.  Simple SQL functions, so the planner inlines them and
-- the trigram index on title is used.
DO $$
DECLARE
    nsp text := (SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                  WHERE e.extname = 'pg_trgm');
BEGIN
    IF nsp IS NOT NULL THEN
        EXECUTE format('CREATE OR REPLACE FUNCTION clambake.fuzzy_sim(a text, b text) RETURNS real '
                       'LANGUAGE sql STABLE PARALLEL SAFE AS $f$ SELECT %s.similarity(a, b) $f$', nsp);
        EXECUTE format('CREATE OR REPLACE FUNCTION clambake.fuzzy_match(a text, b text) RETURNS boolean '
                       'LANGUAGE sql STABLE PARALLEL SAFE AS $f$ SELECT a OPERATOR(%s.%%) b $f$', nsp);
        EXECUTE format('CREATE OR REPLACE FUNCTION clambake.fuzzy_word_sim(q text, t text) RETURNS real '
                       'LANGUAGE sql STABLE PARALLEL SAFE AS $f$ SELECT %s.word_similarity(q, t) $f$', nsp);
        EXECUTE format('CREATE OR REPLACE FUNCTION clambake.fuzzy_word_match(q text, t text) RETURNS boolean '
                       'LANGUAGE sql STABLE PARALLEL SAFE AS $f$ SELECT t OPERATOR(%s.%%>) q $f$', nsp);
        -- vocabulary words nearest to an unknown query word (recall's typo correction), by the
        -- trigram index on memory_words
        EXECUTE format($f$CREATE OR REPLACE FUNCTION clambake.similar_words(w text, lim integer)
            RETURNS TABLE (word text, ndoc integer, sim real) LANGUAGE sql STABLE PARALLEL SAFE AS $b$
            SELECT m.word, m.ndoc, %1$s.similarity(m.word, w) FROM clambake.memory_words m
             WHERE m.ndoc > 0 AND m.word <> ''
             ORDER BY m.word OPERATOR(%1$s.<->) w LIMIT lim $b$ $f$, nsp);
    ELSE
        CREATE OR REPLACE FUNCTION clambake.fuzzy_sim(a text, b text) RETURNS real
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
            $f$ SELECT CASE WHEN strpos(lower(a), lower(b)) > 0 OR strpos(lower(b), lower(a)) > 0
                            THEN 0.5::real ELSE 0::real END $f$;
        CREATE OR REPLACE FUNCTION clambake.fuzzy_match(a text, b text) RETURNS boolean
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT strpos(lower(a), lower(b)) > 0 $f$;
        CREATE OR REPLACE FUNCTION clambake.fuzzy_word_sim(q text, t text) RETURNS real
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
            $f$ SELECT CASE WHEN strpos(lower(t), lower(q)) > 0 THEN 0.5::real ELSE 0::real END $f$;
        CREATE OR REPLACE FUNCTION clambake.fuzzy_word_match(q text, t text) RETURNS boolean
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT strpos(lower(t), lower(q)) > 0 $f$;
        -- without pg_trgm: no typo correction
        CREATE OR REPLACE FUNCTION clambake.similar_words(w text, lim integer)
            RETURNS TABLE (word text, ndoc integer, sim real) LANGUAGE sql STABLE PARALLEL SAFE AS
            $f$ SELECT NULL::text, NULL::integer, NULL::real WHERE false $f$;
    END IF;
END
$$;

-- memory_words upkeep: one statement-level trigger per table and operation adds the lexemes of the
-- new rows and subtracts those of the old ones.  Words are upserted in sorted order, '' (the count
-- of memories) first, so concurrent writers queue on that row instead of deadlocking.
CREATE OR REPLACE FUNCTION clambake.memory_words_track() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO clambake.memory_words AS w (word, ndoc)
        SELECT word, count(*) FROM (SELECT '' AS word FROM new_rows
                                    UNION ALL SELECT unnest(tsvector_to_array(search_tsv)) FROM new_rows) s
         GROUP BY word ORDER BY word
        ON CONFLICT (word) DO UPDATE SET ndoc = w.ndoc + excluded.ndoc;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO clambake.memory_words AS w (word, ndoc)
        SELECT word, -count(*) FROM (SELECT '' AS word FROM old_rows
                                     UNION ALL SELECT unnest(tsvector_to_array(search_tsv)) FROM old_rows) s
         GROUP BY word ORDER BY word
        ON CONFLICT (word) DO UPDATE SET ndoc = w.ndoc + excluded.ndoc;
    ELSE
        -- only rows whose text changed count (status changes and embedding updates cost one join)
        INSERT INTO clambake.memory_words AS w (word, ndoc)
        SELECT word, sum(d)::integer FROM (
            SELECT unnest(tsvector_to_array(n.search_tsv)) AS word, 1 AS d
              FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE o.search_tsv IS DISTINCT FROM n.search_tsv
            UNION ALL
            SELECT unnest(tsvector_to_array(o.search_tsv)), -1
              FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE o.search_tsv IS DISTINCT FROM n.search_tsv) s
         GROUP BY word HAVING sum(d) <> 0 ORDER BY word
        ON CONFLICT (word) DO UPDATE SET ndoc = w.ndoc + excluded.ndoc;
    END IF;
    RETURN NULL;
END
$$;

-- Recounts memory_words from scratch (upgrades; also safe to call by hand).
CREATE OR REPLACE FUNCTION clambake.memory_words_rebuild() RETURNS void
LANGUAGE sql AS $$
    DELETE FROM clambake.memory_words;
    INSERT INTO clambake.memory_words (word, ndoc)
    SELECT word, count(*) FROM (
        SELECT '' AS word FROM clambake.project_memory
        UNION ALL SELECT '' FROM clambake.global_memory
        UNION ALL SELECT unnest(tsvector_to_array(search_tsv)) FROM clambake.project_memory
        UNION ALL SELECT unnest(tsvector_to_array(search_tsv)) FROM clambake.global_memory) s
    GROUP BY word;
$$;

-- A memory whose text changes loses its embedding (it describes the old text) and is queued for
-- `clambake embed`; remember/update-memory embed it again right away when the provider answers.
CREATE OR REPLACE FUNCTION clambake.memory_unembed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.title, NEW.content, NEW.tags) IS DISTINCT FROM (OLD.title, OLD.content, OLD.tags)
       AND NEW.embedding::text IS NOT DISTINCT FROM OLD.embedding::text THEN   -- (vector's = is not on the path)
        NEW.embedding := NULL;
    END IF;
    RETURN NEW;
END
$$;

DO $$
DECLARE
    t text;
    op text;
BEGIN
    FOREACH t IN ARRAY ARRAY['project_memory', 'global_memory'] LOOP
        FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON clambake.%I', t || '_words_' || op, t);
            EXECUTE format('CREATE TRIGGER %I AFTER %s ON clambake.%I REFERENCING %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION clambake.memory_words_track()',
                           t || '_words_' || op, op, t,
                           CASE op WHEN 'insert' THEN 'NEW TABLE AS new_rows'
                                   WHEN 'delete' THEN 'OLD TABLE AS old_rows'
                                   ELSE 'OLD TABLE AS old_rows NEW TABLE AS new_rows' END);
        END LOOP;
        IF EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type y ON y.oid = a.atttypid
                    WHERE a.attrelid = format('clambake.%I', t)::regclass AND a.attname = 'embedding'
                      AND NOT a.attisdropped AND y.typname = 'vector') THEN
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON clambake.%I', t || '_unembed', t);
            EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OF title, content, tags ON clambake.%I '
                           'FOR EACH ROW EXECUTE FUNCTION clambake.memory_unembed()', t || '_unembed', t);
        END IF;
    END LOOP;
END
$$;
-- first install of memory_words over existing memories (upgrade from version 2 or the original)
SELECT clambake.memory_words_rebuild() WHERE NOT EXISTS (SELECT 1 FROM clambake.memory_words WHERE word = '');

CREATE INDEX IF NOT EXISTS session_log_created_idx ON clambake.session_log (created_at DESC);
CREATE INDEX IF NOT EXISTS session_log_project_idx ON clambake.session_log (project, created_at DESC);
CREATE INDEX IF NOT EXISTS session_log_instance_idx ON clambake.session_log (instance_id, created_at DESC);

---------------------------------------------------------------------------
-- Sessions that ended (SessionEnd): `claude --resume SESSION_ID` comes back as the same instance id
-- and project.  Kept 30 days (cleanup).
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS clambake.ended_sessions (
    session_key text PRIMARY KEY,
    instance_id text NOT NULL,
    project     text,
    ended_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ended_sessions_ended_idx ON clambake.ended_sessions (ended_at);

-- Projects whose hooks are switched off (`clambake off --project`), until `clambake on --project`.
CREATE TABLE IF NOT EXISTS clambake.hooks_off (
    project text PRIMARY KEY,
    set_by  text,
    set_at  timestamptz NOT NULL DEFAULT now()
);

-- notifications for `wait`: a small namespaced payload on channel clambake
CREATE OR REPLACE FUNCTION clambake.notify_message() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('clambake', 'm:' || NEW.id || ':' || NEW.target_kind || ':' || left(NEW.to_target, 200));
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION clambake.notify_claim_end() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('clambake', 'c:' || left(OLD.resource, 200));
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS messages_notify ON clambake.messages;
CREATE TRIGGER messages_notify AFTER INSERT ON clambake.messages
    FOR EACH ROW EXECUTE FUNCTION clambake.notify_message();
DROP TRIGGER IF EXISTS claims_notify_end ON clambake.claims;
CREATE TRIGGER claims_notify_end AFTER DELETE ON clambake.claims
    FOR EACH ROW EXECUTE FUNCTION clambake.notify_claim_end();

---------------------------------------------------------------------------
-- notifications for the dashboard: channel clambake_ui (so `wait` is not woken by every heartbeat), the
-- payload naming the table: i instances, c claims, r receipts, l session log, k memories, m messages
-- changed (new messages also arrive on channel clambake).  NOTIFY payloads are deduplicated per
-- transaction, so a batch costs one notification per table.
--
-- Tables written on every prompt and tool call (instances, claims, receipts) notify per ROW: a statement
-- that changes nothing (a hook's heartbeat that is not due) fires nothing, and an instance's update
-- notifies only when something the dashboard shows changed, not for a bare heartbeat (the dashboard
-- re-reads its instances every 30 s for those).  The first PL/pgSQL call in a connection costs about
-- 2 ms, more than the statement it follows.  Tables written in bulk (memories by import, messages and
-- the log by cleanup) notify once per statement.
---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION clambake.notify_ui() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('clambake_ui', TG_ARGV[0]);
    RETURN NULL;
END
$$;
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
            ('instances', 'instances_notify_ui', 'i', 'INSERT OR DELETE', 'ROW', ''),
            ('instances', 'instances_notify_ui_change', 'i', 'UPDATE', 'ROW',
             'WHEN ((OLD.project, OLD.status, OLD.current_task, OLD.working_dir, OLD.host, OLD.session_key) '
             'IS DISTINCT FROM (NEW.project, NEW.status, NEW.current_task, NEW.working_dir, NEW.host, '
             'NEW.session_key))'),
            ('claims', 'claims_notify_ui', 'c', 'INSERT OR UPDATE OR DELETE', 'ROW', ''),
            ('message_receipts', 'message_receipts_notify_ui', 'r', 'INSERT', 'ROW', ''),
            ('session_log', 'session_log_notify_ui', 'l', 'INSERT', 'STATEMENT', ''),
            ('project_memory', 'project_memory_notify_ui', 'k', 'INSERT OR UPDATE OR DELETE', 'STATEMENT', ''),
            ('global_memory', 'global_memory_notify_ui', 'k', 'INSERT OR UPDATE OR DELETE', 'STATEMENT', ''),
            ('messages', 'messages_notify_ui', 'm', 'UPDATE OR DELETE', 'STATEMENT', ''))
            v(tab, name, tag, ev, lvl, cond)
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON clambake.%I', t.name, t.tab);
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON clambake.%I FOR EACH %s %s '
                       'EXECUTE FUNCTION clambake.notify_ui(%L)', t.name, t.ev, t.tab, t.lvl, t.cond, t.tag);
    END LOOP;
END
$$;

INSERT INTO clambake.meta (key, value) VALUES ('schema_version', '6')
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()
WHERE clambake.meta.value::int < excluded.value::int;
