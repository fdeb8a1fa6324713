"""clambake dashboard: the web server behind `clambake dashboard` (README: Dashboard).

A part of clambake.py (see its docstring), run in its namespace by `dashboard`, so the names used here
(q, transaction, status_data, ClambakeError...) are the core's own.  Not a module of its own.

Parts: ConnPool (a connection per request, never shared between threads), DashboardHub (the one
LISTEN connection, fanning changes out to every event stream; polling behind a transaction pooler),
DashboardCache (one query per change for any number of browsers), the API functions dash_*(), the
request handler (token, Host, CSRF and Origin checks, security headers) and serve_dashboard().
"""

DASHBOARD_PAGE = "clambake_dashboard.html"      # a data file (asset_path): the page
DASHBOARD_ACTOR = "human@dashboard"             # sender and log actor of the dashboard's writes
DASHBOARD_PAGE_SIZE = 50
DASHBOARD_SEND_TYPES = ("info", "warning", "request")
DASHBOARD_MEMORY_STATUSES = ("resolved", "superseded", "deprecated", "active")

DASHBOARD_MESSAGES_SQL = (
    f"SELECT {MESSAGE_COLS}, (SELECT count(*) FROM clambake.message_receipts r WHERE r.message_id = m.id) AS n_read, "
    "ARRAY(SELECT r.instance_id FROM clambake.message_receipts r WHERE r.message_id = m.id "
    "      ORDER BY r.read_at LIMIT 5) AS read_by, "
    "(SELECT count(*) FROM clambake.messages x WHERE x.reply_to = m.id) AS n_replies "
    "FROM clambake.messages m WHERE m.id < %(before)s "
    "AND (%(project)s::text IS NULL OR m.from_project = %(project)s "
    "     OR (m.target_kind = 'project' AND m.to_target = %(project)s)) "
    "AND (%(type)s::text IS NULL OR m.message_type = %(type)s) "
    "AND (%(thread)s::int IS NULL OR m.id = %(thread)s OR m.reply_to = %(thread)s) "
    "ORDER BY m.id DESC LIMIT %(lim)s")

DASHBOARD_COUNTS_SQL = (
    "SELECT (SELECT count(*) FROM clambake.instances) AS instances, "
    "(SELECT count(*) FROM clambake.messages WHERE expires_at > now()) AS messages, "
    # all memories, not just active ones: a count by status would read every row (100 ms at 100k)
    "(SELECT count(*) FROM clambake.project_memory) + (SELECT count(*) FROM clambake.global_memory) AS memories, "
    "(SELECT count(*) FROM clambake.session_log WHERE created_at > now() - interval '24 hours') AS log_24h, "
    "ARRAY(SELECT DISTINCT project FROM clambake.instances WHERE project IS NOT NULL ORDER BY 1 LIMIT 200) AS projects")

# what changed, for the poll fallback (no LISTEN behind a transaction pooler): one cheap statement
DASHBOARD_FINGERPRINT_SQL = (
    "SELECT (SELECT max(id) FROM clambake.messages)::text || '/' || "
    "       (SELECT count(*) FROM clambake.messages WHERE resolved_at IS NULL AND message_type = 'blocker') AS m, "
    "(SELECT count(*) || '/' || coalesce(max(last_heartbeat)::text, '') FROM clambake.instances) AS i, "
    "(SELECT count(*) || '/' || coalesce(max(claimed_at)::text, '') || '/' || coalesce(max(expires_at)::text, '') "
    " FROM clambake.claims) AS c, (SELECT max(id)::text FROM clambake.session_log) AS l, "
    "(SELECT coalesce(max(updated_at)::text, '') FROM clambake.project_memory) || '/' || "
    "(SELECT coalesce(max(updated_at)::text, '') FROM clambake.global_memory) AS k")


class ConnPool:
    """The dashboard's connections: a request checks one out (opening one when none is idle), q() in that
    thread then uses it (connect() asks the pool), and it goes back when the request ends."""

    def __init__(self, size=8):
        import queue
        import threading
        self.local = threading.local()
        self.idle = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(size)

    def connect(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            raise RuntimeError("no connection checked out in this thread")
        return c

    def __enter__(self):
        import queue
        if not self.slots.acquire(timeout=10):
            raise ClambakeError("the dashboard is busy; try again", REFUSED)
        try:
            c = self.idle.get_nowait()
        except queue.Empty:
            c = None
        try:
            self.local.conn = c if c is not None and not c.closed else open_connection()
        except BaseException:
            self.slots.release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        c, self.local.conn = self.local.conn, None
        import psycopg2.extensions as ext
        if exc_type is None or (not c.closed and c.get_transaction_status() == ext.TRANSACTION_STATUS_IDLE):
            self.idle.put(c)
        else:
            try:
                c.close()
            except Exception:
                pass
        self.slots.release()
        return False


INSTANCES_REREAD_S = 30.0     # how often pages re-read the instances (heartbeat ages) without a notification


class DashboardHub:
    """ONE listening connection for every browser: LISTEN clambake and clambake_ui, coalesce the
    notifications for 50 ms and hand each open event stream the set of tables that changed.  Behind a
    transaction pooler (or when a notification sent to itself never arrives) it polls a fingerprint
    statement every `poll` seconds instead."""

    def __init__(self, pool, poll=1.0, reread=INSTANCES_REREAD_S):
        import threading
        self.pool, self.poll, self.reread = pool, poll, reread
        self.lock = threading.Lock()
        self.streams = set()
        self.version = 0
        self.mode = "starting"
        self.stop = threading.Event()

    def subscribe(self):
        import queue
        box = queue.Queue(maxsize=64)
        with self.lock:
            self.streams.add(box)
        return box

    def unsubscribe(self, box):
        with self.lock:
            self.streams.discard(box)

    def bump(self):
        with self.lock:
            self.version += 1

    def publish(self, kinds):
        with self.lock:
            self.version += 1
            event = {"v": self.version, "kinds": sorted(kinds), "mode": self.mode}
            for box in self.streams:
                try:
                    box.put_nowait(event)
                except Exception:      # a stalled browser: it re-reads everything on its next event
                    pass

    def run(self):
        import select
        while not self.stop.is_set():
            c = None
            try:
                if _pooled["set_local"]:
                    self.poll_loop()
                    return
                c = open_connection()
                c.cursor().execute("LISTEN clambake; LISTEN clambake_ui")
                probe = "probe:" + os.urandom(6).hex()
                c.cursor().execute("SELECT pg_notify('clambake_ui', %s)", (probe,))
                if not self.wait_probe(c, probe):
                    c.close()
                    self.poll_loop()
                    return
                self.set_mode("listen")
                quiet, reread = 0, time.monotonic() + self.reread
                while not self.stop.is_set():
                    if select.select([c], [], [], 1.0)[0]:
                        time.sleep(0.05)        # coalesce a burst (one statement often fires several)
                        c.poll()
                    else:
                        quiet += 1
                        if quiet % 30 == 0:     # a silent connection may be a dead one: ask it
                            c.cursor().execute("SELECT 1")
                    kinds = {n.payload[:1] for n in c.notifies if not n.payload.startswith("probe:")}
                    c.notifies.clear()
                    if time.monotonic() >= reread:   # a bare heartbeat notifies nothing (schema.sql)
                        kinds.add("i")
                        reread = time.monotonic() + self.reread
                    if kinds:
                        self.publish(kinds)
            except Exception as e:
                if self.stop.is_set():
                    return
                self.set_mode("reconnecting")
                note(f"dashboard: listening connection lost ({classify(e)[1]}); retrying")
                self.stop.wait(2.0)
            finally:
                if c is not None and not c.closed:
                    c.close()

    def wait_probe(self, c, probe, timeout=2.0):
        import select
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            select.select([c], [], [], 0.2)
            c.poll()
            if any(n.payload == probe for n in c.notifies):
                c.notifies.clear()
                return True
        return False

    def set_mode(self, mode):
        if mode != self.mode:
            self.mode = mode
            self.publish({"i", "c", "m", "r", "l", "k"})     # everything may have changed meanwhile

    def fingerprint(self):
        with self.pool:
            return q(DASHBOARD_FINGERPRINT_SQL, one=True)

    def poll_loop(self):
        last, ticks = self.fingerprint(), 0
        self.set_mode("poll")        # after the first fingerprint: a change from now on bumps the version
        while not self.stop.wait(self.poll):
            try:
                now = self.fingerprint()
            except Exception as e:
                note(f"dashboard: poll failed ({classify(e)[1]})")
                continue
            ticks += 1
            changed = {k for k in now if now[k] != last[k]}
            if ticks % 15 == 0:
                changed |= {"r"}       # read receipts leave no cheap fingerprint: re-read now and then
            last = now
            if changed:
                self.publish(changed)


class DashboardCache:
    """GET responses by path for the current change version of the hub: a version only counts while the
    hub is listening or polling (otherwise changes may go unseen), and entries live 30 s at most."""

    def __init__(self, hub, size=256):
        import threading
        self.hub, self.size = hub, size
        self.lock = threading.Lock()
        self.entries = {}

    def get(self, key):
        with self.lock:
            e = self.entries.get(key)
        if e and e[0] == self.hub.version and self.hub.mode in ("listen", "poll") and time.monotonic() - e[1] < 30:
            return e[2]
        return None

    def put(self, key, version, body):
        with self.lock:
            if len(self.entries) >= self.size:
                self.entries.clear()
            self.entries[key] = (version, time.monotonic(), body)


def dashboard_page_parts():
    """(html template, Content-Security-Policy): the page's inline script and style are allowed by their
    hashes, nothing else runs."""
    import base64
    import hashlib
    path = asset_path(DASHBOARD_PAGE)
    try:
        with open(path, encoding="utf-8") as f:
            html = f.read()
    except OSError as e:
        raise ClambakeError(f"cannot read the dashboard page {path}: {e.strerror}", REFUSED,
                            hint="reinstall clambake: the page ships beside clambake.py") from None

    def hashes(tag):
        return " ".join("'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
                        for body in re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S))

    csp = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


def dashboard_host_ok(host_header, extra_hosts):
    """DNS rebinding defence: a browser tricked into sending a request here carries the attacker's host
    name; accept only IP literals, localhost, this machine's name and --allow-host names."""
    import ipaddress
    host = (host_header or "").strip().lower()
    if not host:
        return False
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else ""
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name in ("localhost", hostname().lower()) or name in extra_hosts


def dashboard_filters(params):
    """Query string -> memory_filters() arguments."""
    import types
    scope = params.get("scope") or "all"
    check_choice(scope, ("all", "global", "project"), "scope")
    project = norm_project(params.get("project") or "") or None
    status = params.get("status") or None
    return types.SimpleNamespace(global_=scope == "global", project=project if scope != "global" else None,
                                 all_projects=scope == "project" and not project, type=params.get("type") or None,
                                 status=status, tag=params.get("tag") or None)


def dashboard_int(params, name, default, low, high):
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        n = int(raw)
    except ValueError:
        raise ClambakeError(f"{name} must be a number", USAGE) from None
    if not low <= n <= high:
        raise ClambakeError(f"{name} must be {low}..{high}", USAGE)
    return n


def dash_overview(params):
    limit = dashboard_int(params, "limit", 100, 1, 500)
    st = status_data(None, limit, 0, dashboard_int(params, "offset", 0, 0, 100000))
    return {"status": st, "counts": q(DASHBOARD_COUNTS_SQL, one=True)}


def dash_messages(params):
    limit = dashboard_int(params, "limit", DASHBOARD_PAGE_SIZE, 1, 200)
    mtype = check_choice(params.get("type") or None, MESSAGE_TYPES, "message type")
    rows = q(DASHBOARD_MESSAGES_SQL, {"before": dashboard_int(params, "before", 2**31 - 1, 1, 2**31 - 1),
                                      "project": norm_project(params.get("project") or "") or None, "type": mtype,
                                      "thread": dashboard_int(params, "thread", None, 1, 2**31 - 1), "lim": limit + 1})
    return {"messages": [dict(message_dict(m), target_kind=m["target_kind"], resolved=m["resolved_at"] is not None,
                              read_count=m["n_read"], read_by=m["read_by"], replies=m["n_replies"])
                         for m in rows[:limit]], "more": len(rows) > limit}


def dash_message(params):
    mid = check_id(params.get("id"), "message id")
    m = q(f"SELECT {MESSAGE_COLS} FROM clambake.messages m WHERE m.id = %s", (mid,), one=True)
    if m is None:
        raise ClambakeError(f"message #{mid} not found", REFUSED)
    parent, replies = message_thread(m)
    read, unread = message_receipts(m)
    return dict(message_dict(m), parent=message_dict(parent) if parent else None,
                replies=[message_dict(r) for r in replies],
                read_by=[{"instance_id": r["instance_id"], "age_s": round(r["age"], 1)} for r in read],
                unread_by=unread)


def dash_memories(params):
    limit = dashboard_int(params, "limit", 30, 1, 100)
    offset = dashboard_int(params, "offset", 0, 0, 200 - limit)
    search = check_text(params.get("search") or None, "search", 500)
    where, p = memory_filters(dashboard_filters(params), None)
    found = recall_memories(where, p, search, limit, offset, useful_first=False)
    rows, total, method = found
    return {"method": method, "total": total, "memories": [memory_dict(r, full=False) for r in rows],
            "corrections": found.corrections, "note": found.note}


def dash_memory(params):
    scope = check_choice(params.get("scope") or None, ("project", "global"), "scope")
    return memory_dict(find_memory(check_id(params.get("id"), "memory id"), scope))


def dash_log(params):
    since = parse_duration(params["since"], "since") if params.get("since") else None
    return {"entries": history_entries(norm_project(params.get("project") or "") or None,
                                       params.get("instance") or None,
                                       (params.get("action") or "").strip().lower() or None, since, None,
                                       dashboard_int(params, "limit", DASHBOARD_PAGE_SIZE, 1, 200),
                                       dashboard_int(params, "before", None, 1, 2**31 - 1))}


def dash_send(body):
    mtype = check_choice(body.get("type") or "info", DASHBOARD_SEND_TYPES, "message type")
    subject = check_text(body.get("subject"), "subject", MAX_SUBJECT, required=True)
    text = check_text(body.get("body") or None, "body", MAX_BODY)
    kind, target = resolve_target(body.get("to") or ALL_MARK, False)
    with transaction():
        mid = insert_message(DASHBOARD_ACTOR, None, kind, target, mtype, subject, text)
        log_action(DASHBOARD_ACTOR, target if kind == "project" else None, "send",
                   f"#{mid} {mtype} to {target}: {subject}")
    return {"id": mid, "to": target, "target_kind": kind, "type": mtype}


def dash_claim(body, extend):
    resource = norm_resource(body.get("resource") or "")
    check_text(resource, "resource", MAX_NAME, required=True)
    ttl = parse_duration(body.get("ttl") or "1h", "ttl") if extend else None
    with transaction():
        held = q("SELECT c.instance_id, c.message_id, i.project FROM clambake.claims c LEFT JOIN clambake.instances i "
                 "ON i.instance_id = c.instance_id WHERE c.resource = %s FOR UPDATE OF c", (resource,), one=True)
        if held is None:
            raise ClambakeError(f"{resource} is not claimed", REFUSED)
        holder = held["instance_id"]
        if extend:
            until = q("UPDATE clambake.claims SET expires_at = greatest(expires_at, now()) + make_interval(secs => %s) "
                      "WHERE resource = %s RETURNING expires_at", (ttl, resource), one=True)["expires_at"]
            q("UPDATE clambake.messages SET expires_at = greatest(expires_at, %s) WHERE id = %s",
              (until, held["message_id"]))
            log_action(DASHBOARD_ACTOR, held["project"], "claim",
                       f"extended {holder}'s claim on {resource} by {span(ttl)} (dashboard)")
        else:
            q("DELETE FROM clambake.claims WHERE resource = %s", (resource,))
            resolve_blockers([holder], resource)
            insert_message(DASHBOARD_ACTOR, None, "instance", holder, "warning",
                           f"your claim on {resource} was released from the dashboard")
            log_action(DASHBOARD_ACTOR, held["project"], "release", f"released {holder}'s claim on {resource} "
                                                                   "(dashboard)")
    return {"resource": resource, "holder": holder, "released": not extend,
            "extended_s": ttl}


def dash_memory_status(body):
    mid = check_id(body.get("id"), "memory id")
    status = check_choice(body.get("status"), DASHBOARD_MEMORY_STATUSES, "status")
    scope = check_choice(body.get("scope") or None, ("project", "global"), "scope")
    r = find_memory(mid, scope)
    table = "clambake.global_memory" if r["scope"] == "global" else "clambake.project_memory"
    with transaction():
        # (as update-memory: any status but superseded drops the pointer to a successor)
        q(f"UPDATE {table} SET status = %(s)s, updated_at = now(), "
          f"superseded_by = CASE WHEN %(s)s = 'superseded' THEN superseded_by END WHERE id = %(id)s",
          {"s": status, "id": mid})
        log_action(DASHBOARD_ACTOR, r["project"], "update", f"#{mid} status -> {status} (dashboard)")
    return {"id": mid, "scope": r["scope"], "status": status}


DASHBOARD_GET = {"/api/overview": dash_overview, "/api/messages": dash_messages, "/api/message": dash_message,
                 "/api/memories": dash_memories, "/api/memory": dash_memory, "/api/log": dash_log}
DASHBOARD_POST = {"/api/send": dash_send, "/api/claim/release": lambda b: dash_claim(b, False),
                  "/api/claim/extend": lambda b: dash_claim(b, True), "/api/memory/status": dash_memory_status}
HTTP_STATUS = {OK: 200, REFUSED: 409, USAGE: 400, UNREACHABLE: 503, NO_SCHEMA: 503}


def make_dashboard_handler(cfg):
    """The request handler class; cfg holds the pool, hub, token, csrf secret, page and flags."""
    import hmac
    from http.server import BaseHTTPRequestHandler
    from urllib.parse import parse_qs, urlsplit

    class Handler(BaseHTTPRequestHandler):
        server_version = "clambake"
        sys_version = ""
        protocol_version = "HTTP/1.1"
        timeout = 60                          # a client that sends nothing for a minute is dropped

        def log_message(self, fmt, *a):      # quiet: one line per request would drown the terminal
            pass

        def reply(self, code, body, ctype="application/json", extra=()):
            data = body if isinstance(body, bytes) else json.dumps(
                body, default=str, ensure_ascii=True, separators=(",", ":")).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype + "; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.headers_common()
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def headers_common(self):
            self.send_header("Content-Security-Policy", cfg["csp"])
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")

        def fail(self, code, message):
            if self.command == "POST":        # its body is left unread: do not parse it as the next request
                self.close_connection = True
            self.reply(code, {"error": message})

        def allowed(self, params):
            """Host, then the token (when one is required): False after replying with the refusal."""
            if not dashboard_host_ok(self.headers.get("Host"), cfg["hosts"]):
                self.fail(403, "unexpected Host header (start with --allow-host NAME to use that name)")
                return False
            if cfg["token"]:
                auth = self.headers.get("Authorization") or ""
                given = auth[7:] if auth.startswith("Bearer ") else (params.get("token") or "")
                if not hmac.compare_digest(given.encode(), cfg["token"].encode()):
                    self.fail(401, "a valid token is required (the URL printed when the dashboard started)")
                    return False
            return True

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            url = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if not self.allowed(params):
                return
            if url.path in ("/", "/index.html"):
                page = cfg["page"].replace("{{CSRF}}", cfg["csrf"]).replace("{{WRITE}}", "1" if cfg["write"] else "")
                return self.reply(200, page.encode(), "text/html")
            if url.path == "/api/events":
                return self.events()
            func = DASHBOARD_GET.get(url.path)
            if func is None:
                return self.fail(404, "not found")
            self.call(func, params, cache_key=self.path)

        def do_POST(self):
            url = urlsplit(self.path)
            if not self.allowed({}):
                return
            func = DASHBOARD_POST.get(url.path)
            if func is None:
                return self.fail(404, "not found")
            if not cfg["write"]:
                return self.fail(403, "this dashboard is read-only (start it with --write to steer)")
            origin = self.headers.get("Origin")
            if origin is not None and origin != "http://" + (self.headers.get("Host") or ""):
                return self.fail(403, "cross-origin request refused")
            if self.headers.get("Sec-Fetch-Site") not in (None, "same-origin", "none"):
                return self.fail(403, "cross-site request refused")
            if not hmac.compare_digest((self.headers.get("X-Clambake-CSRF") or "").encode(), cfg["csrf"].encode()):
                return self.fail(403, "missing or wrong X-Clambake-CSRF header")
            if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
                return self.fail(415, "send application/json")
            try:
                size = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                size = -1
            if not 0 < size <= MAX_BODY + 4096:
                return self.fail(400, "a JSON body of at most 68 KB is required")
            try:
                body = json.loads(self.rfile.read(size).decode("utf-8"))
                if not isinstance(body, dict) or not all(isinstance(v, (str, int, type(None))) for v in body.values()):
                    raise ValueError
            except ValueError:
                return self.fail(400, "the body must be a JSON object of strings")
            body = {k: str(v) if isinstance(v, int) else v for k, v in body.items()}
            self.call(func, body)

        def call(self, func, arg, cache_key=None):
            """Run one API function on a pooled connection; reply with its JSON and the server time it took
            (Server-Timing).  Reads are cached per change (see DashboardCache): twenty browsers refreshing
            after one change cost one query."""
            t0 = time.perf_counter()
            hit = cfg["cache"].get(cache_key) if cache_key else None
            if hit is None:
                try:
                    version = cfg["hub"].version
                    with cfg["pool"]:
                        result = func(arg)
                except ClambakeError as e:
                    return self.reply(404 if " not found" in str(e) else HTTP_STATUS.get(e.code, 409),
                                      {"error": str(e), "hint": e.hint})
                except Exception as e:
                    code, msg, hint = classify(e)
                    return self.reply(HTTP_STATUS.get(code, 500) if code != REFUSED else 500,
                                      {"error": msg, "hint": hint})
                result["at"] = time.time()
                hit = json.dumps(result, default=str, ensure_ascii=True, separators=(",", ":")).encode()
                if cache_key:
                    cfg["cache"].put(cache_key, version, hit)
                else:               # a write: what was cached is older than it (its notification follows)
                    cfg["hub"].bump()
            self.reply(200, hit, extra=[("Server-Timing", f"app;dur={(time.perf_counter() - t0) * 1000:.1f}")])

        def events(self):
            """Server-Sent Events: `change` with the tables that changed; a comment every 15 s keeps
            proxies from closing the stream."""
            import queue
            box = cfg["hub"].subscribe()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("X-Accel-Buffering", "no")
                self.headers_common()
                self.end_headers()
                self.close_connection = True
                hello = {"v": cfg["hub"].version, "mode": cfg["hub"].mode, "now": time.time(), "write": cfg["write"]}
                self.wfile.write(f"retry: 1000\nevent: hello\ndata: {json.dumps(hello)}\n\n".encode())
                self.wfile.flush()
                while not cfg["hub"].stop.is_set():
                    try:
                        ev = box.get(timeout=15)
                        ev = dict(ev, now=time.time())
                        self.wfile.write(f"event: change\ndata: {json.dumps(ev)}\n\n".encode())
                    except queue.Empty:
                        self.wfile.write(b": ping\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
                pass
            finally:
                cfg["hub"].unsubscribe(box)

    return Handler


def serve_dashboard(args):
    """`clambake dashboard`: start the server, serve until Ctrl-C."""
    import ipaddress
    import secrets
    import threading
    from http.server import ThreadingHTTPServer
    global _threads
    if not 0 <= args.port <= 65535:
        raise ClambakeError("--port must be 0..65535", USAGE)
    host = args.host.strip()
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    token = os.environ.get(ENV_DASHBOARD_TOKEN) or None
    generated = token is None and not loopback
    if generated:
        token = secrets.token_urlsafe(24)
    if token is not None and len(token) < 16:
        raise ClambakeError(f"{ENV_DASHBOARD_TOKEN} must be at least 16 characters", USAGE)
    page, csp = dashboard_page_parts()
    pool = ConnPool()
    _threads = pool
    try:
        with pool:          # fail now (exit 3 or 4) rather than on the first request
            q("SELECT 1 FROM clambake.meta LIMIT 1")
    except BaseException:
        _threads = None
        raise
    hub = DashboardHub(pool, poll=parse_duration(args.poll, "--poll"))
    cfg = {"pool": pool, "hub": hub, "cache": DashboardCache(hub), "token": token, "csrf": secrets.token_urlsafe(32), "write": args.write,
           "page": page, "csp": csp, "hosts": {h.strip().lower() for h in args.allow_host or []}}
    server_cls = ThreadingHTTPServer
    if ":" in host.strip("[]"):
        server_cls = type("Server6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    try:
        server = server_cls((host.strip("[]"), args.port), make_dashboard_handler(cfg))
    except OSError as e:
        _threads = None
        raise ClambakeError(f"cannot listen on {host}:{args.port}: {e.strerror or e}", REFUSED,
                            hint="choose another --port (0 picks a free one)") from None
    server.daemon_threads = True
    port = server.server_address[1]
    shown = host if not host.strip("[]") in ("0.0.0.0", "::") else hostname()
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    url = f"http://{shown}:{port}/"
    threading.Thread(target=hub.run, name="clambake-listen", daemon=True).start()
    emit(f"dashboard: {url}{'?token=' + token if generated else ''} "
         f"({'read and write' if args.write else 'read-only'}; Ctrl-C stops)")
    if generated:
        emit("token: printed once above (or set CLAMBAKE_DASHBOARD_TOKEN); every request needs it")
    elif token:
        emit(f"token: from {ENV_DASHBOARD_TOKEN}; open {url}?token=...")
    sys.stdout.flush()
    if args.open:
        import webbrowser
        webbrowser.open(url + (f"?token={token}" if token else ""))
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        emit("dashboard stopped")
    finally:
        hub.stop.set()
        server.server_close()
        _threads = None
    return OK
