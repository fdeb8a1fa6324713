-- Clambake schema.  Applied by `python clambake.py init` in one transaction
-- under an advisory lock.  Idempotent: safe to run again, safe to run
-- concurrently, and it upgrades the original (unversioned) clambake tables in
-- place without losing rows.  It creates and changes objects in schema
-- `clambake` only.  Optional extensions (pg_trgm) are tried and skipped when
-- unavailable or not permitted.

CREATE SCHEMA IF NOT EXISTS clambake;

-- Key/value facts about this schema (schema_version).
CREATE TABLE IF NOT EXISTS clambake.meta (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE clambake.meta IS 'Schema facts: schema_version and friends.';

-- pg_trgm gives fuzzy (typo-tolerant) recall.  Optional: init succeeds
-- without it and recall falls back to substring matching.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION pg_trgm SCHEMA clambake;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'clambake: pg_trgm unavailable (%), fuzzy recall falls back to substring matching', SQLERRM;
        END;
    END IF;
END
$$;

-- Timestamps of the original schema were `timestamp without time zone`;
-- convert them (interpreted in the server's time zone, where NOW() put them).
CREATE OR REPLACE FUNCTION clambake._to_timestamptz(tbl text, col text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = 'clambake' AND table_name = tbl
                 AND column_name = col AND data_type = 'timestamp without time zone') THEN
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN %I TYPE timestamptz', tbl, col);
    END IF;
END
$$;

-- Adds a named constraint unless a constraint of that name exists.
CREATE OR REPLACE FUNCTION clambake._add_constraint(tbl text, name text, def text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                   WHERE n.nspname = 'clambake' AND c.conname = name) THEN
        EXECUTE format('ALTER TABLE clambake.%I ADD CONSTRAINT %I %s', tbl, name, def);
    END IF;
END
$$;

-- Text of a tag array for the full-text column (array_to_string is only
-- STABLE in general; for text[] it is immutable).
CREATE OR REPLACE FUNCTION clambake.tags_text(tags text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT coalesce(array_to_string(tags, ' '), '') $$;

---------------------------------------------------------------------------
-- instances
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS clambake.instances (
    id             serial PRIMARY KEY,
    instance_id    text NOT NULL UNIQUE,
    project        text,
    working_dir    text,
    current_task   text,
    model          text,
    status         text DEFAULT 'active',
    started_at     timestamptz DEFAULT now(),
    last_heartbeat timestamptz DEFAULT now()
);
COMMENT ON TABLE clambake.instances IS
    'One row per registered session. Live while last_heartbeat is fresh; deregister deletes the row.';
SELECT clambake._to_timestamptz('instances', 'started_at');
SELECT clambake._to_timestamptz('instances', 'last_heartbeat');
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS session_key text;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS host text;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS pid integer;
ALTER TABLE clambake.instances ADD COLUMN IF NOT EXISTS hook_seen_at timestamptz;
UPDATE clambake.instances SET started_at = coalesce(started_at, last_heartbeat, now()),
                              last_heartbeat = coalesce(last_heartbeat, started_at, now())
 WHERE started_at IS NULL OR last_heartbeat IS NULL;
UPDATE clambake.instances SET status = 'active'
 WHERE status IS NULL OR status NOT IN ('active', 'idle', 'busy', 'shutting_down');
ALTER TABLE clambake.instances ALTER COLUMN started_at SET NOT NULL;
ALTER TABLE clambake.instances ALTER COLUMN last_heartbeat SET NOT NULL;
ALTER TABLE clambake.instances ALTER COLUMN status SET NOT NULL;
SELECT clambake._add_constraint('instances', 'instances_status_check',
    $c$CHECK (status IN ('active', 'idle', 'busy', 'shutting_down'))$c$);
CREATE INDEX IF NOT EXISTS instances_session_key_idx ON clambake.instances (session_key)
    WHERE session_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS instances_host_dir_idx ON clambake.instances (host, working_dir);
CREATE INDEX IF NOT EXISTS instances_heartbeat_idx ON clambake.instances (last_heartbeat DESC);
CREATE INDEX IF NOT EXISTS instances_project_idx ON clambake.instances (project);

---------------------------------------------------------------------------
-- messages
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS clambake.messages (
    id            serial PRIMARY KEY,
    from_instance text,
    from_project  text,
    to_target     text,
    message_type  text,
    subject       text,
    body          text,
    is_read       boolean DEFAULT false,
    created_at    timestamptz DEFAULT now(),
    expires_at    timestamptz
);
COMMENT ON TABLE clambake.messages IS
    'Messages to @all, a project or an instance. Read state lives in message_receipts; '
    'is_read is kept only from the original schema (true = read before the upgrade).';
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
UPDATE clambake.messages SET is_read = false WHERE is_read IS NULL;
ALTER TABLE clambake.messages ALTER COLUMN is_read SET DEFAULT false;
ALTER TABLE clambake.messages ALTER COLUMN is_read SET NOT NULL;
ALTER TABLE clambake.messages ALTER COLUMN target_kind SET NOT NULL;
ALTER TABLE clambake.messages ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE clambake.messages ALTER COLUMN expires_at SET NOT NULL;
ALTER TABLE clambake.messages ALTER COLUMN message_type SET NOT NULL;
ALTER TABLE clambake.messages ALTER COLUMN to_target SET NOT NULL;
SELECT clambake._add_constraint('messages', 'messages_type_check',
    $c$CHECK (message_type IN ('info', 'warning', 'blocker', 'request', 'done'))$c$);
SELECT clambake._add_constraint('messages', 'messages_target_kind_check',
    $c$CHECK (target_kind IN ('all', 'project', 'instance'))$c$);
-- Delivery: candidates for one recipient are found per target.
-- expires_at third: only unexpired candidates are read (most rows of a busy target are expired until
-- cleanup runs); created_at last for the @all registration cut.  Replaces messages_target_idx
-- (target_kind, to_target, created_at DESC), which read every message ever sent to the target.
CREATE INDEX IF NOT EXISTS messages_delivery_idx ON clambake.messages (target_kind, to_target, expires_at, created_at);
DROP INDEX IF EXISTS clambake.messages_target_idx;
CREATE INDEX IF NOT EXISTS messages_expires_idx ON clambake.messages (expires_at);
CREATE INDEX IF NOT EXISTS messages_open_blockers_idx ON clambake.messages (from_instance)
    WHERE message_type = 'blocker' AND resolved_at IS NULL;
-- "open blockers not yet expired" (status, briefing, prompt hook): without it the planner, which cannot
-- see that nearly every blocker gets resolved, ANDs in the expires_at index (50k rows at 1M messages).
CREATE INDEX IF NOT EXISTS messages_open_blockers_exp_idx ON clambake.messages (expires_at)
    WHERE message_type = 'blocker' AND resolved_at IS NULL;
CREATE INDEX IF NOT EXISTS messages_reply_to_idx ON clambake.messages (reply_to) WHERE reply_to IS NOT NULL;

---------------------------------------------------------------------------
-- message_receipts: read state per recipient
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS clambake.message_receipts (
    message_id  integer NOT NULL,
    instance_id text NOT NULL,
    read_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_receipts_pkey PRIMARY KEY (instance_id, message_id)
);
COMMENT ON TABLE clambake.message_receipts IS
    'One row per (recipient, message) once that recipient has been shown the message.';
SELECT clambake._add_constraint('message_receipts', 'message_receipts_message_fk',
    'FOREIGN KEY (message_id) REFERENCES clambake.messages (id) ON DELETE CASCADE');
SELECT clambake._add_constraint('message_receipts', 'message_receipts_instance_fk',
    'FOREIGN KEY (instance_id) REFERENCES clambake.instances (instance_id) ON DELETE CASCADE ON UPDATE CASCADE');
CREATE INDEX IF NOT EXISTS message_receipts_message_idx ON clambake.message_receipts (message_id);

---------------------------------------------------------------------------
-- claims: exclusive hold of a named resource (a blocker with --resource)
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS clambake.claims (
    resource    text NOT NULL,
    instance_id text NOT NULL,
    message_id  integer,
    reason      text,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CONSTRAINT claims_pkey PRIMARY KEY (resource)
);
COMMENT ON TABLE clambake.claims IS
    'At most one holder per resource (primary key). Ends on done, expiry, deregister or stale holder.';
SELECT clambake._add_constraint('claims', 'claims_instance_fk',
    'FOREIGN KEY (instance_id) REFERENCES clambake.instances (instance_id) ON DELETE CASCADE ON UPDATE CASCADE');
SELECT clambake._add_constraint('claims', 'claims_message_fk',
    'FOREIGN KEY (message_id) REFERENCES clambake.messages (id) ON DELETE SET NULL');
CREATE INDEX IF NOT EXISTS claims_instance_idx ON clambake.claims (instance_id);

---------------------------------------------------------------------------
-- memory: project_memory and global_memory share one id sequence
---------------------------------------------------------------------------
CREATE SEQUENCE IF NOT EXISTS clambake.memory_id_seq;
COMMENT ON SEQUENCE clambake.memory_id_seq IS 'One id space across project_memory and global_memory.';

CREATE TABLE IF NOT EXISTS clambake.project_memory (
    id            integer PRIMARY KEY DEFAULT nextval('clambake.memory_id_seq'),
    project       text NOT NULL,
    memory_type   text NOT NULL,
    title         text NOT NULL,
    content       text,
    status        text DEFAULT 'active',
    tags          text[] DEFAULT '{}',
    related_files text[] DEFAULT '{}',
    created_by    text,
    created_at    timestamptz DEFAULT now(),
    updated_at    timestamptz DEFAULT now()
);
COMMENT ON TABLE clambake.project_memory IS 'Knowledge about one project (gotchas, decisions, fixes...).';

CREATE TABLE IF NOT EXISTS clambake.global_memory (
    id            integer PRIMARY KEY DEFAULT nextval('clambake.memory_id_seq'),
    memory_type   text NOT NULL,
    title         text NOT NULL,
    content       text,
    tags          text[] DEFAULT '{}',
    created_by    text,
    created_at    timestamptz DEFAULT now(),
    updated_at    timestamptz DEFAULT now()
);
COMMENT ON TABLE clambake.global_memory IS 'Knowledge shared by every project (infrastructure, conventions...).';

DO $$
DECLARE
    t text;
    -- schema holding pg_trgm's operator class, when pg_trgm is installed
    trgm text := (SELECT quote_ident(n.nspname) FROM pg_opclass o JOIN pg_namespace n ON n.oid = o.opcnamespace
                   WHERE o.opcname = 'gin_trgm_ops' LIMIT 1);
BEGIN
    FOREACH t IN ARRAY ARRAY['project_memory', 'global_memory'] LOOP
        PERFORM clambake._to_timestamptz(t, 'created_at');
        PERFORM clambake._to_timestamptz(t, 'updated_at');
        EXECUTE format('ALTER TABLE clambake.%I ADD COLUMN IF NOT EXISTS status text DEFAULT %L', t, 'active');
        EXECUTE format('ALTER TABLE clambake.%I ADD COLUMN IF NOT EXISTS related_files text[] DEFAULT %L', t, '{}');
        EXECUTE format('ALTER TABLE clambake.%I ADD COLUMN IF NOT EXISTS tags text[] DEFAULT %L', t, '{}');
        EXECUTE format('UPDATE clambake.%I SET status = %L WHERE status IS NULL OR status NOT IN '
                       '(''active'', ''resolved'', ''deprecated'', ''superseded'')', t, 'active');
        EXECUTE format('UPDATE clambake.%I SET tags = %L WHERE tags IS NULL', t, '{}');
        EXECUTE format('UPDATE clambake.%I SET related_files = %L WHERE related_files IS NULL', t, '{}');
        EXECUTE format('UPDATE clambake.%I SET created_at = coalesce(created_at, updated_at, now()), '
                       'updated_at = coalesce(updated_at, created_at, now()) '
                       'WHERE created_at IS NULL OR updated_at IS NULL', t);
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN status SET NOT NULL', t);
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN tags SET NOT NULL', t);
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN related_files SET NOT NULL', t);
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN created_at SET NOT NULL', t);
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN updated_at SET NOT NULL', t);
        -- new rows draw from the shared sequence (old ids are kept as they are)
        EXECUTE format('ALTER TABLE clambake.%I ALTER COLUMN id SET DEFAULT nextval(%L)', t, 'clambake.memory_id_seq');
        IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                       WHERE table_schema = 'clambake' AND table_name = t AND column_name = 'search_tsv') THEN
            EXECUTE format($f$ALTER TABLE clambake.%I ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') ||
                setweight(to_tsvector('english'::regconfig, clambake.tags_text(tags)), 'B') ||
                setweight(to_tsvector('english'::regconfig, coalesce(content, '')), 'C')) STORED$f$, t);
        END IF;
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I USING gin (search_tsv)', t || '_search_idx', t);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I USING gin (tags)', t || '_tags_idx', t);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I (lower(title))', t || '_title_idx', t);
        PERFORM clambake._add_constraint(t, t || '_status_check',
            $c$CHECK (status IN ('active', 'resolved', 'deprecated', 'superseded'))$c$);
        -- trigram index for typo-tolerant fallback, when pg_trgm is installed
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
END
$$;
CREATE INDEX IF NOT EXISTS project_memory_project_idx
    ON clambake.project_memory (project, updated_at DESC);
CREATE INDEX IF NOT EXISTS global_memory_updated_idx ON clambake.global_memory (updated_at DESC);
CREATE INDEX IF NOT EXISTS project_memory_updated_idx ON clambake.project_memory (updated_at DESC);

-- The shared sequence starts above every id already used in either table.
SELECT setval('clambake.memory_id_seq', greatest(m.top, 1), m.top > 0)
  FROM (SELECT greatest(
          (SELECT coalesce(max(id), 0) FROM clambake.project_memory),
          (SELECT coalesce(max(id), 0) FROM clambake.global_memory),
          (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM clambake.memory_id_seq)) AS top) m;
-- The original per-table sequences are no longer used; keep them (harmless)
-- so that nothing outside clambake that referenced them breaks.

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
    END IF;
END
$$;

---------------------------------------------------------------------------
-- session_log
---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS clambake.session_log (
    id             serial PRIMARY KEY,
    instance_id    text,
    project        text,
    action         text,
    summary        text,
    files_modified text[] DEFAULT '{}',
    created_at     timestamptz DEFAULT now()
);
COMMENT ON TABLE clambake.session_log IS 'Append-only audit trail of what sessions did.';
SELECT clambake._to_timestamptz('session_log', 'created_at');
UPDATE clambake.session_log SET created_at = now() WHERE created_at IS NULL;
UPDATE clambake.session_log SET files_modified = '{}' WHERE files_modified IS NULL;
UPDATE clambake.session_log SET action = 'note' WHERE action IS NULL;
ALTER TABLE clambake.session_log ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE clambake.session_log ALTER COLUMN files_modified SET NOT NULL;
ALTER TABLE clambake.session_log ALTER COLUMN action SET NOT NULL;
CREATE INDEX IF NOT EXISTS session_log_created_idx ON clambake.session_log (created_at DESC);
CREATE INDEX IF NOT EXISTS session_log_project_idx ON clambake.session_log (project, created_at DESC);
CREATE INDEX IF NOT EXISTS session_log_instance_idx ON clambake.session_log (instance_id, created_at DESC);

---------------------------------------------------------------------------
-- Project names are normalised everywhere (lower case, runs of white space to
-- '-', trimmed), as clambake.py does with every name it is given.  The
-- original tool stored them as typed ("Doc DB v2"); normalise those rows so
-- that old memories, log rows and messages are found under the new name.
---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION clambake.norm_project(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT lower(regexp_replace(regexp_replace(name, '^\s+|\s+$', '', 'g'), '\s+', '-', 'g')) $$;
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

---------------------------------------------------------------------------
-- notifications for `wait`: a small namespaced payload on channel clambake
---------------------------------------------------------------------------
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
-- notifications for the dashboard: channel clambake_ui (so `wait` is not woken by every heartbeat),
-- one per statement, the payload naming the table: i instances, c claims, r receipts, l session log,
-- k memories, m messages changed (new messages also arrive on channel clambake).  NOTIFY payloads are
-- deduplicated per transaction, so a batch costs one notification per table.
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
    FOR t IN SELECT * FROM (VALUES ('instances', 'i', 'INSERT OR UPDATE OR DELETE'),
                                   ('claims', 'c', 'INSERT OR UPDATE OR DELETE'),
                                   ('message_receipts', 'r', 'INSERT'),
                                   ('session_log', 'l', 'INSERT'),
                                   ('project_memory', 'k', 'INSERT OR UPDATE OR DELETE'),
                                   ('global_memory', 'k', 'INSERT OR UPDATE OR DELETE'),
                                   ('messages', 'm', 'UPDATE OR DELETE')) v(tab, tag, ev)
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON clambake.%I', t.tab || '_notify_ui', t.tab);
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON clambake.%I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION clambake.notify_ui(%L)', t.tab || '_notify_ui', t.ev, t.tab, t.tag);
    END LOOP;
END
$$;

---------------------------------------------------------------------------
-- memory: provenance and consolidation (schema 3: import, export, --supersedes)
-- source_file / source_heading: where an imported entry came from (a path relative to the
-- project's directory, or template:NAME, and the heading path "Parent > Child"); one entry per
-- source section, so a re-import updates instead of copying.  source_hash: a digest of the section
-- as last imported (unchanged sections are skipped).  superseded_by: the merged entry that
-- replaced this one (status superseded), same table, so same scope.
---------------------------------------------------------------------------
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['project_memory', 'global_memory'] LOOP
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
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON clambake.%I (superseded_by) WHERE superseded_by IS NOT NULL',
                       t || '_superseded_by_idx', t);
    END LOOP;
END
$$;
CREATE UNIQUE INDEX IF NOT EXISTS project_memory_source_idx
    ON clambake.project_memory (project, source_file, source_heading) WHERE source_file IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS global_memory_source_idx
    ON clambake.global_memory (source_file, source_heading) WHERE source_file IS NOT NULL;
-- end of schema 3 block

INSERT INTO clambake.meta (key, value) VALUES ('schema_version', '3')
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()
WHERE clambake.meta.value::int < excluded.value::int;
