"""Edge cases found in review: identity after deregister, long autonomous turns, the project's own
libpq variables, upgraded project names, secrets in common shapes, hard caps and small CLI manners."""

import json
import os
import subprocess
import sys
import uuid

from conftest import SCRIPT


def hook(cb, event, data, env=None, cwd=None):
    return cb("hook", event, input=json.dumps(data), env=env, cwd=cwd)


def start(session, cwd, source="startup"):
    return {"session_id": session, "cwd": str(cwd), "hook_event_name": "SessionStart", "source": source,
            "transcript_path": "/tmp/%s.jsonl" % session}


def context(res):
    assert res.code == 0, res
    return json.loads(res.out)["hookSpecificOutput"].get("additionalContext", "")


def live_ids(sql):
    return sorted(r[0] for r in sql("SELECT instance_id FROM clambake.instances"))


def test_left_over_instance_env_after_deregister_does_not_lock_the_session_out(db, cb, sql, tmp_path):
    session = str(uuid.uuid4())
    env_file = tmp_path / "claude-env.sh"
    assert hook(cb, "session-start", start(session, tmp_path), env={"CLAUDE_ENV_FILE": str(env_file)}).code == 0
    old = env_file.read_text().strip().split("=", 1)[1]
    shell = {"CLAUDE_CODE_SESSION_ID": session, "CLAMBAKE_INSTANCE": old}
    assert cb("deregister", env=shell, cwd=tmp_path).code == 0
    assert live_ids(sql) == []
    # the shell still exports the old id; registering again brings the instance back under it
    res = cb("register", "--project", "shop", "--dir", str(tmp_path), env=shell, cwd=tmp_path)
    assert res.code == 0 and old in res.out
    assert live_ids(sql) == [old]
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuild",
              env=shell, cwd=tmp_path).code == 0
    # and if the prompt hook re-registered first (under a new id), the session key still finds it
    assert cb("deregister", env=shell, cwd=tmp_path).code == 0
    hook(cb, "prompt", {"session_id": session, "cwd": str(tmp_path), "prompt": "go on"})
    (new,) = live_ids(sql)
    assert new != old
    res = cb("whoami", "--json", env=shell, cwd=tmp_path)
    assert res.code == 0 and json.loads(res.out)["instance_id"] == new


def test_tool_calls_keep_a_long_turn_live_so_its_claims_hold(db, cb, sql, tmp_path):
    session = str(uuid.uuid4())
    assert hook(cb, "session-start", start(session, tmp_path)).code == 0
    holder = {"CLAUDE_CODE_SESSION_ID": session}
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding images",
              env=holder, cwd=tmp_path).code == 0
    # a long autonomous turn: no prompt for 31 minutes, only tool calls
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '31 minutes'")
    bash = {"session_id": session, "cwd": str(tmp_path), "hook_event_name": "PreToolUse",
            "tool_name": "Bash", "tool_input": {"command": "docker build ."}}
    res = hook(cb, "pre-tool", bash)
    assert res.code == 0 and res.out == ""          # its own claim: allowed
    age = sql("SELECT extract(epoch FROM now() - last_heartbeat) FROM clambake.instances")[0][0]
    assert age < 60
    other = cb("register", "--project", "other", "--dir", str(tmp_path / "o"), "--json",
               env={"CLAUDE_CODE_SESSION_ID": "other-session"})
    other_id = json.loads(other.out)["instance_id"]
    assert cb("check", "docker", "--as", other_id).code == 1
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "mine now",
              "--as", other_id).code == 1
    # throttled: a fresh heartbeat is not rewritten on every tool call
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '20 seconds' WHERE session_key = %s",
        (session,))
    hook(cb, "pre-tool", bash)
    age = sql("SELECT extract(epoch FROM now() - last_heartbeat) FROM clambake.instances WHERE session_key = %s",
              (session,))[0][0]
    assert age >= 20


def test_project_libpq_variables_do_not_redirect_clambake(db, cb, pg, tmp_path):
    info = dict(p.split("=", 1) for p in db.dsn.split())
    # CLAMBAKE_DB_USER is not set: its default ("postgres", the test server's superuser) applies, not
    # the PGUSER of the project the agent works on; likewise PGDATABASE/PGHOST/PGPORT/PGPASSWORD
    env = {"CLAMBAKE_DSN": None, "CLAMBAKE_DB_HOST": info["host"], "CLAMBAKE_DB_PORT": info["port"],
           "CLAMBAKE_DB_NAME": info["dbname"], "CLAMBAKE_DB_PASS": "unused",
           "PGUSER": "the_project_role", "PGHOST": "127.0.0.2", "PGPORT": "1", "PGDATABASE": "the_project_db",
           "PGPASSWORD": "project-secret"}
    res = cb("register", "--project", "shop", "--dir", str(tmp_path), env=env)
    assert res.code == 0, res
    res = cb("status", "--json", env=env, cwd=tmp_path)
    assert res.code == 0 and json.loads(res.out)["live_total"] == 1


def test_upgrade_normalises_project_names_of_the_original_tool(empty_db, cb, sql):
    sql("""
        CREATE SCHEMA clambake;
        CREATE TABLE clambake.instances (id serial PRIMARY KEY, instance_id text UNIQUE, project text,
            working_dir text, current_task text, model text, status text, started_at timestamp DEFAULT now(),
            last_heartbeat timestamp DEFAULT now());
        CREATE TABLE clambake.messages (id serial PRIMARY KEY, from_instance text, from_project text,
            to_target text, message_type text, subject text, body text, is_read boolean DEFAULT false,
            created_at timestamp DEFAULT now(), expires_at timestamp);
        CREATE TABLE clambake.project_memory (id serial PRIMARY KEY, project text, memory_type text, title text,
            content text, status text DEFAULT 'active', tags text[], related_files text[], created_by text,
            created_at timestamp DEFAULT now(), updated_at timestamp DEFAULT now());
        CREATE TABLE clambake.global_memory (id serial PRIMARY KEY, memory_type text, title text, content text,
            tags text[], created_by text, created_at timestamp DEFAULT now(), updated_at timestamp DEFAULT now());
        CREATE TABLE clambake.session_log (id serial PRIMARY KEY, instance_id text, project text, action text,
            summary text, files_modified text[], created_at timestamp DEFAULT now());
        INSERT INTO clambake.project_memory (project, memory_type, title, content)
            VALUES ('Doc DB v2', 'gotcha', 'Reindex after bulk load', 'GIN indexes lag behind');
        INSERT INTO clambake.messages (from_instance, from_project, to_target, message_type, subject, expires_at)
            VALUES ('old-1', 'API Server', 'Doc DB v2', 'request', 'please review the schema',
                    now() + interval '1 day');
        INSERT INTO clambake.session_log (instance_id, project, action, summary)
            VALUES ('old-1', 'Doc DB v2', 'fix', 'patched the loader');
    """)
    assert cb("init").code == 0
    data = cb.json("recall", "--project", "Doc DB v2")
    assert [m["title"] for m in data["memories"]] == ["Reindex after bulk load"]
    assert "patched the loader" in cb("history", "--project", "Doc DB v2").out
    me = cb.json("register", "--project", "Doc DB v2", "--dir", "/tmp")["instance_id"]
    inbox = cb.json("inbox", "--as", me)
    assert [m["subject"] for m in inbox["messages"]] == ["please review the schema"]
    assert inbox["messages"][0]["from_project"] == "api-server"


def test_secrets_in_common_shapes_are_refused(db, cb):
    for text in ("POSTGRES_PASSWORD=Sup3rS3cretValue", "PGPASSWORD=hunter2hunter2",
                 "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCY", "MYSQL_ROOT_PASSWORD: hunter2hunter2",
                 '{"db_password": "hunter2hunter2"}', "psql --password hunter2hunter2",
                 "Authorization: Bearer abcdef0123456789abcdef0123"):
        res = cb("remember", "--global", "--type", "credential", "--title", "db access", "--content", text)
        assert res.code == 2, text
        assert "hunter2" not in res.err and "Sup3r" not in res.err
    for text in ("the token expires after 1h", "password reset flow is broken",
                 "run docker login with --password-stdin", "pass --password <from vault>"):
        res = cb("remember", "--global", "--type", "lesson", "--title", "note " + text, "--content", text)
        assert res.code == 0, (text, res.err)


def test_resume_keeps_the_project_the_session_chose(db, cb, tmp_path):
    session = str(uuid.uuid4())
    checkout = tmp_path / "docdb-checkout"
    checkout.mkdir()
    hook(cb, "session-start", start(session, checkout))
    env = {"CLAUDE_CODE_SESSION_ID": session}
    assert cb("register", "--project", "Doc DB v2", "--dir", str(checkout), env=env).code == 0
    for source in ("compact", "resume", "clear"):
        assert "project doc-db-v2" in context(hook(cb, "session-start", start(session, checkout, source)))
    assert cb.json("whoami", env=env)["project"] == "doc-db-v2"


def test_a_terminal_without_session_key_never_acts_as_a_claude_session(db, cb, tmp_path):
    session = str(uuid.uuid4())
    hook(cb, "session-start", start(session, tmp_path))
    res = cb("heartbeat", "--task", "human terminal work", cwd=tmp_path)
    assert res.code == 1 and "not registered" in res.err
    mine = cb.json("register", "--project", "term", "--dir", str(tmp_path), cwd=tmp_path)["instance_id"]
    assert cb.json("whoami", cwd=tmp_path)["instance_id"] == mine
    assert cb.json("whoami", cwd=tmp_path, env={"CLAUDE_CODE_SESSION_ID": session})["instance_id"] != mine


def test_blockers_of_replaced_or_removed_holders_are_resolved(db, cb, sql, tmp_path):
    a = cb.json("register", "--project", "p", "--dir", str(tmp_path / "a"))["instance_id"]
    b = cb.json("register", "--project", "p", "--dir", str(tmp_path / "b"))["instance_id"]
    c = cb.json("register", "--project", "q", "--dir", str(tmp_path / "c"))["instance_id"]
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "a holds", "--as", a).code == 0
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "b takes", "--force",
              "--as", b).code == 0
    assert cb("send", "--type", "blocker", "--subject", "c blocks all", "--as", c).code == 0
    sql("UPDATE clambake.instances SET last_heartbeat = now() - interval '3 hours' WHERE instance_id = %s", (c,))
    assert cb("cleanup", "--quiet").code == 0
    open_blockers = sql("SELECT subject FROM clambake.messages WHERE message_type = 'blocker' "
                        "AND resolved_at IS NULL ORDER BY id")
    assert open_blockers == [("b takes",)]


def test_briefing_cap_is_hard_even_with_many_claims(db, cb, sql, tmp_path):
    holder = cb.json("register", "--project", "busy", "--dir", str(tmp_path / "h"))["instance_id"]
    for i in range(60):
        assert cb("send", "--type", "blocker", "--resource", "resource-number-%02d" % i, "--subject",
                  "a fairly long reason for holding resource number %d for a while" % i, "--as", holder).code == 0
    for cap in (6000, 2000):
        ctx = context(hook(cb, "session-start", start(str(uuid.uuid4()), tmp_path),
                           env={"CLAMBAKE_BRIEFING_MAX": str(cap)}))
        assert len(ctx) <= cap
        assert "resource-number-00" in ctx
    # 60 compact claim lines fit the default cap
    ctx = context(hook(cb, "session-start", start(str(uuid.uuid4()), tmp_path)))
    assert all("resource-number-%02d" % i in ctx for i in range(60))


def test_hook_timeout_accepts_a_duration(db, cb, tmp_path):
    res = hook(cb, "prompt", {"session_id": str(uuid.uuid4()), "cwd": str(tmp_path), "prompt": "hi"},
               env={"CLAMBAKE_HOOK_TIMEOUT": "2s"})
    assert res.code == 0 and "Traceback" not in res.err and "error" not in res.err
    res = hook(cb, "prompt", {"session_id": str(uuid.uuid4()), "cwd": str(tmp_path), "prompt": "hi"},
               env={"CLAMBAKE_HOOK_TIMEOUT": "soon"})
    assert res.code == 0


def test_output_piped_into_head_is_not_an_error(db, cb, tmp_path):
    me = cb.json("register", "--project", "p", "--dir", str(tmp_path))["instance_id"]
    for i in range(300):
        cb("log", "--action", "note", "--summary", "line %d %s" % (i, "x" * 100), "--as", me)
    proc = subprocess.run("%s %s history --limit 500 | head -1" % (sys.executable, SCRIPT), shell=True,
                          capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1
    assert "error" not in proc.stderr and "Traceback" not in proc.stderr


def test_absurd_durations_are_bad_input_before_any_sql(cb):
    env = {"CLAMBAKE_DSN": "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1"}
    for argv in (("send", "--subject", "x", "--ttl", "999999999999d"), ("history", "--since", "99999d"),
                 ("wait", "--timeout", "4000d")):
        res = cb(*argv, env=env)
        assert res.code == 2 and "3650d" in res.err, (argv, res)


def test_text_values_starting_with_a_dash(db, cb):
    cb("remember", "--project", "p", "--type", "gotcha", "--title", "Docker restart breaks builds",
       "--content", "restart docker only after a blocker")
    cb("remember", "--project", "p", "--type", "gotcha", "--title", "Nginx restart is safe",
       "--content", "reload instead of restart")
    data = cb.json("recall", "--project", "p", "--search", "restart -docker")
    assert [m["title"] for m in data["memories"]] == ["Nginx restart is safe"]
    data = cb.json("recall", "--project", "p", "--search", "-docker")
    assert [m["title"] for m in data["memories"]] == ["Nginx restart is safe"]
    me = cb.json("register", "--project", "p", "--dir", "/tmp")["instance_id"]
    other = cb.json("register", "--project", "q", "--dir", "/tmp/q-dir-that-need-not-exist")["instance_id"]
    assert cb("send", "--to", "q", "--subject", "-1 tests failing after the merge", "--as", me).code == 0
    assert "-1 tests failing" in cb("inbox", "--as", other).out


def test_clear_hands_the_instance_with_its_claims_to_the_next_session(db, cb, tmp_path):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    hook(cb, "session-start", start(first, tmp_path))
    env = {"CLAUDE_CODE_SESSION_ID": first}
    iid = cb.json("register", "--project", "shop-api", "--dir", str(tmp_path), env=env)["instance_id"]
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding images",
              env=env).code == 0
    assert hook(cb, "session-end", {"session_id": first, "cwd": str(tmp_path), "reason": "clear"}).code == 0
    ctx = context(hook(cb, "session-start", start(second, tmp_path, "clear")))
    assert iid in ctx and "project shop-api" in ctx
    after = {"CLAUDE_CODE_SESSION_ID": second}
    assert cb.json("whoami", env=after)["instance_id"] == iid
    assert cb("check", "docker", env=after).code == 0 and "held by you" in cb("check", "docker", env=after).out
    # a plain exit still deregisters and releases
    hook(cb, "session-end", {"session_id": second, "cwd": str(tmp_path), "reason": "prompt_input_exit"})
    assert cb("check", "docker").out.startswith("docker: free")


def test_briefing_leaves_unshown_claim_messages_unread(db, cb, sql, tmp_path):
    holder = cb.json("register", "--project", "busy", "--dir", str(tmp_path / "h"))["instance_id"]
    session = str(uuid.uuid4())
    hook(cb, "session-start", start(session, tmp_path))
    me = cb.json("whoami", env={"CLAUDE_CODE_SESSION_ID": session})["instance_id"]
    for i in range(40):
        cb("send", "--type", "blocker", "--resource", "res-%02d" % i, "--subject", "holding %d" % i, "--as", holder)
    cb("send", "--to", me, "--type", "blocker", "--resource", "zz-late", "--subject", "late claim",
       "--body", "important body", "--as", holder)
    ctx = context(hook(cb, "session-start", start(session, tmp_path, "resume"),
                       env={"CLAMBAKE_BRIEFING_MAX": "1000"}))
    assert len(ctx) <= 1000 and "zz-late" not in ctx
    assert "late claim" in cb("inbox", "--peek", "--limit", "100", env={"CLAUDE_CODE_SESSION_ID": session}).out


def test_guard_allows_clambake_commands_with_quoted_separators(db, cb, tmp_path):
    holder = cb.json("register", "--project", "h", "--dir", str(tmp_path / "h"))["instance_id"]
    cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuild", "--as", holder)
    session = str(uuid.uuid4())
    hook(cb, "session-start", start(session, tmp_path))

    def pre(command):
        return hook(cb, "pre-tool", {"session_id": session, "cwd": str(tmp_path), "hook_event_name": "PreToolUse",
                                     "tool_name": "Bash", "tool_input": {"command": command}})
    assert pre('python clambake.py send --to %s --type request --subject "tests & docker build waiting"'
               % holder).out == ""
    assert "deny" in pre('python clambake.py check docker; docker compose down').out
    assert "deny" in pre('echo "a;b" && docker compose down').out
    assert pre('echo "a;b" && docker ps').out == ""        # reading is never denied


def test_resolved_and_renewed_blockers_do_not_crowd_the_inbox(db, cb, sql, tmp_path):
    u1 = cb.json("register", "--project", "p", "--dir", str(tmp_path / "1"))["instance_id"]
    u2 = cb.json("register", "--project", "p", "--dir", str(tmp_path / "2"))["instance_id"]
    cb("send", "--to", u2, "--type", "request", "--subject", "please review", "--as", u1)
    for i in range(3):
        cb("send", "--type", "blocker", "--resource", "build", "--subject", "build %d" % i, "--as", u1)
    open_ = sql("SELECT subject FROM clambake.messages WHERE message_type = 'blocker' AND resolved_at IS NULL")
    assert open_ == [("build 2",)]            # renewals supersede the earlier copies
    cb("send", "--type", "done", "--resource", "build", "--subject", "built", "--as", u1)
    first = cb.json("inbox", "--limit", "1", "--as", u2)["messages"][0]
    assert first["subject"] == "please review"


def test_inherited_instance_variable_does_not_merge_sessions(db, cb, tmp_path):
    term = cb.json("register", "--project", "term", "--dir", str(tmp_path))["instance_id"]
    ids = set()
    for key in ("s1", "s2"):
        env = {"CLAMBAKE_INSTANCE": term, "CLAUDE_CODE_SESSION_ID": key}
        ids.add(cb.json("register", "--project", "p-" + key, "--dir", str(tmp_path), env=env)["instance_id"])
        assert cb.json("whoami", env=env)["project"] == "p-" + key
    assert len(ids) == 2 and term not in ids
    assert cb.json("whoami", "--as", term)["project"] == "term"


def test_stale_instance_variable_does_not_turn_a_free_check_into_held(db, cb):
    res = cb("check", "nothing-held", env={"CLAMBAKE_INSTANCE": "gone-1234"})
    assert res.code == 0 and "free" in res.out and "gone-1234" in res.err


def test_hooks_say_schema_missing(empty_db, cb, tmp_path):
    ctx = context(hook(cb, "session-start", start(str(uuid.uuid4()), tmp_path)))
    assert "schema missing" in ctx and "init" in ctx


def test_prompt_hook_names_a_blocker_once_with_its_body(db, cb, tmp_path):
    holder = cb.json("register", "--project", "h", "--dir", str(tmp_path / "h"))["instance_id"]
    session = str(uuid.uuid4())
    hook(cb, "session-start", start(session, tmp_path))
    cb("send", "--type", "blocker", "--subject", "editing nginx config", "--body", "reload pending", "--as", holder)
    cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuild", "--body", "20 minutes",
       "--as", holder)
    ctx = context(hook(cb, "prompt", {"session_id": session, "cwd": str(tmp_path), "prompt": "go"}))
    assert ctx.count("editing nginx config") == 1 and "reload pending" in ctx
    assert ctx.count("rebuild") == 1 and "20 minutes" in ctx


def test_log_and_history_check_their_limits_before_sql(cb):
    env = {"CLAMBAKE_DSN": "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1"}
    assert cb("log", "--action", "note", "--summary", "x", "--project", "p" * 5000, env=env).code == 2
    assert cb("log", "--action", "note", "--summary", "x", "--files", "f" * 5000, env=env).code == 2
    assert cb("history", "--project", "p" * 5000, env=env).code == 2
