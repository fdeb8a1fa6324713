"""clambake hooks: the Claude Code integration - the hooks (session-start, prompt, pre-tool, post-tool,
stop, ...), the guard's classification of tool calls, the off/on switch, install-hooks / uninstall-hooks.

A part of clambake.py (see its docstring), run in its namespace by the commands above; it uses the
core's names.  Not a module of its own.
"""

# --------------------------------------------------------------------------
# integrations: Claude Code hooks
# --------------------------------------------------------------------------

HOOK_DEADLINE_S = 1.7          # a hook gives up (fail open) this long after it starts; with interpreter
                               # start-up the process ends within ~2 s even on a loaded machine
# What PostToolUse delivers mid-turn (the rest waits for the next prompt): blockers and warnings, and
# requests addressed to this instance.
URGENT_SQL = ("AND (m.message_type IN ('blocker', 'warning') "
              "OR (m.message_type = 'request' AND m.target_kind = 'instance'))")
DIRECT_REQUEST_SQL = "AND m.message_type = 'request' AND m.target_kind = 'instance'"
HANDOVER_WINDOW_S = 600        # /clear: the new session adopts a handover at most this old
FORK_WINDOW_S = 120            # a new session id this soon after a resume in the same process is a fork


def hook_input():
    """Claude Code's hook JSON from stdin, read whole (a big Write is judged too), as UTF-8 whatever the
    console code page ({} when absent or invalid)."""
    try:
        stream = getattr(sys.stdin, "buffer", None)
        raw = stream.read() if stream is not None else sys.stdin.read()
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8-sig")
            except UnicodeDecodeError:          # a stray byte must not turn the whole input into {}
                raw = raw.decode("utf-8", "replace")
        data = json.loads(raw or "{}")
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


_hook_state = {"lock": None, "printed": False, "printing": False}


def start_deadline(seconds, give_up):
    """Call give_up() in `seconds`; -> a function that cancels that.  Where there is SIGALRM its handler does it,
    in the main thread between two Python steps (a wait for the server is one): no thread to start, when
    importing threading alone would cost every hook ~2 ms.  Elsewhere (Windows, or off the main thread) a
    timer thread does it, and a lock keeps it from printing while the hook prints."""
    try:
        import _signal as signal      # the C module: signal.py turns its constants into enums, ~1 ms
    except ImportError:
        import signal
    if hasattr(signal, "setitimer"):
        def on_alarm(signum, frame):
            if _hook_state["printing"]:                  # the hook is writing its answer: let it finish
                signal.setitimer(signal.ITIMER_REAL, 0.05)
                return
            give_up()
        try:
            previous = signal.signal(signal.SIGALRM, on_alarm)
        except ValueError:                                # not the main thread
            pass
        else:
            signal.setitimer(signal.ITIMER_REAL, seconds)

            def cancel():
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
            return cancel
    import threading
    _hook_state["lock"] = threading.Lock()
    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()

    def cancel():
        timer.cancel()
        _hook_state["lock"] = None
    return cancel


def hook_output(event, context=None, top=None, **specific):
    """Print the hook's one JSON object (at most once per process, even if the fail-open timer fires):
    `hookSpecificOutput` (additionalContext and event fields) and top-level fields (`top`: decision,
    reason, systemMessage)."""
    out = dict(top or {})
    if context or specific:
        inner = {"hookEventName": event}
        if context:
            inner["additionalContext"] = context
        inner.update(specific)
        out["hookSpecificOutput"] = inner
    lock = _hook_state["lock"]
    if lock is not None:
        lock.acquire()
    _hook_state["printing"] = True
    try:
        if not _hook_state["printed"]:
            emit_json(out)
            sys.stdout.flush()
            _hook_state["printed"] = True
    finally:
        _hook_state["printing"] = False
        if lock is not None:
            lock.release()


_WORD_CHARS = _ASCII_LETTERS | _DIGITS | frozenset("_-")


def session_marker(kind, session):
    """A per-session state file in the temp directory (no database needed to read it), named by the session
    id itself when that is a plain word (Claude Code's are UUIDs), else by a digest of it."""
    key = session or "no-session"
    if not (len(key) <= 64 and _WORD_CHARS.issuperset(key)):
        import hashlib
        key = hashlib.sha1(key.encode()).hexdigest()[:16]
    return os.path.join(temp_dir(), f"clambake-{kind}-{key}")


def temp_dir():
    """The temp directory as tempfile.gettempdir() finds it in the usual case (TMPDIR, TEMP or TMP, else the
    platform's), without importing tempfile - and shutil, random and more with it - in every hook."""
    for var in ("TMPDIR", "TEMP", "TMP"):
        d = os.environ.get(var)
        if d and os.path.isdir(d):
            return os.path.abspath(d)
    if os.name != "nt" and os.path.isdir("/tmp"):
        return "/tmp"
    import tempfile
    return tempfile.gettempdir()


def off_marker(session):
    return session_marker("off", session)


def db_target():
    """Where the hooks connect, for the human: host:port/db (user), never the password."""
    dsn, kw = conn_params()
    where = describe_target(dsn, kw)
    user = kw.get("user")
    if dsn:
        try:
            user = psycopg2_module().extensions.parse_dsn(dsn).get("user")
        except Exception:
            pass
    return where + (f" (user {user})" if user else "") + (" from CLAMBAKE_DSN" if dsn else "")


def write_marker(path, text):
    """Write one of the hooks' small temp files; failing to only costs what the file would have saved."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError:
        pass


def say_coordination_off(event, session, reason):
    """Tell the agent and the human (systemMessage), once per session, that coordination is off and
    what to check."""
    if event in ("SessionEnd", "CwdChanged"):
        return                          # nobody to tell: the session is ending / nothing is shown
    marker = off_marker(session)
    if os.path.exists(marker):
        return
    write_marker(marker, reason)
    try:
        where = db_target()
    except Exception:
        where = "the configured database"
    human = (f"clambake: coordination is off ({reason}; {where}). Check that Postgres runs there and that "
             f"Claude Code's environment (or the settings file's \"env\") has the right CLAMBAKE_DSN or "
             f"CLAMBAKE_DB_HOST/PORT/NAME/USER/PASS (or a pgpass file); {ENV_SWITCH}=off silences the hooks.")
    agent = (f"clambake: coordination is off for now ({reason}); other sessions cannot see this one."
             if event in ("SessionStart", "UserPromptSubmit", "PostToolUse") else None)
    hook_output(event, agent, top={"systemMessage": human})


def clear_off_marker(session):
    try:
        os.remove(off_marker(session))
    except OSError:
        pass


SESSION_MARKERS = ("post", "off")


def clear_session_markers(session):
    """SessionEnd: remove the session's temp files, so that a machine running many sessions a day does
    not collect one per session in its temp directory (they only save work; a resumed session makes
    them again)."""
    for kind in SESSION_MARKERS:
        try:
            os.remove(session_marker(kind, session))
        except OSError:
            pass


def post_tool_due(data, session):
    """PostToolUse runs after every tool call: check the database at most every
    CLAMBAKE_DELIVERY_INTERVAL (default 10s) per session, or at once when the cwd changed.  Decided by
    one temp file's age and content, without a connection."""
    raw = os.environ.get(ENV_DELIVERY_INTERVAL, "").strip()
    try:
        interval = 0 if raw in ("0", "0s") else env_duration(ENV_DELIVERY_INTERVAL, 10)   # 0: every call
    except ClambakeError:
        interval = 10
    path = session_marker("post", session)
    cwd = str(data.get("cwd") or "")
    try:
        st = os.stat(path)
        if time.time() - st.st_mtime < interval:
            with open(path, encoding="utf-8") as f:
                if f.read() == cwd:
                    return False
    except OSError:
        pass
    write_marker(path, cwd)
    return True


def session_key_of(value):
    """A session id as Claude Code sends it (a UUID), made safe to store and to put in the environment:
    printable ASCII only, at most 200 characters."""
    key = "".join(ch for ch in str(value or "") if "!" <= ch <= "~")[:200]
    return key or None


def cmd_hook(args):
    """Run one hook; whatever happens - bad input, a database error, a bug - exit 0 (fail open)."""
    try:
        return run_hook(args)
    except Exception:
        if os.environ.get(ENV_DEBUG) == "1":
            raise
        return OK


def run_hook(args):
    """Run one hook within HOOK_DEADLINE_S."""
    event = HOOK_EVENTS[args.event][0]
    data = hook_input()
    if os.environ.get(ENV_SWITCH, "").strip().lower() in OFF_WORDS:
        return OK                       # CLAMBAKE=off: no database, no output
    session = session_key_of(data.get("session_id") or os.environ.get(ENV_SESSION))
    if args.event == "pre-tool" and os.environ.get(ENV_GUARD, "").lower() in OFF_WORDS:
        return OK
    if args.event == "post-tool" and not post_tool_due(data, session):
        return OK
    if args.event == "stop" and data.get("stop_hook_active"):
        return OK                       # already continuing because of a Stop hook: never loop
    saved_env = {k: os.environ.get(k) for k in (ENV_SESSION, ENV_STATEMENT_TIMEOUT)}
    if session:
        os.environ[ENV_SESSION] = session
    _hook_state["printed"] = False

    def give_up():
        try:
            if not _hook_state["printed"]:
                say_coordination_off(event, session, "database too slow")
            sys.stdout.flush()
        finally:
            os._exit(0)

    try:
        # Claude Code kills a hook at its installed timeout: give up (fail open) a second before that
        deadline = min(env_duration("CLAMBAKE_HOOK_TIMEOUT", HOOK_DEADLINE_S), HOOK_EVENTS[args.event][2] - 1.0)
    except ClambakeError:
        deadline = HOOK_DEADLINE_S
    cancel_deadline = start_deadline(deadline, give_up)
    try:
        if args.event == "session-end":
            clear_session_markers(session)      # first: also when the database is down
        os.environ.setdefault(ENV_STATEMENT_TIMEOUT, "1.5s")
        connect(timeout=2)
        func = {"session-start": hook_session_start, "prompt": hook_prompt, "pre-tool": hook_pre_tool,
                "post-tool": hook_post_tool, "stop": hook_stop, "subagent-start": hook_subagent_start,
                "cwd": hook_cwd, "session-end": hook_session_end}[args.event]
        func(data, session, args)
        if args.event in ("session-start", "prompt"):
            clear_off_marker(session)
    except ClambakeError as e:
        if e.code in (UNREACHABLE, NO_SCHEMA):
            say_coordination_off(event, session, "database unreachable" if e.code == UNREACHABLE
                                 else f"schema missing: run {script_cmd()} init")
    except Exception as e:  # fail open: a hook must never break the session
        if os.environ.get(ENV_DEBUG) == "1":
            raise
        code, _, _ = classify(e)
        if code == UNREACHABLE:
            say_coordination_off(event, session, "database unreachable")
        elif code == NO_SCHEMA:
            say_coordination_off(event, session, f"schema missing: run {script_cmd()} init")
        elif getattr(e, "pgcode", None) in ("57014", "55P03"):
            say_coordination_off(event, session, "database too slow")
    finally:
        cancel_deadline()
        for k, v in saved_env.items():      # leave the environment as found (matters when run in-process)
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return OK


# The hooks' view of their instance: identity plus the lifecycle and off-switch state.
# the hooks are switched off for instance i (`clambake off`, for its session or its project)
HOOKS_OFF_SQL = ("i.hooks_off_at IS NOT NULL OR EXISTS (SELECT 1 FROM clambake.hooks_off h "
                 "WHERE h.project = i.project)")
HOOK_ME_COLS = (f"{INSTANCE_COLS}, i.hook_seen_at, i.client_pid, i.stop_reminded, i.resumed_at, "
                f"({HOOKS_OFF_SQL}) AS hooks_off")
HOOK_ME_SQL = f"SELECT {HOOK_ME_COLS} FROM clambake.instances i WHERE {{by}} ORDER BY i.last_heartbeat DESC LIMIT 1"


def hook_me(session, instance_id=None):
    """This session's instance (or, for a hook run without a session id, the instance by id)."""
    if instance_id:
        return q(HOOK_ME_SQL.format(by="i.instance_id = %s"), (instance_id,), one=True)
    if not session:
        return None
    return q(HOOK_ME_SQL.format(by="i.session_key = %s"), (session,), one=True)


def client_pid():
    """The Claude Code process running this hook: our parent, or the parent's parent when the parent is
    the shell Claude Code ran the hook command with (Linux: read from /proc; elsewhere the parent)."""
    ppid = os.getppid()
    try:
        with open(f"/proc/{ppid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm in ("sh", "bash", "dash", "zsh", "ash", "busybox"):
            return int(stat[stat.rindex(")") + 1:].split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return ppid


def transcript_dir(data):
    """The directory of the session's transcript (Claude Code keeps one per project directory, so it
    stays the same when the agent changes directory)."""
    path = data.get("transcript_path")
    if not path or not isinstance(path, str):
        return None
    d = os.path.dirname(path.replace("\\", "/"))
    return d.lower() if os.name == "nt" else d


def hook_cwd_of(data):
    cwd = data.get("new_cwd") or data.get("cwd") or os.getcwd()
    try:
        return real_dir(str(cwd))
    except (OSError, ValueError):
        return str(cwd)


def adopt_handover(session, wd, tdir, cpid):
    """After /clear: the new session takes over the instance the cleared one handed over.  Paired by
    host and transcript directory (the cwd may have changed), preferring the same Claude Code process,
    most recent handover first; without a transcript path, by host and working directory."""
    return q("UPDATE clambake.instances SET session_key = %(sk)s, handed_over_at = NULL, status = 'active', "
             "last_heartbeat = now() WHERE instance_id = ("
             " SELECT instance_id FROM clambake.instances WHERE starts_with(session_key, %(cleared)s) "
             " AND host = %(host)s AND handed_over_at > now() - make_interval(secs => %(win)s) "
             f" AND {LIVE} "
             " AND (CASE WHEN %(tdir)s::text IS NOT NULL AND transcript_dir IS NOT NULL "
             "      THEN transcript_dir = %(tdir)s ELSE working_dir = %(wd)s END) "
             " ORDER BY (client_pid = %(pid)s) DESC NULLS LAST, handed_over_at DESC LIMIT 1 "
             " FOR UPDATE SKIP LOCKED) RETURNING instance_id",
             {"sk": session, "cleared": CLEARED, "host": hostname(), "win": HANDOVER_WINDOW_S,
              "tdir": tdir, "wd": wd, "pid": cpid, "live": live_window()}, one=True)


def fork_parent(session, cpid):
    """A session id this Claude Code process has not used before, moments after it resumed another
    session: a fork (`--fork-session`).  Returns the parent instance, or None."""
    return q("SELECT instance_id, project, session_key, started_at, resumed_at, "
             "EXISTS (SELECT 1 FROM clambake.claims c WHERE c.instance_id = i.instance_id) AS has_claims "
             "FROM clambake.instances i WHERE host = %(host)s AND client_pid = %(pid)s "
             "AND session_key IS DISTINCT FROM %(sk)s AND NOT starts_with(coalesce(session_key, ''), %(cleared)s) "
             "AND resumed_at > now() - make_interval(secs => %(win)s) ORDER BY resumed_at DESC LIMIT 1",
             {"host": hostname(), "pid": cpid, "sk": session, "cleared": CLEARED,
              "win": FORK_WINDOW_S}, one=True)


def hook_register(data, session, known_only=False):
    """Find or create this session's instance (DESIGN §4 lifecycle):
    - known session key (resume, compact, a later hook): the same instance, project kept;
    - SessionStart `clear`: adopt the instance the cleared session handed over;
    - a fork of a session resumed moments ago in the same process: a new instance in its project;
    - a session that ended earlier (`claude --resume ID`): its instance id and project again;
    - else a new instance, project from the directory.
    The caller has found no instance of `session` (hook_me) -> the row.  `known_only`: only a known
    session's instance, in one statement -> (its row, updated): (None, False) for an unknown session, (the
    row as it is, False) when its hooks are switched off."""
    wd = hook_cwd_of(data)
    model = data.get("model")
    if isinstance(model, dict):
        model = model.get("id") or model.get("display_name")
    model = one_line(model, MAX_NAME) if model else None
    project = project_from_dir(wd)
    explicit = os.environ.get(ENV_INSTANCE) if not session else None
    source = str(data.get("source") or "")
    cpid, tdir = client_pid(), transcript_dir(data)
    restore, keep_project = None, True
    if known_only:
        return register_instance(project, wd, None, model, session, client=(cpid, tdir), keep_project=True,
                                 resumed=source == "resume", returning=HOOK_ME_COLS, known_only=True,
                                 unless=HOOKS_OFF_SQL)
    if session:
        if source == "clear":
            adopt_handover(session, wd, tdir, cpid)
        if hook_me(session) is None:
            parent = fork_parent(session, cpid) if source != "clear" else None
            ended = q("DELETE FROM clambake.ended_sessions WHERE session_key = %s RETURNING instance_id, project",
                      (session,), one=True)
            if parent is not None and ended is None:
                project, keep_project = parent["project"], False
                if not parent["has_claims"] and parent["started_at"] >= parent["resumed_at"] - timedelta_s(5):
                    # the parent was only revived by this process's SessionStart (resume) before it
                    # switched to the forked session id: nobody runs it, so it goes again
                    end_session(parent, "its session was forked; the parent is not running here")
                else:
                    q("UPDATE clambake.instances SET status = 'idle', resumed_at = NULL WHERE instance_id = %s",
                      (parent["instance_id"],))
            elif ended is not None:
                restore = ended
    row, _ = register_instance(project, wd, None, model, session, explicit, keep_project=keep_project,
                               restore=restore, client=(cpid, tdir), resumed=source == "resume",
                               returning=HOOK_ME_COLS)
    return row


def timedelta_s(seconds):
    import datetime
    return datetime.timedelta(seconds=seconds)


def export_instance(instance_id):
    path = os.environ.get("CLAUDE_ENV_FILE")
    if not path:
        return
    line = f"export {ENV_INSTANCE}={instance_id}\n"
    text = ""
    try:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if line.strip() in (ln.strip() for ln in text.splitlines()):
                return
        except (OSError, ValueError):
            pass
        with open(path, "a", encoding="utf-8") as f:
            # another hook may have left its last line unterminated: never glue ours onto it
            f.write(("\n" if text and not text.endswith("\n") else "") + line)
    except OSError:
        pass


class Briefing:
    """Lines under a hard character cap; required lines are kept, optional ones dropped when full."""

    def __init__(self, cap):
        self.cap = cap
        self.lines = []
        self.size = 0
        self.dropped = 0

    def add(self, line, required=False, limit=None):
        """Add a line; optional ones only while the total stays within the cap (and `limit`)."""
        n = len(line) + 1
        if self.size + n > min(self.cap, limit or self.cap) and not required:
            self.dropped += 1
            return False
        self.lines.append(line)
        self.size += n
        return True

    def room(self):
        return self.cap - self.size

    def text(self):
        return "\n".join(self.lines)


def project_off(project):
    return bool(project) and q("SELECT EXISTS (SELECT 1 FROM clambake.hooks_off WHERE project = %s) AS off",
                               (project,), one=True)["off"]


def hook_session_start(data, session, args):
    # a known session (resume, compact) is updated in the statement that finds it
    me, updated = hook_register(data, session, known_only=True) if session else (None, False)
    if me is not None and not updated:
        return                          # switched off (`clambake off`): silent
    if me is None:
        if project_off(project_from_dir(hook_cwd_of(data))):
            return
        me = hook_register(data, session)
    if me["hooks_off"]:
        return
    export_instance(me["instance_id"])
    raw_cap = os.environ.get(ENV_BRIEFING_MAX, "")
    cap = max(500, int(raw_cap)) if raw_cap.isdigit() else 6000
    text, seen = build_briefing(me, cap, source=str(data.get("source") or "startup"))
    # the messages shown are read now, and the hooks are seen working: one statement
    q("WITH r AS (INSERT INTO clambake.message_receipts (message_id, instance_id) "
      "  SELECT unnest(%(seen)s::int[]), %(me)s ON CONFLICT DO NOTHING) "
      "UPDATE clambake.instances SET hook_seen_at = now() WHERE instance_id = %(me)s",
      {"seen": seen, "me": me["instance_id"]})
    hook_output("SessionStart", text)


def briefing_data(me):
    """Everything the briefing lists, in ONE statement (json lists): claims, open blockers without a
    resource, up to 200 unread messages (not marked read), 12 other live instances, 15 key project
    memories and 6 global notes."""
    p = dict(deliver_params(me), live=live_window(), lim=200, olim=12)
    return q("SELECT " + json_list(CLAIMS_SQL + " ORDER BY c.claimed_at") + " AS claims, "
             + json_list(OPEN_BLOCKERS_SQL + " AND m.resource IS NULL AND m.from_instance <> %(me)s "
                         "ORDER BY m.created_at") + " AS blockers, "
             + json_list(inbox_peek_sql()) + " AS inbox, "
             + json_list(LIVE_OTHERS_SQL) + " AS others, "
             + json_list(f"SELECT {RECALL_COLS} FROM {MEMORY_OF['project']} WHERE mem.scope = 'project' "
                         f"AND mem.project = %(project)s AND mem.status = 'active' "
                         f"ORDER BY {MEMORY_TYPE_RANK}, mem.updated_at DESC LIMIT 15") + " AS project_memory, "
             + json_list(f"SELECT {RECALL_COLS} FROM {MEMORY_OF['global']} WHERE mem.scope = 'global' "
                         "AND mem.status = 'active' AND mem.memory_type IN ('convention', 'infrastructure', "
                         f"'lesson') ORDER BY {MEMORY_TYPE_RANK}, mem.updated_at DESC LIMIT 6") + " AS global_notes",
             p, one=True)


def build_briefing(me, cap, source="startup"):
    """-> (the briefing's text, ids of the messages it showed)."""
    more = f"More: {script_cmd()} status | inbox | recall --search WORDS | recall --id N"
    b = Briefing(max(cap - len(more) - 40, 400))      # keep room for the footer (and its dropped-lines note)
    iid, project = me["instance_id"], me["project"]
    b.add(f"clambake: you are instance {iid} (project {project}, dir {me['working_dir']}); "
          f"session {source}. Commands: {script_cmd()} <command>.", required=True)
    data = briefing_data(me)
    claims = data["claims"]
    if claims:
        b.add(f"Active claims ({len(claims)}), exclusive until done/expiry:", required=True)
        compact = len(claims) > 20
        for c in claims:
            who = "you" if c["instance_id"] == iid else f"{c['instance_id']} ({c['project']})"
            ref = f" (#{c['message_id']})" if c["message_id"] else ""
            if compact:
                b.add(f"- {c['resource']}: {who}, {ago(c['age'])}: {one_line(c['reason'], 30)}{ref}", required=True)
            else:
                b.add(f"- {c['resource']}: {who}, {ago(c['age'])}, expires in {span(c['expires_in'])}: "
                      f"{one_line(c['reason'], 60)}{ref}", required=True)
    open_blockers = data["blockers"]
    if open_blockers:
        b.add(f"Open blockers without a resource ({len(open_blockers)}):", required=True)
        for m in open_blockers:
            b.add(f"- #{m['id']} {m['from_instance']} -> {m['to_target']}, {ago(m['age'])}: "
                  f"{one_line(m['subject'], 80)}", required=True)
    # the few commands an agent needs, first of the optional lines (hooks do register/heartbeat/deregister)
    b.add("How: claim = send --type blocker --resource RES --subject WHY; release = send --type done --resource "
          "RES --subject OK; reply = send --reply-to ID --subject TEXT; learned = remember --type gotcha "
          "--title T --content TEXT")
    # What is left after the required lines is shared out, so that a busy inbox cannot crowd out the
    # other sections: messages up to 40%, instances up to 55%, project memory up to 85% (unused room
    # passes on to the next section).
    base, room0 = b.size, max(b.room(), 0)

    def upto(share):
        return base + int(room0 * share)
    above = {c["message_id"] for c in claims if c["message_id"]} | {m["id"] for m in open_blockers}
    msgs = data["inbox"]
    shown = [m["id"] for m in msgs if m["id"] in above]      # blockers listed above: shown, not repeated
    msgs = [m for m in msgs if m["id"] not in above]
    if msgs:
        b.add(f"Unread messages for you ({len(msgs)}{'+' if len(msgs) >= 200 else ''}), most urgent first"
              + (" (blockers above not repeated)" if shown else "") + ":", required=True)
        for m in msgs:
            urgent = m["message_type"] == "blocker" and not m["resolved_at"]   # resolved: optional, or it grows
            line = (f"- #{m['id']} {m['message_type']} from {m['from_instance'] or '?'} {ago(m['age'])}"
                    + (f" [{m['resource']}]" if m["resource"] else "")
                    + (" (resolved)" if m["message_type"] == "blocker" and m["resolved_at"] else "")
                    + f": {one_line(m['subject'], 90)}")
            if m["body"] and b.room() > 1500:
                line += f" -- {one_line(m['body'], 140)}"
            if m["message_type"] == "request":
                line += reply_hint(m)
            if b.add(line, required=urgent, limit=upto(0.4)):
                shown.append(m["id"])
        hidden = sum(1 for m in msgs if m["id"] not in shown)
        if hidden:
            b.add(f"  ({hidden} more unread: {script_cmd()} inbox)", required=True)
    others = data["others"]
    if others:
        b.add(f"Other live instances ({others[0]['total']}):", limit=upto(0.55))
        for o in others:
            b.add(f"- {o['instance_id']} ({o['project']}) {o['status']}, {ago(o['hb_age'])}"
                  + (f": {one_line(o['current_task'], 60)}" if o["current_task"] else ""), limit=upto(0.55))
    else:
        b.add("No other live instances.")
    mems = data["project_memory"]
    if mems:
        b.add(f"Project memory ({project}), key entries:", limit=upto(0.85))
        for r in mems:
            b.add(f"- #{r['id']} {r['memory_type']}: {one_line(r['title'], 80)} -- {one_line(r['content'], 100)}",
                  limit=upto(0.85))
    glob = data["global_notes"]
    if glob:
        b.add("Global notes:")
        for r in glob:
            b.add(f"- #{r['id']} {r['memory_type']}: {one_line(r['title'], 80)} -- {one_line(r['content'], 80)}")
    text, dropped = b.text(), b.dropped
    note_cut = "(briefing cut to its size cap: run status and inbox for the rest)"
    tail_room = len(more) + 40          # the footer, with its "(N lines left out for size)"
    if len(text) + 1 + tail_room > cap:
        # only required lines (claims, open blockers, unread blockers) can get here: keep the cap anyway
        cut = text[: max(0, cap - tail_room - len(note_cut) - 2)]
        cut = cut[: cut.rfind("\n") + 1]
        dropped += text.count("\n") - cut.count("\n") + 1
        text = cut + note_cut
    tail = more + (f" ({dropped} lines left out for size)" if dropped else "")
    # mark read only what the agent was actually shown (claim lines name their blocker as "(#id)")
    seen = [mid for mid in shown if re.search(rf"#{mid}\b", text)]
    return text + "\n" + tail, seen


# The hooks' throttled heartbeat, as a CTE to run in the same round trip as the hook's query.
HOOK_BEAT_CTE = ("beat AS (UPDATE clambake.instances SET last_heartbeat = now() "
                 "WHERE {who} AND last_heartbeat < now() - make_interval(secs => %(thr)s) RETURNING 1)")
# ... with the session's working directory kept current from the hook JSON's cwd (one UPDATE: two
# data-modifying CTEs must not change the same row).
HOOK_BEAT_CWD_CTE = ("beat AS (UPDATE clambake.instances SET working_dir = coalesce(%(wd)s, working_dir), "
                     "last_heartbeat = CASE WHEN last_heartbeat < now() - make_interval(secs => %(thr)s) "
                     "THEN now() ELSE last_heartbeat END WHERE instance_id = %(me)s "
                     "AND (last_heartbeat < now() - make_interval(secs => %(thr)s) "
                     "     OR working_dir IS DISTINCT FROM coalesce(%(wd)s, working_dir)) RETURNING 1)")


def reply_hint(m):
    """How to answer a request (shown with every request the hooks deliver)."""
    return f" (reply: {script_cmd()} send --reply-to {m['id']} --subject \"...\")"


def hook_news(me, data, urgent=False):
    """What is new for me since the hooks last showed anything: new claims and resource-less blockers
    of other instances, unread messages (with `urgent`: only blockers, warnings and requests to me).
    Shown messages are marked read.  Returns the lines (empty: nothing new)."""
    throttle = env_duration(ENV_HOOK_THROTTLE, 60)
    wd = hook_cwd_of(data) if data.get("cwd") else None
    p = dict(deliver_params(me), thr=throttle, seen=me["hook_seen_at"] or me["started_at"], live=live_window(),
             wd=wd)
    only = URGENT_SQL if urgent else ""
    # one round trip: heartbeat (throttled), working directory, and "is anything new since the last injection?"
    news = q(f"WITH {HOOK_BEAT_CWD_CTE} SELECT (SELECT count(*) FROM beat) AS wrote, "
             # a capped count, not EXISTS: for EXISTS the planner bets on finding a row early and scans
             # the whole table when everything is read (160 ms at a million messages)
             f"{UNREAD_COUNT_SQL.format(where=only)} > 0 AS unread, "
             f"EXISTS (SELECT 1 FROM clambake.claims c WHERE c.instance_id <> %(me)s AND c.claimed_at > %(seen)s "
             f"  AND c.expires_at > now()) AS claims, "
             f"EXISTS (SELECT 1 FROM clambake.messages m WHERE m.message_type = 'blocker' AND m.resource IS NULL "
             f"  AND m.resolved_at IS NULL AND m.from_instance <> %(me)s AND m.created_at > %(seen)s "
             f"  AND m.expires_at > now()) AS blockers", p, one=True)
    if not (news["unread"] or news["claims"] or news["blockers"]):
        return []
    lines, announced = [], {}
    if news["claims"]:
        for c in q(CLAIMS_SQL + " AND c.instance_id <> %(me)s AND c.claimed_at > %(seen)s ORDER BY c.claimed_at "
                   "LIMIT 10", p):
            lines.append(f"clambake: new claim: {claim_line(c)}" + (f" (#{c['message_id']})" if c["message_id"] else ""))
            announced[c["resource"]] = len(lines) - 1
    if news["blockers"]:
        for m in q(OPEN_BLOCKERS_SQL + " AND m.resource IS NULL AND m.from_instance <> %(me)s "
                   "AND m.created_at > %(seen)s ORDER BY m.created_at LIMIT 5", p):
            lines.append(f"clambake: new blocker #{m['id']} from {m['from_instance']}: {one_line(m['subject'], 90)}")
            announced[m["id"]] = len(lines) - 1
    if news["unread"]:
        rows, remaining = fetch_inbox(me, 5, where=only)
        for m in rows:
            # a blocker already announced above (as a claim or a new blocker): add its body there, once
            at = announced.get(m["id"] if not m["resource"] else m["resource"]) \
                if m["message_type"] == "blocker" else None
            if at is not None:
                if m["body"]:
                    lines[at] += f" -- {one_line(m['body'], 120)}"
                continue
            lines.append(f"clambake: #{m['id']} {m['message_type']} from {m['from_instance'] or '?'}"
                         + (f" [{m['resource']}]" if m["resource"] else "") + f": {one_line(m['subject'], 90)}"
                         + (f" -- {one_line(m['body'], 120)}" if m["body"] else "")
                         + (reply_hint(m) if m["message_type"] == "request" else ""))
        if remaining:
            lines.append(f"clambake: {remaining} more {'urgent ' if urgent else ''}unread: {script_cmd()} inbox")
    q("UPDATE clambake.instances SET hook_seen_at = now() WHERE instance_id = %s", (me["instance_id"],))
    return lines


def hook_prompt(data, session, args):
    me = hook_me(session)
    if me is None:
        if project_off(project_from_dir(hook_cwd_of(data))):
            return
        me = hook_register(data, session)
        if me is None:
            return
    if me["hooks_off"]:
        return
    lines = hook_news(me, data)
    if lines:
        hook_output("UserPromptSubmit", "\n".join(lines))


def hook_post_tool(data, session, args):
    """Mid-turn delivery: after a tool call (at most every CLAMBAKE_DELIVERY_INTERVAL), what is new and
    urgent; silent when nothing is."""
    me = hook_me(session)
    if me is None or me["hooks_off"]:
        return
    lines = hook_news(me, data, urgent=True)
    if lines:
        hook_output("PostToolUse", "\n".join(lines))


def hook_stop(data, session, args):
    """Before the agent ends its turn: remind it, once, of claims it still holds and of unread requests
    addressed to it (Stop `decision: block` with the reminder as `reason`; Claude Code then continues the
    turn once with stop_hook_active set, which cmd_hook answers with silence)."""
    me = hook_me(session)
    if me is None or me["hooks_off"]:
        return
    mine = q("SELECT resource, extract(epoch FROM now() - claimed_at)::float AS age, "
             "extract(epoch FROM expires_at - now())::float AS expires_in, "
             "extract(epoch FROM claimed_at)::bigint AS at FROM clambake.claims "
             "WHERE instance_id = %s AND expires_at > now() ORDER BY claimed_at LIMIT 20", (me["instance_id"],))
    fingerprint = ",".join(f"{c['resource']}@{c['at']}" for c in mine) or None
    requests, more = fetch_inbox(me, 5, where=DIRECT_REQUEST_SQL)
    lines = []
    if mine and fingerprint != me["stop_reminded"]:
        held = ", ".join(f"{c['resource']} ({ago(c['age'])}, expires in {span(c['expires_in'])})" for c in mine)
        lines.append(f"clambake: before you stop: you still hold {held}. Release what you are done with: "
                     f"{script_cmd()} send --type done --resource {quote_arg(mine[0]['resource'])} "
                     f"--subject \"...\" (or say why you keep it).")
    for m in requests:
        lines.append(f"clambake: unread request #{m['id']} from {m['from_instance'] or '?'}: "
                     f"{one_line(m['subject'], 90)}" + (f" -- {one_line(m['body'], 120)}" if m["body"] else "")
                     + reply_hint(m))
    if more:
        lines.append(f"clambake: {more} more unread requests: {script_cmd()} inbox")
    if not lines:
        return
    q("UPDATE clambake.instances SET stop_reminded = %s WHERE instance_id = %s", (fingerprint, me["instance_id"]))
    hook_output("Stop", top={"decision": "block", "reason": "\n".join(lines)})


def hook_subagent_start(data, session, args):
    """A subagent starts: tell it who it works for, how to run clambake, and the active claims."""
    me = hook_me(session)
    if me is None or me["hooks_off"]:
        return
    iid = me["instance_id"]
    agent = one_line(data.get("agent_type") or "subagent", 40)
    lines = [f"clambake: you are a subagent ({agent}) of instance {iid} (project {me['project']}); your Bash "
             f"commands act as {iid}. Commands: {script_cmd()} <command>. Before changing a shared resource: "
             f"{script_cmd()} check RESOURCE (exit 1: held by another session); leave claims to the main agent."]
    claims = q(CLAIMS_SQL + " ORDER BY c.claimed_at LIMIT 20", {"live": live_window()})
    if claims:
        lines.append(f"Active claims ({len(claims)}):")
        for c in claims:
            who = f"{iid} (your parent)" if c["instance_id"] == iid else f"{c['instance_id']} ({c['project']})"
            lines.append(f"- {c['resource']}: {who}, {ago(c['age'])}: {one_line(c['reason'], 60)}")
    else:
        lines.append("No active claims.")
    hook_output("SubagentStart", "\n".join(lines))


def hook_cwd(data, session, args):
    """CwdChanged: keep the instance's working directory current (silent)."""
    if session and data.get("new_cwd"):
        wd = hook_cwd_of(data)
        q("UPDATE clambake.instances SET working_dir = %s WHERE session_key = %s AND working_dir IS DISTINCT FROM %s",
          (wd, session, wd))


# the guard's classification (PROTOCOL.md "Guard"): what a tool call may change.  A shell command is cut
# into parts (; && || | & newlines, subshells, $(...), backticks, bash -c "...", sudo/env/... stripped)
# and each part judged on its own by its program.

GUARD_SHELL_TOOLS = {"Bash": "sh", "Monitor": "sh", "PowerShell": "ps"}     # tool -> dialect of "command"
GUARD_FILE_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit")          # MultiEdit: older Claude Code

# programs that only read or inspect (files, processes, the network): their arguments are data
GUARD_READERS = frozenset("""
cat tac less more most head tail grep egrep fgrep zgrep rg ag ack wc diff cmp comm file stat ls dir vdir tree du df
find locate which whereis type man help info apropos echo printf true false test [ pwd whoami id date sleep cal
md5sum sha1sum sha256sum sha512sum cksum b2sum base64 xxd hexdump od strings nl bat batcat view jq column cut sort
uniq tr fold fmt paste join expand unexpand rev readlink realpath basename dirname printenv seq yes
ps pgrep pidof top htop btop uptime free vmstat iostat lsof fuser ss netstat nc ncat netcat telnet ping traceroute
curl wget http https nslookup dig host ip ifconfig nmap openssl journalctl dmesg last
cd pushd popd export set unset alias unalias local declare typeset readonly shift return exit wait jobs read
umask ulimit hash history trap shopt : psql mysql mongosh sqlite3 pg_isready pg_dump pg_dumpall mysqldump
get-content gc select-string sls get-childitem gci get-item gi test-path resolve-path get-process gps
get-service gsv get-nettcpconnection get-command gcm get-location gl write-output host write-host
measure-object select-object where-object sort-object group-object format-table format-list ft fl out-host
out-string out-null compare-object tasklist findstr where set-location sl
""".split())
# readers that write the file given to one of these options (curl -o FILE)
GUARD_OUTPUT_OPTIONS = {"sort": ("-o", "--output"), "curl": ("-o", "--output"), "wget": ("-O", "--output-document"),
                        "git": ("--output",)}
# readers that turn into writers of their operands with an in-place option (sed -i)
GUARD_INPLACE = {"sed": ("-i", "--in-place"), "perl": ("-i",), "ruby": ("-i",), "yq": ("-i", "--inplace"),
                 "gawk": ("-i",), "awk": ("-i",), "prettier": ("--write", "-w"), "eslint": ("--fix",),
                 "gofmt": ("-w",), "clang-format": ("-i",), "ruff": ("format", "--fix"), "sd": ()}
# programs that change the paths they are given: "all" operands, or only the "last" (the destination)
GUARD_WRITERS = {
    **dict.fromkeys("rm rmdir unlink shred touch truncate chmod chown chgrp chattr setfacl mkdir tee mv patch "
                    "black isort autopep8 rustfmt dos2unix unix2dos sponge "
                    "vi vim nvim gvim nano pico micro emacs emacsclient ed ex joe kate gedit code "
                    "code-insiders codium cursor subl notepad notepad++ write wordpad "
                    "tee-object remove-item ri del erase rd set-content add-content ac clear-content clc out-file "
                    "new-item ni md move-item mi move rename-item rni ren set-item si clear-item cli".split(),
                    "all"),
    **dict.fromkeys("cp ln install rsync scp copy-item cpi copy xcopy robocopy".split(), "last"),
    "dd": "of",
}
# options of writers that take a value (the value is no operand)
GUARD_VALUE_OPTIONS = {"sed": ("-e", "-f", "--expression", "--file"), "perl": ("-e", "-E", "-M", "-I"),
                       "truncate": ("-s", "--size", "-r", "--reference"), "install": ("-m", "-o", "-g", "--mode"),
                       "rsync": ("-e", "--rsh", "--exclude", "--include", "--filter"), "chmod": ("--reference",),
                       "chown": ("--reference",), "tee": (), "mkdir": ("-m", "--mode"),
                       "sudo": ("-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"),
                       "env": ("-u", "--unset", "-C", "--chdir", "-S"), "nice": ("-n",), "ionice": ("-c", "-n"),
                       "timeout": ("-s", "--signal", "-k", "--kill-after"), "xargs": ("-I", "-n", "-P", "-d", "-L",
                                                                                        "-s", "-E", "-a")}
# commands run through another program: skipped to judge the one they run
GUARD_WRAPPERS = frozenset("sudo doas env nohup time nice ionice timeout stdbuf xargs command exec builtin watch "
                           "npx pnpx bunx uvx winpty chronic caffeinate".split())
# tools with subcommands: the read-only ones (multi-word keys like "compose logs"); `names`: a changing
# subcommand (or only these ones) also acts on the names it is given (docker restart api); `files`: subcommands that write
# the paths they are given (git checkout -- FILE); `opts`: global options that take a value
_DOCKER_RO = {"ps", "logs", "inspect", "images", "version", "info", "stats", "top", "port", "diff", "events",
              "history", "search", "help", "image ls", "image list", "image inspect", "image history",
              "container ls", "container list", "container inspect", "container logs", "container top",
              "container stats", "container port", "container diff", "network ls", "network inspect", "volume ls",
              "volume inspect", "context ls", "context show", "context inspect", "system df", "system info",
              "system events", "node ls", "service ls", "service ps", "service logs", "service inspect",
              "stack ls", "stack ps", "stack services", "manifest inspect", "buildx ls", "buildx inspect",
              "buildx version", "buildx du", "compose ps", "compose logs", "compose config", "compose ls",
              "compose images", "compose top", "compose version", "compose port", "compose events"}
_DOCKER_OPTS = ("-H", "--host", "--context", "-c", "--config", "-l", "--log-level", "-f", "--file", "-p",
                "--project-name", "--profile", "--env-file", "--project-directory", "--ansi", "--progress")
_SCRIPT_RUNS = {"run", "run-script", "exec", "start", "stop", "restart", "dlx"}   # npm run docker:up
GUARD_TOOLS = {
    "docker": {"ro": _DOCKER_RO, "names": True, "files": {"cp", "container cp", "compose cp"},
               "opts": _DOCKER_OPTS, "groups": {"compose", "image", "container", "network", "volume", "context",
                                                "system", "node", "service", "stack", "manifest", "buildx"}},
    "docker-compose": {"ro": {"ps", "logs", "config", "images", "top", "version", "port", "events", "ls", "help"},
                       "names": True, "files": {"cp"}, "opts": _DOCKER_OPTS},
    "git": {"ro": {"log", "show", "diff", "status", "blame", "grep", "ls-files", "ls-tree", "ls-remote", "rev-parse",
                   "rev-list", "describe", "shortlog", "reflog", "cat-file", "show-ref", "whatchanged", "help",
                   "version", "annotate", "name-rev", "for-each-ref", "count-objects", "fsck", "check-ignore",
                   "merge-base", "range-diff", "format-patch", "fetch"},
            "names": False, "files": {"checkout", "restore", "rm", "mv", "reset", "stash", "clean", "apply",
                                      "am", "switch"},
            "opts": ("-C", "-c", "--git-dir", "--work-tree", "--namespace")},
    "kubectl": {"ro": {"get", "describe", "logs", "top", "explain", "version", "api-resources", "api-versions",
                       "cluster-info", "diff", "auth can-i", "config view", "config get-contexts",
                       "config current-context", "events", "wait"},
                "names": True, "files": {"cp"}, "opts": ("-n", "--namespace", "--context", "--kubeconfig",
                                                         "--cluster", "--user", "-s", "--server"),
                "groups": {"auth", "config"}},
    "helm": {"ro": {"list", "ls", "status", "get", "history", "show", "template", "lint", "search", "version",
                    "env", "repo list", "help"}, "names": True, "opts": ("-n", "--namespace", "--kube-context",
                                                                         "--kubeconfig"), "groups": {"repo"}},
    "systemctl": {"ro": {"status", "show", "is-active", "is-enabled", "is-failed", "cat", "list-units",
                         "list-unit-files", "list-timers", "list-sockets", "list-dependencies", "help"},
                  "names": True, "opts": ("-H", "--host", "-M", "--machine", "-t", "--type", "-p", "--property",
                                          "--state", "-n", "--lines", "-o", "--output")},
    "service": {"ro": {"status", "--status-all"}, "names": True, "verb_last": True},
    "rc-service": {"ro": {"status"}, "names": True, "verb_last": True},
    "sc": {"ro": {"query", "queryex", "qc", "qdescription", "qfailure", "enumdepend"}, "names": True},
    "net": {"ro": {"view", "use", "user", "share", "config", "statistics", "accounts"}, "names": True},
    "launchctl": {"ro": {"list", "print", "blame", "help"}, "names": True},
    "brew": {"ro": {"list", "ls", "info", "search", "outdated", "deps", "uses", "config", "doctor", "leaves",
                    "services list", "services info", "help"}, "names": True, "groups": {"services"}},
    "npm": {"ro": {"ls", "list", "view", "info", "show", "outdated", "search", "help", "why", "explain", "audit",
                   "config get", "config list", "doctor", "root", "bin", "prefix", "whoami", "ping"},
            "names": _SCRIPT_RUNS, "groups": {"config"}},
    "pnpm": {"ro": {"ls", "list", "view", "info", "outdated", "why", "audit", "help"}, "names": _SCRIPT_RUNS},
    "yarn": {"ro": {"list", "info", "why", "outdated", "audit", "help"}, "names": True},
    "pip": {"ro": {"list", "show", "freeze", "check", "search", "index", "help", "config list", "debug", "inspect"},
            "names": False, "groups": {"config"}},
    "gh": {"ro": set(), "names": False},
    "glab": {"ro": set(), "names": False},
    "redis-cli": {"ro": {"ping", "info", "get", "mget", "keys", "scan", "ttl", "pttl", "type", "exists",
                         "monitor", "dbsize", "llen", "lrange", "hget", "hgetall", "smembers", "scard", "zrange",
                         "strlen", "--scan", "client list", "config get", "slowlog get", "memory usage"},
                  "names": True, "opts": ("-h", "-p", "-a", "-n", "-u", "--user", "--pass")},
    "pg_ctl": {"ro": {"status"}, "names": True, "opts": ("-D", "-l", "-o", "-m", "-t", "-s")},
    "pg_ctlcluster": {"ro": {"status"}, "names": True, "verb_last": True},
}
for _alias, _tool in (("podman", "docker"), ("nerdctl", "docker"), ("podman-compose", "docker-compose"),
                      ("pip3", "pip"), ("k", "kubectl"), ("oc", "kubectl"), ("service.exe", "service")):
    GUARD_TOOLS[_alias] = GUARD_TOOLS[_tool]
# programs that change a named resource other than their own name
GUARD_PROGRAM_RESOURCES = {"docker-compose": ("docker",), "dockerd": ("docker",), "podman": ("docker",),
                           "kubectl": ("kubernetes", "k8s"), "helm": ("kubernetes", "k8s"),
                           "pg_ctl": ("postgres", "postgresql"), "pg_ctlcluster": ("postgres", "postgresql"),
                           "pg_upgrade": ("postgres", "postgresql"), "redis-cli": ("redis",),
                           "nginx": ("nginx",), "apachectl": ("apache", "httpd")}
# system locations whose subdirectory named like a resource is that resource's state or configuration
GUARD_SYSTEM_DIRS = ("/etc/", "/var/lib/", "/var/run/", "/run/", "/opt/", "/usr/local/etc/", "/library/",
                     "c:/programdata/", "c:/program files/")
# other names of the same thing (a claim on postgres covers `systemctl restart postgresql`)
GUARD_NAME_ALIASES = {"postgres": ("postgresql",), "postgresql": ("postgres",), "kubernetes": ("k8s",),
                      "k8s": ("kubernetes",), "docker": ("docker-desktop", "com.docker.service")}
# programs that stop or kill what their arguments name (processes, services, ports)
GUARD_KILLERS = frozenset("kill pkill killall taskkill skill stop-process spps kill-port fkill "
                          "restart-service stop-service start-service suspend-service resume-service set-service "
                          "remove-service new-service".split())
GUARD_SHELLS = {"bash": "sh", "sh": "sh", "zsh": "sh", "dash": "sh", "ksh": "sh", "fish": "sh", "cmd": "sh",
                "powershell": "ps", "pwsh": "ps", "wsl": "sh"}
# PowerShell verbs that only read (Get-Content, Test-Path, Select-String...)
GUARD_READER_VERBS = ("get-", "test-", "select-", "measure-", "format-", "show-", "find-", "search-", "resolve-",
                      "convertto-", "convertfrom-", "write-", "read-", "compare-", "wait-", "out-host", "out-string")
GUARD_KEYWORDS = frozenset("if then else elif fi do done while until for case esac in select function ! { } time "
                           "coproc".split())

_PLAIN_SH = _LazyRe(r"[^\s'\"\\`$<>|&;(){}#]+")
_PLAIN_PS = _LazyRe(r"[^\s'\"`$<>|&;(){}#*@]+")
_PLAIN_DQ = _LazyRe(r"[^\"\\`$]+")
_PIECES = _LazyRe(r"[/\\=:,@\s'\"()$`;<>|&{}\[\]]+")


def program_name(word, suffixes=(".exe",)):
    """The program a command word names: its last path component (after / or \\), without one of
    `suffixes` (C:\\Program Files\\Docker\\docker.exe -> docker)."""
    name = word.replace("\\", "/").rpartition("/")[2]
    for suffix in suffixes:
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


_IDENT_START = _ASCII_LETTERS | frozenset("_")
_IDENT_CHARS = _IDENT_START | _DIGITS


def is_assignment(word):
    """A shell variable assignment (NAME=value, NAME+=value) before a command?"""
    name, eq, _ = word.partition("=")
    name = name[:-1] if name.endswith("+") else name
    return bool(eq) and name[:1] in _IDENT_START and _IDENT_CHARS.issuperset(name)


def port_hits(word, port):
    """Does this argument name `port` (8080, :8080, localhost:8080, -p 8080:80, --port=8080, 8080/tcp)?"""
    return bool(re.search(r"(?<![\w.])" + str(port) + r"(?![\w.])", word))


def _name_forms(name):
    return (name,) + GUARD_NAME_ALIASES.get(name, ())


def name_hits(word, name, how="strict"):
    """Does this word name the resource `name`?  "strict": one of its pieces (split at / = : , @ and
    the like) is the name; "target" (what kill or systemctl restart is given): also docker.service,
    dockerd, docker.exe; "program": the program docker, dockerd, docker-compose, /usr/bin/docker."""
    w = word.lower()
    forms = _name_forms(name)
    if how == "program":
        w = program_name(w, (".exe", ".cmd", ".bat", ".com", ".ps1"))
        return any(w in (f, f + "d", f + "ctl") or w.startswith((f + "-", f + "_")) for f in forms)
    for piece in _PIECES.split(w):
        if how == "target":
            bare = re.sub(r"\.(service|socket|timer|target|exe)$|\.?\*$", "", piece)
            if piece in forms or any(bare in (f, f + "d") for f in forms):
                return True
            if has_glob(piece):            # Get-Process docker* | Stop-Process
                import fnmatch
                if any(fnmatch.fnmatchcase(f, piece) for f in forms):
                    return True
        elif piece in forms:
            return True
    return False


def config_write_hits(path, name):
    """Does writing `path` change the named resource?  When its last component is the name (rm -rf
    /var/lib/docker), or it lies in the name's directory under a system location (/etc/docker/daemon.json,
    C:/ProgramData/Docker/config, ~/.docker/config.json); a project's docker/Dockerfile does not."""
    p = path_key(path, None, True)
    parts = [x for x in p.split("/") if x]
    if not parts:
        return False
    forms = _name_forms(name)
    if parts[-1] in forms:
        return True
    home = path_key(os.path.expanduser("~"), None, True).rstrip("/") + "/"
    roots = [(r, r.strip("/").count("/") + 1) for r in GUARD_SYSTEM_DIRS] + [(home, home.strip("/").count("/") + 1)]
    for root, depth in roots:
        below = parts[depth:depth + 1]
        if p.startswith(root) and below and below[0].lstrip(".") in forms and (root != home or below[0][0] == "."):
            return True
    return False


def _cmd_words(words, dialect):
    """(the words of the command that really runs, the VAR=value assignments before it): keywords and
    wrappers (sudo, env, timeout 10, nice -n 5, xargs...) stripped."""
    i, assigns = 0, []
    while i < len(words):
        w = words[i]
        lw = w.lower()
        if dialect == "sh" and is_assignment(w):
            assigns.append(w)
            i += 1
            continue
        if lw in GUARD_KEYWORDS:
            i += 1
            continue
        base = program_name(lw)
        if base == "command" and i + 1 < len(words) and words[i + 1] in ("-v", "-V"):
            return [], assigns
        if base in GUARD_WRAPPERS and i + 1 < len(words):
            i += 1
            value_opts = GUARD_VALUE_OPTIONS.get(base, ())
            while i < len(words) and (words[i].startswith("-") or (base == "env" and "=" in words[i])):
                i += 2 if words[i] in value_opts else 1
            if base in ("timeout", "watch") and i < len(words) and re.match(r"^[\d.]+[smhd]?$", words[i]):
                i += 1
            continue
        return words[i:], assigns
    return [], assigns


def _subcommand(tool, args):
    """(key, operands after it) of a tool call like `docker compose -f x.yml logs api`: global options
    and their values skipped; for grouped tools two words (`compose logs`)."""
    spec = GUARD_TOOLS[tool]
    opts = spec.get("opts", ())
    words, i = [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and "=" not in a and a.lower() in opts:
            i += 2
            continue
        if a.startswith("-") and not (not words and a in spec["ro"]):
            i += 1
            continue
        words.append(a.lower())
        i += 1
        if len(words) == 2 or (len(words) == 1 and words[0] not in spec.get("groups", ())):
            break
    if spec.get("verb_last"):        # service docker restart
        rest = [a.lower() for a in args if not a.startswith("-")]
        if "--status-all" in args:
            return "--status-all", []
        return (rest[1] if len(rest) > 1 else ""), args
    return " ".join(words), args[i:]


def _operands(prog, args):
    """A writer's path operands (its options and their values left out)."""
    value_opts = GUARD_VALUE_OPTIONS.get(prog, ())
    out, i, script = [], 0, prog in ("sed", "perl")
    while i < len(args):
        a = args[i]
        if a == "--":
            out.extend(args[i + 1:])
            break
        if a.startswith("-") and len(a) > 1:
            if a in value_opts:
                script = False if a in ("-e", "-f", "--expression", "--file", "-E") else script
                i += 2
                continue
            i += 1
            continue
        out.append(a)
        i += 1
    if script and out:               # sed -i 's/a/b/' FILE: the first operand is the script
        out = out[1:]
    return out


def _merge(eff, sub):
    for k in ("writes", "acts", "programs", "nested"):
        eff[k] += sub[k]
    return eff


def part_effects(words, redirects, dialect="sh", depth=0):
    """What one simple command may change: {"writes": [(path, recursive)], "acts": [(word, how)] naming
    things it changes (names by name_hits(how), ports), "programs": [programs run as changers],
    "nested": [(command text, dialect)] run by it (bash -c "...")}."""
    eff = {"writes": [(t, False) for t in redirects], "acts": [], "programs": [], "nested": []}
    words, assigns = _cmd_words(words, dialect)
    if not words:
        return eff
    prog_word = words[0]
    prog = program_name(prog_word.lower(), (".exe", ".cmd", ".bat", ".com"))
    args = words[1:]
    flags = [a.lower() for a in args]
    if prog in GUARD_SHELLS and depth < 4:
        for flag in ("-c", "/c", "-command", "/k", "-lc", "-ic"):
            if flag in flags:
                inner = args[flags.index(flag) + 1:]
                if GUARD_SHELLS[prog] == "sh" and prog != "cmd":
                    inner = inner[:1]
                eff["nested"].append((" ".join(inner), GUARD_SHELLS[prog]))
                return eff
        if prog == "wsl" and args:
            return _merge(eff, part_effects(args, [], "sh", depth + 1))
        if not args or all(a.startswith("-") for a in args):
            return eff
    if prog in ("clambake", "clambake.py") or (prog.startswith(("python", "py", "uv", "pipx")) and any(
            re.split(r"[/\\]", a)[-1] in ("clambake", "clambake.py") for a in flags[:3])):
        return eff                                   # clambake's own check, wait, send...
    if prog in GUARD_TOOLS:
        spec = GUARD_TOOLS[prog]
        key, rest = _subcommand(prog, args)
        if key in spec.get("files", ()):
            eff["writes"] += [(a, False) for a in _operands(prog, rest)]
        if key in spec["ro"] or not args or key in ("--version", "-v", "version", "--help", "-h"):
            return eff
        eff["programs"].append(prog)
        names = spec["names"] if isinstance(spec["names"], bool) else key in spec["names"]
        eff["acts"] += [(a, "target" if names else "port") for a in assigns + args]
        return eff
    if prog in GUARD_KILLERS or (prog == "fuser" and any(re.match(r"^-\w*k", a) for a in args)):
        eff["acts"] += [(a, "target") for a in args]
        return eff
    if prog == "find":
        start = []
        for a in args:
            if a.startswith(("-", "(", "!")):
                break
            start.append(a)
        start = start or ["."]
        if "-delete" in args:
            eff["writes"] += [(s, True) for s in start]
        for flag in ("-exec", "-execdir", "-ok", "-okdir"):
            if flag in args:
                cmd = args[args.index(flag) + 1:]
                cmd = cmd[:next((k for k, a in enumerate(cmd) if a in (";", "+")), len(cmd))]
                for s in start:
                    _merge(eff, part_effects([s if a == "{}" else a for a in cmd], [], dialect, depth + 1))
        return eff
    if prog in GUARD_INPLACE:
        opts = GUARD_INPLACE[prog]
        if prog in ("sed", "perl", "ruby"):
            inplace = any(a == "--in-place" or a.startswith("--in-place=") or re.match(r"^-[A-Za-z]*i", a)
                          for a in args)
        else:
            inplace = not opts or any(a in opts for a in flags)
        if inplace:
            eff["writes"] += [(a, False) for a in _operands(prog, [a for a in args if a.lower() not in opts])]
        return eff
    if prog in GUARD_WRITERS:
        how = GUARD_WRITERS[prog]
        operands = _operands(prog, args)
        recursive = any(re.match(r"^-[a-zA-Z]*[rR]", a) and not a.startswith("--") or a in ("--recursive",
                                                                                          "-recurse")
                        for a in (args if dialect == "sh" else flags))
        if how == "of":
            operands = [a[3:] for a in args if a.startswith("of=")]
        elif how == "last":
            k = flags.index("-destination") if "-destination" in flags else -1
            operands = [args[k + 1]] if 0 <= k < len(args) - 1 else operands[-1:]
        eff["writes"] += [(a, recursive) for a in operands]
        return eff
    if prog in GUARD_READERS or prog.startswith(GUARD_READER_VERBS):
        if prog in ("nc", "ncat", "netcat") and any(re.match(r"^-\w*l", a) for a in args):
            eff["acts"] += [(a, "port") for a in args]           # nc -l PORT listens
        outs = GUARD_OUTPUT_OPTIONS.get(prog, ())
        for k, a in enumerate(args):
            if a in outs and k + 1 < len(args):
                eff["writes"].append((args[k + 1], False))
            elif "=" in a and a.split("=", 1)[0] in outs:
                eff["writes"].append((a.split("=", 1)[1], False))
        return eff
    # anything else (scripts, interpreters, build tools, servers) may change whatever it names; an argument
    # with spaces is prose (a title, a message, code) unless it starts with a command: ssh host "docker ..."
    eff["programs"].append(prog_word)
    for a in args:
        if re.search(r"\s", a.strip()):
            first = re.split(r"[/\\]", a.split()[0].lower())[-1]
            if depth < 4 and (first in GUARD_TOOLS or first in GUARD_KILLERS or first in GUARD_WRITERS
                              or first in GUARD_SHELLS or first in GUARD_WRAPPERS):
                eff["nested"].append((a, dialect))
    args = [a for a in args if not re.search(r"\s", a.strip())]
    eff["acts"] += [(a, "strict") for a in assigns + args]
    eff["writes"] += [(a.split("=", 1)[1] if a.startswith("-") else a, False) for a in args
                      if not a.startswith("-") or "=" in a]
    return eff


def _substitution(command, i):
    """The command substitution starting at command[i] - $(...), <(...), >(...) or `...` - as
    (index just past it, the command inside)."""
    if command[i] == "`":
        j = command.find("`", i + 1)
        j = len(command) if j < 0 else j
        return j + 1, command[i + 1:j]
    j = _close(command, i + 2, "(", ")")
    return j, command[i + 2:j - 1]


def _close(text, i, open_ch, close_ch):
    """Index just after the bracket closing text[i-1] (quotes and nesting respected)."""
    depth, quote = 1, None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"':
                i += 1
        elif ch in "'\"":
            quote = ch
        elif ch == "\\":
            i += 1
        elif ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def shell_parts(command, dialect="sh"):
    """A shell command line as simple commands: [(words, redirect targets, piped from the one before)],
    split at ; & && || | |&,
    newlines, ( ) { }; the commands inside $(...), `...`, <(...) come as parts of their own (their text
    also stays in the word, for ports and names); here-document bodies are data and skipped.  `dialect`
    "ps" is PowerShell: backtick escapes, no backslash escapes, & is the call operator."""
    parts, words, redirects, nested = [], [], [], []
    cur, in_word, pending, heredocs, piped = [], False, None, [], False
    ps = dialect == "ps"
    esc = "`" if ps else "\\"
    i, n = 0, len(command)

    def end_word():
        nonlocal cur, in_word, pending
        if in_word:
            w = "".join(cur)
            if pending == "redirect":
                redirects.append(w)
            elif pending == "heredoc":
                heredocs.append(w)
            elif pending != "data":
                words.append(w)
            pending = None
        cur, in_word = [], False

    def end_part(pipe=False):
        nonlocal words, redirects, piped
        end_word()
        if words or redirects:
            parts.append((words, redirects, piped))
        words, redirects, piped = [], [], pipe

    plain = _PLAIN_PS if ps else _PLAIN_SH
    while i < n:
        m = plain.match(command, i)
        if m:                                        # a run of ordinary characters at once
            cur.append(m.group())
            in_word = True
            i = m.end()
            continue
        ch = command[i]
        if ch == "\n":
            end_part()
            i += 1
            for delim in heredocs:                   # skip the here-document body up to its delimiter
                while i < n:
                    j = command.find("\n", i)
                    line = command[i:] if j < 0 else command[i:j]
                    i = n if j < 0 else j + 1
                    if line.strip("\t ") == delim:
                        break
            heredocs.clear()
            continue
        if ch in " \t\r":
            end_word()
            i += 1
            continue
        if ch == "#" and not in_word:
            j = command.find("\n", i)
            i = n if j < 0 else j
            continue
        if ps and ch == "@" and command[i + 1:i + 2] in ("'", '"') and command[i + 2:i + 3] in ("\n", "\r"):
            end = command.find("\n" + command[i + 1] + "@", i + 2)
            in_word, cur = True, cur + ["@here"]
            i = n if end < 0 else end + 3
            continue
        if ch == esc and i + 1 < n:
            nxt = command[i + 1]
            if nxt == "\n":
                i += 2
                continue
            if ps or nxt in " \t'\"\\;&|<>()$`*?[]{}#~!":
                cur.append(nxt)
            else:                                     # F:\Docker\x: keep the backslash (a Windows path)
                cur.append(ch + nxt)
            in_word = True
            i += 2
            continue
        if ch == "'":
            j = i + 1
            while True:
                k = command.find("'", j)
                if k < 0:
                    k = n
                    break
                if ps and command[k + 1:k + 2] == "'":
                    j = k + 2
                    continue
                break
            cur.append(command[i + 1:k].replace("''", "'") if ps else command[i + 1:k])
            in_word = True
            i = k + 1
            continue
        if ch == '"':
            i += 1
            while i < n and command[i] != '"':
                m = _PLAIN_DQ.match(command, i)
                if m:
                    cur.append(m.group())
                    i = m.end()
                    continue
                c = command[i]
                if c == esc and i + 1 < n:
                    cur.append(command[i + 1] if ps or command[i + 1] in '"\\$`' else c + command[i + 1])
                    i += 2
                    continue
                if (c == "$" and command[i + 1:i + 2] == "(") or (c == "`" and not ps):
                    j, inner = _substitution(command, i)
                    nested.append(inner)
                    cur.append(command[i:j])
                    i = j
                    continue
                cur.append(c)
                i += 1
            in_word = True
            i += 1
            continue
        if (ch in "$<>" and command[i + 1:i + 2] == "(" and not (ch in "<>" and ps)) or (ch == "`" and not ps):
            j, inner = _substitution(command, i)
            nested.append(inner)
            cur.append(command[i:j])
            in_word = True
            i = j
            continue
        if ch in "<>" or (ch == "&" and command[i + 1:i + 2] == ">") or (ch == "*" and ps and
                                                                       command[i + 1:i + 2] == ">"):
            if in_word and re.fullmatch(r"\d+", "".join(cur)):
                cur, in_word = [], False             # 2>file: the fd number is no word
            end_word()
            j = i
            while j < n and command[j] in "<>&|*":
                j += 1
            op = command[i:j]
            if op.endswith("&") and j < n and (command[j].isdigit() or command[j] == "-"):
                while j < n and (command[j].isdigit() or command[j] == "-"):
                    j += 1                           # 2>&1, >&-: a descriptor, not a file
                i = j
                continue
            if op.startswith("<<<"):
                pending = "data"
            elif op.startswith("<<"):
                pending = "heredoc"
            elif ">" in op:
                pending = "redirect"
            else:
                pending = "data"                     # < FILE is read
            i = j
            continue
        if ch == "{" and command[i + 1:i + 2] == "}":      # find -exec rm {} ;
            cur.append("{}")
            in_word = True
            i += 2
            continue
        if ps and ch == "(" and (words or in_word):    # Stop-Process -Id (Get-NetTCPConnection ...).Id
            j = _close(command, i + 1, "(", ")")
            nested.append(command[i + 1:j - 1])
            cur.append(command[i:j])
            in_word = True
            i = j
            continue
        if ch in ";|&\n(){}" and not (ch in "{}" and in_word):
            if ps and ch == "&" and command[i + 1:i + 2] != "&" and not in_word:
                i += 1                               # & "C:\path\tool.exe": the call operator
                continue
            end_part(pipe=ch == "|" and command[i + 1:i + 2] != "|")
            i += 1
            continue
        cur.append(ch)
        in_word = True
        i += 1
    end_part()
    for inner in nested:
        parts.extend(shell_parts(inner, dialect))
    return parts


def command_effects(command, dialect="sh", depth=0):
    """Every part's effects (part_effects) for a whole command line, bash -c "..." followed inside."""
    out, before = [], []
    for words, redirects, piped in shell_parts(command, dialect):
        lower = [w.lower() for w in words[:3]]
        if piped and ("xargs" in lower or (dialect == "ps" and lower[:1] and (lower[0] in GUARD_WRITERS
                                                                           or lower[0] in GUARD_KILLERS))):
            # lsof -ti:8080 | xargs kill, Get-Process docker | Stop-Process: it gets what came before
            words = words + before[1:]
        eff = part_effects(words, redirects, dialect, depth)
        shell = GUARD_SHELLS.get(program_name(words[0].lower())) if words else None
        if piped and shell and before[:1] and before[0].lower() in ("echo", "printf", "write-output"):
            eff["nested"].append((" ".join(before[1:]), shell))     # echo "docker compose down" | bash
        before = words
        out.append(eff)
        for text, inner in eff["nested"]:
            if depth < 4:
                out.extend(command_effects(text, inner, depth + 1))
    return out


def tool_effects(tool, tool_input):
    """The parts' effects of one tool call (Bash, Monitor, PowerShell: its command; Write, Edit,
    NotebookEdit: the file it writes); [] for tools that change nothing."""
    if tool in GUARD_SHELL_TOOLS:
        return command_effects(str(tool_input.get("command") or ""), GUARD_SHELL_TOOLS[tool])
    if tool in GUARD_FILE_TOOLS:
        path = str(tool_input.get("file_path") or tool_input.get("notebook_path") or tool_input.get("path") or "")
        return [{"writes": [(path, False)], "acts": [], "programs": [], "nested": []}] if path else []
    return []


def effects_hit(effects, resource, cwd=None):
    """Does one of these parts (tool_effects) change `resource`?"""
    kind, value = resource_kind(resource)
    for eff in effects:
        if kind == "port":
            if any(port_hits(w, value) for w, _ in eff["acts"]):
                return True
        elif kind == "name":
            if any(name_hits(p, value, "program") or value in GUARD_PROGRAM_RESOURCES.get(p.lower(), ())
                   for p in eff["programs"]):
                return True
            if any(how != "port" and name_hits(w, value, how) for w, how in eff["acts"]):
                return True
            if any(config_write_hits(p, value) for p, _ in eff["writes"]):
                return True
        elif any(path_hits(p, value, kind, cwd, tree) for p, tree in eff["writes"]):
            return True
    return False


def resource_hits(resource, tool, tool_input, cwd=None):
    """May this tool call change `resource`?  Shell tools by what each part of the command does; file
    tools by the path they write (relative paths against `cwd`, the hook JSON's)."""
    return effects_hit(tool_effects(tool, tool_input), resource, cwd)


def hook_pre_tool(data, session, args):
    tool = str(data.get("tool_name") or "")
    tool_input = data.get("tool_input") if isinstance(data.get("tool_input"), dict) else {}
    if tool not in GUARD_SHELL_TOOLS and tool not in GUARD_FILE_TOOLS:
        return
    p = {"live": live_window(), "sk": session, "thr": env_duration(ENV_HOOK_THROTTLE, 60)}
    # a long autonomous turn has no prompts: every tool call keeps the session live (throttled), so its
    # claims are not taken from it mid-operation.  One round trip with the claims query.
    claims = q("WITH " + HOOK_BEAT_CTE.format(who="%(sk)s::text IS NOT NULL AND session_key = %(sk)s") + " "
               + CLAIMS_SQL + " AND i.session_key IS DISTINCT FROM %(sk)s ORDER BY c.claimed_at", p)
    if not claims:
        return
    me = hook_me(session) if session else None
    explicit = os.environ.get(ENV_INSTANCE) if not session else None
    mine = {me["instance_id"]} if me else set()
    if explicit:
        mine.add(explicit)
    effects = tool_effects(tool, tool_input)
    cwd = str(data.get("cwd") or "") or None
    for c in claims:
        if c["instance_id"] not in mine and effects_hit(effects, c["resource"], cwd):
            if me["hooks_off"] if me else project_off(project_from_dir(hook_cwd_of(data))):
                return                  # switched off (`clambake off`): the guard too
            hook_output("PreToolUse", permissionDecision="deny", permissionDecisionReason=deny_reason(c))
            return


def deny_reason(c):
    """Two short lines: who holds what since when and why; the one command to run."""
    return (f"clambake: {one_line(c['resource'], 100)} is claimed by {c['instance_id']} "
            f"({one_line(c['project'], 60)}) {ago(c['age'])}"
            + (f": {one_line(c['reason'], 80)}" if c["reason"] else "") + "\n"
            f"wait for it: {script_cmd()} wait --resource {quote_arg(c['resource'])} --timeout 110s")


def hook_session_end(data, session, args):
    """SessionEnd.  `clear`: hand the instance (claims, project, inbox) over to the session /clear starts;
    `resume` (/resume switches to another session): keep it, idle, for when this session is resumed;
    any other reason: the session is over: deregister, remembering its id and project for
    `claude --resume`.  Runs even when the hooks are switched off, so no claims are left behind."""
    me = hook_me(session)
    if me is None:
        return
    reason = str(data.get("reason") or "")
    if reason == "clear":
        # if no new session adopts it (within HANDOVER_WINDOW_S), it goes stale like any silent instance
        q("UPDATE clambake.instances SET session_key = %s || session_key, handed_over_at = now(), "
          "client_pid = %s, transcript_dir = coalesce(%s, transcript_dir) WHERE instance_id = %s",
          (CLEARED, client_pid(), transcript_dir(data), me["instance_id"]))
        log_action(me["instance_id"], me["project"], "note", "session cleared (/clear): kept for the next session")
        return
    if reason == "resume":
        q("UPDATE clambake.instances SET status = 'idle', resumed_at = NULL WHERE instance_id = %s",
          (me["instance_id"],))
        log_action(me["instance_id"], me["project"], "note", "left for another session (/resume): kept, idle")
        return
    end_session(me, f"session ended ({one_line(reason or 'exit', 40)})")


# off / on: the hooks' switch (PROTOCOL.md "Switching the hooks off")

def switch_target(args):
    """(scope, project, me) named by off/on: --project [NAME] or (the default) --session."""
    if args.project is not None:
        me = whoami(args, required=False)
        name = args.project.strip() if args.project else None
        project = norm_project(name) if name else (me["project"] if me else project_from_dir(real_dir(os.getcwd())))
        check_text(project, "project", MAX_NAME, required=True)
        return "project", project, me
    me = whoami(args)
    return "session", me["project"], me


def cmd_off(args):
    scope, project, me = switch_target(args)
    with transaction():
        if scope == "project":
            q("INSERT INTO clambake.hooks_off (project, set_by) VALUES (%s, %s) ON CONFLICT (project) DO UPDATE "
              "SET set_by = excluded.set_by, set_at = now()", (project, me["instance_id"] if me else None))
        else:
            q("UPDATE clambake.instances SET hooks_off_at = coalesce(hooks_off_at, now()) WHERE instance_id = %s",
              (me["instance_id"],))
        log_action(me["instance_id"] if me else None, project, "note",
                   f"hooks switched off for {'project ' + project if scope == 'project' else 'this session'}")
    undo = f"{script_cmd()} on --{scope}" + (f" {quote_arg(project)}" if scope == "project" else "")
    if args.json:
        emit_json({"off": True, "scope": scope, "project": project,
                   "instance_id": me["instance_id"] if scope == "session" else None})
    elif scope == "project":
        emit(f"hooks off for project {project}: every session's hooks stay silent there (no briefing, delivery, "
             f"guard or reminders); undo: {undo}")
    else:
        emit(f"hooks off for this session ({me['instance_id']}): no briefing, delivery, guard or reminders; "
             f"undo: {undo}")
    return OK


def cmd_on(args):
    scope, project, me = switch_target(args)
    with transaction():
        if scope == "project":
            n = len(q("DELETE FROM clambake.hooks_off WHERE project = %s RETURNING project", (project,)))
        else:
            n = len(q("UPDATE clambake.instances SET hooks_off_at = NULL WHERE instance_id = %s "
                      "AND hooks_off_at IS NOT NULL RETURNING instance_id", (me["instance_id"],)))
        if n:
            log_action(me["instance_id"] if me else None, project, "note",
                       f"hooks switched on for {'project ' + project if scope == 'project' else 'this session'}")
    env_off = os.environ.get(ENV_SWITCH, "").strip().lower() in OFF_WORDS
    if args.json:
        emit_json({"off": False, "scope": scope, "project": project, "changed": bool(n),
                   "instance_id": me["instance_id"] if scope == "session" else None})
    else:
        what = f"project {project}" if scope == "project" else f"this session ({me['instance_id']})"
        emit(f"hooks on for {what}" + ("" if n else " (they were not off)")
             + (f"; note: {ENV_SWITCH}=off in this environment still silences them here" if env_off else ""))
    return OK


# install-hooks / uninstall-hooks

def claude_config_dir():
    """Claude Code's user configuration directory: CLAUDE_CONFIG_DIR, else ~/.claude."""
    return os.environ.get("CLAUDE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".claude")


def settings_path(args):
    if args.project or args.local:
        base = os.environ.get("CLAUDE_PROJECT_DIR") or os.getcwd()
        return os.path.join(base, ".claude", "settings.local.json" if args.local else "settings.json")
    return os.path.join(claude_config_dir(), "settings.json")


def managed_settings_path():
    if os.name == "nt":
        return os.path.join(os.environ.get("ProgramFiles", r"C:\Program Files"), "ClaudeCode", "managed-settings.json")
    if sys.platform == "darwin":
        return "/Library/Application Support/ClaudeCode/managed-settings.json"
    return "/etc/claude-code/managed-settings.json"


def inert_hooks_warnings(written):
    """Settings that make the hooks inert: disableAllHooks in any settings file Claude Code reads here, or
    allowManagedHooksOnly in the managed settings (only managed hooks run then)."""
    base = os.environ.get("CLAUDE_PROJECT_DIR") or os.getcwd()
    files = [os.path.join(claude_config_dir(), "settings.json"), os.path.join(base, ".claude", "settings.json"),
             os.path.join(base, ".claude", "settings.local.json"), managed_settings_path()]
    out = []
    for path in dict.fromkeys(files):
        try:
            _, data = load_settings(path)
        except ClambakeError:
            continue
        if data.get("disableAllHooks") is True:
            out.append(f"{path} sets disableAllHooks: no hook runs, clambake's included")
        if path == managed_settings_path() and data.get("allowManagedHooksOnly") is True \
                and path != written:
            out.append(f"{path} sets allowManagedHooksOnly: hooks outside the managed settings do not run")
    return out


def is_our_hook(h):
    cmd = h.get("command") if isinstance(h, dict) else None
    return isinstance(cmd, str) and "clambake" in cmd and re.search(
        r"\bhook (" + "|".join(re.escape(e) for e in HOOK_EVENTS) + r")\b", cmd) is not None


# Without an installed command, hooks run this (see hook_command).  No quote characters inside, so that one single-quoted word means the same to sh, Git Bash and PowerShell.
HOOK_LOADER = ("import importlib.util as u,sys;p=sys.argv[1];s=u.spec_from_file_location(p[-11:-3],p);"
               "m=u.module_from_spec(s);s.loader.exec_module(m);sys.exit(m.main(sys.argv[2:]))")


def hook_line(words, windows=False, bash=True):
    """(command line, shell or None) that runs `words` as a hook.  Words are single-quoted where needed (both
    bash and PowerShell read that literally); on Windows paths get forward slashes.  PowerShell takes a quoted
    first word for a string, not a command: it needs `& 'C:/...' args` and "shell": "powershell", which is
    written only when Git Bash is absent (a first word with no spaces works in both shells as it is)."""
    words = [shell_path(w, windows) if i == 0 or os.path.isabs(w) or (windows and re.match(r"^([A-Za-z]:|\\\\)", w))
             else shell_quote(w) for i, w in enumerate(words)]
    if windows and not bash and words[0].startswith("'"):
        return "& " + " ".join(words), "powershell"
    return " ".join(words), None


def git_bash_present():
    return bool(os.environ.get("CLAUDE_CODE_GIT_BASH_PATH")) or any(
        os.path.isfile(os.path.join(os.environ.get(v, r"C:\Program Files"), "Git", "bin", "bash.exe"))
        for v in ("ProgramFiles", "ProgramW6432", "LOCALAPPDATA"))


def hook_command(sub, portable=False):
    """The hook's command line and shell.  portable: the same text on every machine (`clambake hook ...`,
    found on PATH), for a shared project settings file.  Else the installed console script by absolute path,
    or this interpreter loading this file as a module: Python then uses the cached bytecode in __pycache__
    instead of compiling the whole file on every prompt and tool call (about 14 ms of a 65 ms call)."""
    if portable:
        return f"clambake hook {sub}", None
    exe = installed_command()
    words = [exe, "hook", sub] if exe else [sys.executable, "-c", HOOK_LOADER, os.path.abspath(__file__), "hook", sub]
    windows = os.name == "nt"
    return hook_line(words, windows, bash=not windows or git_bash_present())


def precompile():
    """Write the compiled code of clambake.py and of every part now, where load() finds it, even under
    PYTHONDONTWRITEBYTECODE (then nothing else writes it, and every hook would compile its parts); best effort."""
    import py_compile
    for path in [os.path.abspath(__file__)] + [asset_path(f"clambake_{part}.py") for part in PARTS]:
        try:
            py_compile.compile(path, doraise=True)
        except Exception:
            pass


def strip_our_hooks(settings):
    """Remove clambake's hook entries (and only those); returns how many were removed."""
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return 0
    removed = 0
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept_groups = []
        for g in groups:
            if isinstance(g, dict) and isinstance(g.get("hooks"), list):
                ours = [h for h in g["hooks"] if is_our_hook(h)]
                if ours:
                    removed += len(ours)
                    rest = [h for h in g["hooks"] if not is_our_hook(h)]
                    if not rest:
                        continue
                    g = dict(g, hooks=rest)
            kept_groups.append(g)
        if kept_groups:
            hooks[event] = kept_groups
        elif groups:          # emptied by us
            del hooks[event]
    if not hooks:
        del settings["hooks"]
    return removed


def load_settings(path):
    try:
        with open(path, encoding="utf-8") as f:
            raw = f.read()
    except FileNotFoundError:
        return None, {}
    except OSError as e:
        raise ClambakeError(f"cannot read {path}: {e.strerror}", REFUSED) from None
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        raise ClambakeError(f"{path} is not valid JSON ({e}); fix it first, nothing was changed", REFUSED) from None
    if not isinstance(data, dict):
        raise ClambakeError(f"{path} does not hold a JSON object; nothing was changed", REFUSED)
    return raw, data


def write_settings(path, raw, data):
    import shutil
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if raw is not None:
        shutil.copyfile(path, path + ".clambake.bak")
    tmp = path + ".clambake.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


CLAUDE_MD_BEGIN = "<!-- clambake:begin (written by `install-hooks --claude-md`; `uninstall-hooks` removes it) -->"
CLAUDE_MD_END = "<!-- clambake:end -->"


def claude_md_block():
    c = script_cmd()
    return "\n".join([
        CLAUDE_MD_BEGIN,
        "## Clambake: coordination with other Claude Code sessions",
        "Hooks register this session, brief it, deliver messages and guard claimed resources: do not run",
        "register, heartbeat or deregister yourself.",
        f"- Claim before a risky change (docker, a shared file, a port): `{c} send --to @all --type blocker "
        "--resource NAME --subject \"why\"` (refused: someone holds it; `check NAME`, `wait --resource NAME`).",
        f"- Release when done: `{c} send --to @all --type done --resource NAME --subject \"done\"`.",
        f"- Reply to a request: `{c} send --reply-to ID --subject \"answer\"`.",
        f"- Keep what you learned: `{c} remember --type gotcha --title \"...\" --content \"...\"`; "
        f"find it: `{c} recall --search WORDS`.",
        CLAUDE_MD_END])


def edit_claude_md(add, dry_run=False):
    """Add (or refresh) or remove clambake's block in the user-level CLAUDE.md -> what was done, or None."""
    path = os.path.join(claude_config_dir(), "CLAUDE.md")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    except OSError as e:
        raise ClambakeError(f"cannot read {path}: {e.strerror}", REFUSED) from None
    m = re.search(re.escape(CLAUDE_MD_BEGIN.split(" (")[0]) + r".*?" + re.escape(CLAUDE_MD_END) + r"\n?", text, re.S)
    rest = (text[:m.start()] + text[m.end():]) if m else text
    if add:
        new = rest.rstrip("\n") + ("\n\n" if rest.strip() else "") + claude_md_block() + "\n"
    else:
        new = rest.rstrip("\n") + "\n" if rest.strip() else ""
    if new == text or (not add and not m):
        return None
    if not dry_run:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".clambake.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(new)
        os.replace(tmp, path)
    return f"{'added clambake block to' if add else 'removed clambake block from'} {path}"


def settings_env(with_password):
    """The connection settings in effect, as a settings file's "env" object (hooks read them from there).
    A password only when asked; otherwise libpq finds it in the password file (pgpass)."""
    env = {}
    dsn = os.environ.get(ENV_DSN)
    if dsn:
        ext = psycopg2_module().extensions
        make_dsn, parse_dsn = ext.make_dsn, ext.parse_dsn
        parts = parse_dsn(dsn)
        if not with_password:
            parts.pop("password", None)
        env[ENV_DSN] = make_dsn(**parts)
        return env
    for key, (name, default) in ENV_DB.items():
        if key == "password" and not with_password:
            continue
        env[name] = os.environ.get(name) or default
    return env


def cmd_install_hooks(args):
    path = settings_path(args)
    if args.project and not installed_command():
        raise ClambakeError(f"{path} is shared through the repository: without an installed `clambake` "
                            "command the hooks would name this machine's paths", REFUSED,
                            hint=f"use --local (.claude/settings.local.json, not committed), or install clambake "
                                 f"(pipx install {os.path.dirname(os.path.abspath(__file__))}) and run "
                                 "`clambake install-hooks --project`")
    if args.claude_md and (args.project or args.local):
        raise ClambakeError("--claude-md writes the user-level CLAUDE.md: use it without --project/--local", USAGE)
    raw, data = load_settings(path)
    strip_our_hooks(data)
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ClambakeError(f"{path}: \"hooks\" is not an object; nothing was changed", REFUSED)
    for sub, (event, matcher, timeout) in HOOK_EVENTS.items():
        command, shell = hook_command(sub, portable=args.project)
        hook = {"type": "command", "command": command, "timeout": timeout}
        if shell:
            hook["shell"] = shell
        group = {"hooks": [hook]}
        if matcher:
            group = {"matcher": matcher, **group}
        if not isinstance(hooks.get(event, []), list):
            raise ClambakeError(f"{path}: hooks.{event} is not a list; nothing was changed", REFUSED)
        hooks.setdefault(event, []).append(group)
    if args.env or args.with_password:
        if args.project:
            raise ClambakeError("--env would put this machine's connection settings into the shared project "
                                "settings", REFUSED, hint="use --env with --user or --local")
        if not isinstance(data.get("env", {}), dict):
            raise ClambakeError(f"{path}: \"env\" is not an object; nothing was changed", REFUSED)
        data.setdefault("env", {}).update(settings_env(args.with_password))
    if args.dry_run:
        emit(f"would write {path}:")
        emit(json.dumps(data, indent=2))
        if args.claude_md:
            emit(f"would write to {os.path.join(claude_config_dir(), 'CLAUDE.md')}:\n{claude_md_block()}")
        return OK
    precompile()
    if args.claude_md:
        done = edit_claude_md(True)
        if done:
            emit(done)
    for warning in inert_hooks_warnings(path):
        note("warning: " + warning)
    if raw is not None and raw.strip() and json.loads(raw) == data:
        # already installed as is: rewriting would replace the backup of the pre-clambake settings
        emit(f"clambake hooks already installed in {path}; nothing changed")
        return OK
    write_settings(path, raw, data)
    emit(f"installed clambake hooks ({', '.join(e for e, _, _ in HOOK_EVENTS.values())}) in {path}"
         + (f"; backup: {path}.clambake.bak" if raw is not None else ""))
    return OK


def cmd_uninstall_hooks(args):
    path = settings_path(args)
    raw, data = load_settings(path)
    if not (args.project or args.local):
        done = edit_claude_md(False, args.dry_run)
        if done:
            emit(("would have " if args.dry_run else "") + done)
    if raw is None:
        emit(f"nothing to remove: {path} does not exist")
        return OK
    n = strip_our_hooks(data)
    if n == 0:
        emit(f"nothing to remove: no clambake hooks in {path}")
        return OK
    if args.dry_run:
        emit(f"would remove {n} clambake hook(s) from {path}:")
        emit(json.dumps(data, indent=2))
        return OK
    write_settings(path, raw, data)
    emit(f"removed {n} clambake hook(s) from {path}; backup: {path}.clambake.bak")
    return OK
