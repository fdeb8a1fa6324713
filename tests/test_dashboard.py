"""The web dashboard in a real headless browser (Debian's chromium driven by playwright), against a
real `clambake.py dashboard` process and the test Postgres: live instances, messages pushed over
Server-Sent Events, stored text rendered as text, the token and the CSRF checks."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import SCRIPT
from test_pooler import bouncer  # noqa: F401  (the fixture: a real PgBouncer in transaction pooling mode)
from test_packaging import env_for, venv  # noqa: F401  (the fixture: the wheel installed into a fresh venv)

try:
    from playwright.sync_api import expect
except ImportError:          # the browser fixture says what to install
    expect = None

# screenshots go to the test's temporary directory, or to this directory when set (read before the
# fixtures scrub CLAMBAKE_* variables)
SHOTS = os.environ.get("CLAMBAKE_SCREENSHOTS")
TOKEN = "test-token-0123456789abcdef"


def find_chromium():
    return next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium", "/usr/lib/chromium/chromium") if p and os.path.exists(p)), None)


class Dashboard:
    def __init__(self, dsn, *flags, env=None):
        full = dict(os.environ, CLAMBAKE_DSN=(env or {}).pop("CLAMBAKE_DSN", dsn), PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen([sys.executable, SCRIPT, "dashboard", "--port", "0", *flags],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)
        line = self.proc.stdout.readline()
        m = re.search(r"(http://\S+/)(\?token=(\S+))?", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"no URL printed: {line!r} {self.proc.stderr.read()!r}")
        self.banner = line
        self.base = m.group(1).replace("://" + m.group(1).split("/")[2].rsplit(":", 1)[0], "://127.0.0.1")
        self.token = m.group(3)

    def request(self, path, body=None, headers=None, method=None):
        """(status, parsed JSON or text) of one HTTP request."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base.rstrip("/") + path, data=data, method=method,
                                     headers=dict({"Content-Type": "application/json"} if data else {},
                                                  **(headers or {})))
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw, code, ctype = r.read().decode(), r.status, r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raw, code, ctype = e.read().decode(), e.code, e.headers.get("Content-Type", "")
        return code, (json.loads(raw) if ctype.startswith("application/json") else raw)

    def csrf(self, token=None):
        code, page = self.request("/" + (f"?token={token}" if token else ""))
        assert code == 200, page
        return re.search(r'name="clambake-csrf" content="([^"]+)"', page).group(1)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def dashboard(db):
    started = []

    def start(*flags, env=None):
        d = Dashboard(db.dsn, *flags, env=env)
        started.append(d)
        return d
    yield start
    for d in started:
        d.stop()


@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    assert exe, "chromium is needed for this test: apt-get install chromium (.ci/run installs it)"
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements-dev.txt)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = ctx.new_page()
    pg.set_default_timeout(5000)
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    yield pg
    ctx.close()


def register(cb, tmp_path, name, project, task):
    d = tmp_path / name
    d.mkdir()
    res = cb("register", "--project", project, "--task", task, "--json", cwd=str(d))
    assert res.code == 0, res
    return json.loads(res.out)["instance_id"], str(d)


def test_page_shows_live_sessions_and_a_cli_message_appears_without_reload(db, cb, dashboard, page, tmp_path):
    a, dir_a = register(cb, tmp_path, "a", "shop-api", "fixing the login bug")
    b, dir_b = register(cb, tmp_path, "b", "shop-web", "restyling the cart")
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding images",
              cwd=dir_a).code == 0
    d = dashboard()
    assert "read-only" in d.banner and d.token is None
    page.goto(d.base)
    page.wait_for_selector("#conn.live")
    rows = page.locator("#inst-body tr")
    rows.first.wait_for()
    text = page.inner_text("#inst-body")
    assert a in text and b in text and "fixing the login bug" in text and "shop-web" in text
    assert dir_a in text                                     # the working directory is shown
    assert rows.count() == 2
    assert "docker" in page.inner_text("#claim-body") and a in page.inner_text("#claim-body")
    assert "2 / 2" in page.inner_text("#counts")
    # no steering controls on a read-only dashboard
    assert page.locator("#compose").is_hidden() and page.locator("#claim-body button").count() == 0
    # a message sent from the CLI shows up by itself (SSE), well within 2 s
    t0 = time.monotonic()
    assert cb("send", "--to", "shop-web", "--type", "warning", "--subject", "deploy freeze at 17:00",
              cwd=dir_a).code == 0
    page.locator("#msg-list .item", has_text="deploy freeze at 17:00").wait_for(timeout=2000)
    assert time.monotonic() - t0 < 2.0
    # ... and who read it, once b reads its inbox
    assert "deploy freeze" in cb("inbox", cwd=dir_b).out
    page.locator("#msg-list .item", has_text="deploy freeze").filter(has_text="read by 1: " + b).wait_for(timeout=2000)
    # a heartbeat task change and a deregistration are live too
    assert cb("heartbeat", "--task", "now writing tests", cwd=dir_b).code == 0
    page.locator("#inst-body", has_text="now writing tests").wait_for(timeout=2000)
    assert cb("deregister", cwd=dir_a).code == 0
    expect(rows).to_have_count(1, timeout=2000)
    assert "docker" not in page.inner_text("#claim-body")
    # the log tab shows the session log
    page.click("#tab-log")
    page.locator("#log-list .item", has_text="deregistered").wait_for(timeout=2000)
    assert page.errors == []


def test_stored_markup_renders_as_text_and_never_runs(db, cb, dashboard, page, tmp_path, sql):
    a, dir_a = register(cb, tmp_path, "a", "evil", "<b>bold task</b>")
    payloads = ['<script>window.__xss = 1</script>', '<img src=x onerror="window.__xss = 2">',
                '"><svg onload="window.__xss=3">']
    for p in payloads:
        assert cb("send", "--type", "info", "--subject", p, "--body", p, cwd=dir_a).code == 0
    assert cb("remember", "--type", "gotcha", "--title", "<img src=x onerror=window.__xss=4>",
              "--content", "<script>window.__xss=5</script>", cwd=dir_a).code == 0
    d = dashboard()
    page.goto(d.base)
    for p in payloads:
        page.locator("#msg-list .title", has_text=p).first.wait_for(timeout=3000)
    msg_text = page.inner_text("#msg-list")
    assert all(p in msg_text for p in payloads)
    assert "<b>bold task</b>" in page.inner_text("#inst-body")
    page.locator("#mem-list .title", has_text="<img src=x onerror=window.__xss=4>").wait_for(timeout=3000)
    # the thread view and the memory view render it as text as well
    page.locator("#mem-list .item").first.click()
    page.locator("#drawer pre", has_text="<script>window.__xss=5</script>").wait_for(timeout=3000)
    page.locator("#msg-list .item").first.click()
    page.locator("#drawer pre", has_text=payloads[-1]).wait_for(timeout=3000)
    assert "null" not in page.inner_text("#drawer") and "undefined" not in page.inner_text("#drawer")
    assert page.evaluate("window.__xss") is None
    assert page.locator("#msg-list img, #msg-list script, #msg-list svg, #drawer img, #inst-body b").count() == 0
    page.screenshot(path=os.path.join(SHOTS or str(tmp_path), "dashboard-markup-as-text.png"))
    assert page.errors == []


def test_security_headers_and_the_page_never_holds_the_password(db, dashboard):
    d = dashboard()
    req = urllib.request.Request(d.base)
    with urllib.request.urlopen(req, timeout=10) as r:
        csp = r.headers["Content-Security-Policy"]
        page = r.read().decode()
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", csp)
    password = "clambake-test-pw"
    assert password not in page
    for path in ("/api/overview", "/api/messages", "/api/log", "/api/memories"):
        code, body = d.request(path)
        assert code == 200 and "postgres" not in json.dumps(body) and "dsn" not in json.dumps(body).lower()
    # DNS rebinding: a request naming a foreign host is refused, even on loopback
    code, body = d.request("/api/overview", headers={"Host": "evil.example:80"})
    assert code == 403 and "Host" in body["error"]
    # bad input is a clear 400, unknown ids a 404
    assert d.request("/api/messages?type=nonsense")[0] == 400
    assert d.request("/api/message?id=999999")[0] == 404


def test_token_is_required_on_every_request_and_writes_need_it(db, cb, dashboard, tmp_path, page):
    a, dir_a = register(cb, tmp_path, "a", "shop", "t")
    d = dashboard("--write", env={"CLAMBAKE_DASHBOARD_TOKEN": TOKEN})
    assert d.token is None and TOKEN not in d.banner          # a token from the environment is never printed
    for path in ("/", "/api/overview", "/api/events"):
        assert d.request(path)[0] == 401
        assert d.request(path, headers={"Authorization": "Bearer wrong-token-000000000"})[0] == 401
    csrf = d.csrf(TOKEN)
    body = {"to": "shop", "subject": "from the human", "type": "info"}
    for auth in ({}, {"Authorization": "Bearer " + TOKEN[:-1] + "x"}):
        code, res = d.request("/api/send", body, headers=dict(auth, **{"X-Clambake-CSRF": csrf}))
        assert code == 401, res
    assert "from the human" not in cb("inbox", "--peek", cwd=dir_a).out
    code, res = d.request("/api/send", body, headers={"Authorization": "Bearer " + TOKEN, "X-Clambake-CSRF": csrf})
    assert code == 200, res
    assert "from the human" in cb("inbox", cwd=dir_a).out
    # the browser passes the token from the URL along with every request
    page.goto(d.base + "?token=" + TOKEN)
    page.wait_for_selector("#conn.live")
    page.locator("#inst-body", has_text=a).wait_for(timeout=3000)


def test_a_non_loopback_address_gets_a_random_token_printed_once(db, dashboard):
    d = dashboard("--host", "0.0.0.0")
    assert d.token and len(d.token) >= 24 and d.banner.count(d.token) == 1
    assert d.request("/api/overview")[0] == 401
    assert d.request(f"/api/overview?token={d.token}")[0] == 200
    other = dashboard("--host", "0.0.0.0")
    assert other.token != d.token


def test_writes_need_the_csrf_header_and_a_same_origin(db, cb, dashboard, tmp_path):
    a, dir_a = register(cb, tmp_path, "a", "shop", "t")
    d = dashboard("--write")
    csrf = d.csrf()
    body = {"to": "@all", "subject": "hello from the human"}
    assert d.request("/api/send", body)[0] == 403                                   # no header
    assert d.request("/api/send", body, headers={"X-Clambake-CSRF": "x" * 43})[0] == 403   # wrong one
    code, res = d.request("/api/send", body, headers={"X-Clambake-CSRF": csrf, "Origin": "http://evil.example"})
    assert code == 403 and "cross-origin" in res["error"]
    assert d.request("/api/send", body, headers={"X-Clambake-CSRF": csrf, "Sec-Fetch-Site": "cross-site"})[0] == 403
    assert "hello from the human" not in cb("inbox", "--peek", cwd=dir_a).out
    # a read-only dashboard refuses every write, CSRF header or not
    ro = dashboard()
    assert ro.request("/api/send", body, headers={"X-Clambake-CSRF": ro.csrf()})[0] == 403
    code, res = d.request("/api/send", body, headers={"X-Clambake-CSRF": csrf, "Origin": d.base.rstrip("/")})
    assert code == 200, res


def test_steering_from_the_page_is_logged_with_its_actor(db, cb, dashboard, page, tmp_path, sql):
    a, dir_a = register(cb, tmp_path, "a", "shop", "building")
    b, dir_b = register(cb, tmp_path, "b", "shop", "waiting")
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding", cwd=dir_a).code == 0
    assert cb("remember", "--type", "issue", "--title", "flaky login test", "--content", "retries hide it",
              cwd=dir_a).code == 0
    d = dashboard("--write")
    page.goto(d.base)
    page.wait_for_selector("#compose:not(.hidden)")
    # send as the human
    page.fill("#c-to", "shop")
    page.select_option("#c-type", "request")
    page.fill("#c-subject", "please push before 6pm")
    page.click("#c-send")
    page.locator("#c-note", has_text="Sent #").wait_for(timeout=3000)
    out = cb("inbox", cwd=dir_b).out
    assert "please push before 6pm" in out and "human@dashboard" in out
    # extend, then release the claim
    page.locator("#claim-body button", has_text="+1h").click()
    expect(page.locator("#claim-body td").nth(3)).to_have_text("3h", timeout=3000)       # 2h + 1h
    assert sql("SELECT expires_at > now() + interval '170 minutes' FROM clambake.claims")[0][0]
    page.on("dialog", lambda dlg: dlg.accept())
    page.locator("#claim-body button", has_text="Release").click()
    page.locator("#claim-body", has_text="No active claims").wait_for(timeout=3000)
    assert cb("check", "docker", cwd=dir_b).code == 0
    assert "released from the dashboard" in cb("inbox", cwd=dir_a).out        # the holder is told
    # mark the memory resolved
    page.locator("#mem-list .item", has_text="flaky login test").click()
    page.locator("#drawer button", has_text="Mark resolved").click()
    page.locator("#drawer dd", has_text="resolved").wait_for(timeout=3000)
    assert "resolved" in cb("recall", "--status", "resolved", cwd=dir_a).out
    log = json.loads(cb("history", "--instance", "human@dashboard", "--json").out)["entries"]
    assert {e["action"] for e in log} == {"send", "claim", "release", "update"}, log
    page.click("#d-close")
    page.click("#tab-log")
    page.locator("#log-list", has_text="human@dashboard").wait_for(timeout=3000)
    page.click("#tab-mem")
    page.screenshot(path=os.path.join(SHOTS or str(tmp_path), "dashboard-write.png"))
    assert page.errors == []


def test_dashboard_bad_usage_is_a_clear_error(db, cbp):
    res = cbp("dashboard", "--port", "70000")
    assert res.code == 2 and res.err.startswith("clambake: error:")
    res = cbp("dashboard", "--port", "0", env={"CLAMBAKE_DASHBOARD_TOKEN": "short"})
    assert res.code == 2 and "16 characters" in res.err
    # the database down: exit 3 at once, one line, no password
    res = cbp("dashboard", "--port", "0", env={"CLAMBAKE_DSN": "postgresql://u:s3cret-pw@127.0.0.1:1/x"})
    assert res.code == 3 and res.err.startswith("clambake: error:") and "s3cret-pw" not in res.err
    assert "Traceback" not in res.err
    # the port taken: exit 1 with a hint
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        res = cbp("dashboard", "--port", str(s.getsockname()[1]))
    assert res.code == 1 and "cannot listen" in res.err and "--port" in res.err


def test_a_busy_dashboard_fits_1280x800_and_is_legible(db, cb, dashboard, page, tmp_path):
    sessions = [("shop-api", "fixing the login redirect loop"), ("shop-api", "writing migration 0042"),
                ("shop-web", "restyling the cart page"), ("infra", "upgrading Postgres to 16"),
                ("docs", "rewriting the quick start")]
    dirs = [register(cb, tmp_path, f"s{i}", p, t)[1] for i, (p, t) in enumerate(sessions)]
    steps = [(0, ["send", "--type", "blocker", "--resource", "docker", "--subject", "rebuilding the api image"]),
             (3, ["send", "--type", "blocker", "--resource", "port:5432", "--subject", "postgres restart"]),
             (3, ["send", "--type", "blocker", "--subject", "do not deploy: database upgrade running"]),
             (1, ["send", "--to", "shop-web", "--type", "request", "--subject", "please review PR 311",
                  "--body", "The cart totals changed; see the screenshot in the PR."]),
             (2, ["send", "--to", "@all", "--type", "warning", "--subject", "npm install is slow today"]),
             (4, ["send", "--to", "@all", "--type", "info", "--subject", "quick start rewritten",
                  "--body", "docs/quickstart.md now shows pipx install first."]),
             (0, ["remember", "--type", "gotcha", "--title", "Docker compose needs --wait for healthchecks",
                  "--content", "Without --wait the api starts before Postgres accepts connections.",
                  "--tags", "docker,compose"]),
             (3, ["remember", "--global", "--type", "infrastructure", "--title", "Postgres runs on port 5433",
                  "--content", "The shared dev database listens on 5433, not 5432."]),
             (1, ["log", "--action", "test", "--summary", "migration 0042 passes on a copy of prod"])]
    for who, args in steps:
        assert cb(*args, cwd=dirs[who]).code == 0, args
    cb("inbox", cwd=dirs[2])
    d = dashboard("--write")
    page.goto(d.base)
    page.locator("#msg-list .item", has_text="quick start rewritten").wait_for()
    page.locator("#mem-list .item", has_text="Postgres runs on port 5433").wait_for()
    page.locator("#block-list .item", has_text="do not deploy").wait_for()
    # the page fills the window without scrolling it as a whole: the lists scroll inside their cards
    size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size[0] <= 1280 and size[1] <= 800, size
    for card in ("#instances-card", "#claims-card", "#messages-card", "#side-card"):
        box = page.locator(card).bounding_box()
        assert box["width"] > 300 and box["height"] > 200 and box["y"] + box["height"] <= 800, (card, box)
    shot = os.path.join(SHOTS or str(tmp_path), "dashboard.png")
    page.screenshot(path=shot)
    assert os.path.getsize(shot) > 20000          # a real rendering, not a blank page
    assert page.errors == []


def test_behind_pgbouncer_the_page_polls_and_stays_live(db, cb, dashboard, page, tmp_path, bouncer):
    a, dir_a = register(cb, tmp_path, "a", "pooled", "behind the pooler")
    d = dashboard(env={"CLAMBAKE_DSN": bouncer})
    page.goto(d.base)
    page.locator("#conn", has_text="live (polling)").wait_for()
    page.locator("#inst-body", has_text=a).wait_for()
    t0 = time.monotonic()
    assert cb("send", "--type", "warning", "--subject", "sent while polling", cwd=dir_a).code == 0
    page.locator("#msg-list .item", has_text="sent while polling").wait_for(timeout=2500)
    assert time.monotonic() - t0 < 2.5
    assert page.errors == []


def test_twenty_event_streams_share_one_listening_connection(db, cb, dashboard, tmp_path, sql):
    import socket
    a, dir_a = register(cb, tmp_path, "a", "many", "t")
    d = dashboard()
    port = int(d.base.rsplit(":", 1)[1].strip("/"))
    streams = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        buf = b""
        while b"event: hello" not in buf:
            buf += s.recv(4096)
        streams.append(s)
    # one connection listens; requests borrow pooled ones (none held by an open stream)
    deadline = time.monotonic() + 5          # (the listener may still be starting)
    while True:
        listening = sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name = 'clambake' AND (query LIKE 'LISTEN%' OR query LIKE "
                        "'SELECT pg_notify(''clambake_ui''%')")[0][0]
        if listening or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    total = sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'clambake'")[0][0]
    assert listening == 1 and total <= 3, (listening, total)
    t0 = time.monotonic()
    assert cb("send", "--subject", "to every stream", cwd=dir_a).code == 0
    for s in streams:
        buf = b""
        while b'"m"' not in buf:
            buf += s.recv(4096)
        s.close()
    assert time.monotonic() - t0 < 1.0


def test_status_takes_two_statements_and_its_data_is_the_json(db, cb, tmp_path, monkeypatch):
    """status: whoami plus ONE statement (json aggregates), whatever it lists; the dashboard reads the
    same status_data()."""
    import clambake
    a, dir_a = register(cb, tmp_path, "a", "shop", "t")
    b, dir_b = register(cb, tmp_path, "b", "web", "u")
    assert cb("send", "--type", "blocker", "--resource", "docker", "--subject", "x", cwd=dir_a).code == 0
    assert cb("send", "--type", "blocker", "--subject", "no deploys", cwd=dir_b).code == 0
    calls = []
    real = clambake.q
    monkeypatch.setattr(clambake, "q", lambda sql, params=None, one=False: calls.append(sql) or real(sql, params, one))
    res = cb("status", cwd=dir_a)
    assert res.code == 0 and len(calls) == 2, calls
    assert "claims: 1" in res.out and "open blockers: 1" in res.out and "no deploys" in res.out
    calls.clear()
    data = json.loads(cb("status", "--json", cwd=dir_a).out)
    assert len(calls) == 2
    assert data["live_total"] == 2 and data["unread"] == 1 and [c["resource"] for c in data["claims"]] == ["docker"]


def test_filters_threads_receipts_and_memory_search(db, cb, dashboard, page, tmp_path):
    a, dir_a = register(cb, tmp_path, "a", "shop-api", "t")
    b, dir_b = register(cb, tmp_path, "b", "shop-web", "u")
    c, dir_c = register(cb, tmp_path, "c", "infra", "v")
    ask = json.loads(cb("send", "--to", "shop-web", "--type", "request", "--subject", "which node version?",
                        "--json", cwd=dir_a).out)["id"]
    assert cb("inbox", cwd=dir_b).code == 0
    assert cb("send", "--reply-to", str(ask), "--subject", "node 20, see .nvmrc", cwd=dir_b).code == 0
    assert cb("send", "--type", "warning", "--subject", "disk almost full on the runner", cwd=dir_c).code == 0
    assert cb("remember", "--project", "shop-api", "--type", "gotcha", "--title", "Docker restart drops the cache",
              "--content", "Run make warm after docker restart.", cwd=dir_a).code == 0
    assert cb("remember", "--global", "--type", "tool", "--title", "jq is everywhere",
              "--content", "Use jq for JSON.", cwd=dir_a).code == 0
    d = dashboard()
    page.goto(d.base)
    items = page.locator("#msg-list .item")
    expect(items).to_have_count(3)
    # type filter, then project filter (sent by the project or addressed to it)
    page.select_option("#m-type", "warning")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("disk almost full")
    page.select_option("#m-type", "")
    page.fill("#m-project", "shop-web")
    expect(items).to_have_count(2)
    expect(page.locator("#msg-list")).not_to_contain_text("disk almost full")
    # the thread and who has read it
    expect(page.locator("#msg-list .item", has_text="which node version?")).to_contain_text("1 reply")
    page.locator("#msg-list .item", has_text="which node version?").click()
    drawer = page.locator("#drawer")
    expect(drawer).to_contain_text("node 20, see .nvmrc")                 # the reply
    expect(drawer.locator("dd").nth(4)).to_have_text(b)                  # read by
    page.locator("#drawer .item", has_text="node 20").click()             # follow the thread
    expect(drawer).to_contain_text("In reply to")
    expect(drawer).to_contain_text(a)                                     # the reply is not read yet by a
    page.click("#d-close")
    # memory search ranks like recall, and the scope filter narrows it
    page.fill("#k-search", "docker restart")
    expect(page.locator("#mem-list .item")).to_have_count(1)
    expect(page.locator("#mem-list .item")).to_contain_text("Docker restart drops the cache")
    page.fill("#k-search", "")
    page.select_option("#k-scope", "global")
    expect(page.locator("#mem-list .item")).to_have_count(1)
    expect(page.locator("#mem-list .item")).to_contain_text("jq is everywhere")
    assert page.errors == []


@pytest.mark.slow
def test_the_installed_command_serves_the_dashboard(db, venv, tmp_path):
    """From the wheel: the server and the page come from clambake_files/ beside the installed module."""
    env = env_for(venv, CLAMBAKE_DSN=db.dsn, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([str(venv / "clambake"), "dashboard", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
    try:
        line = proc.stdout.readline()
        m = re.search(r"(http://\S+/)", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        with urllib.request.urlopen(m.group(1), timeout=10) as r:
            page = r.read().decode()
            assert r.status == 200 and "clambake dashboard" in page
            assert "script-src 'sha256-" in r.headers["Content-Security-Policy"]
        with urllib.request.urlopen(m.group(1) + "api/overview", timeout=10) as r:
            assert json.loads(r.read())["status"]["live_total"] == 0
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_bare_heartbeat_notifies_nothing_but_a_visible_change_does(db, cb, tmp_path):
    """Hooks refresh the heartbeat on every prompt and tool call: that must not wake the dashboard (nor pay
    for a trigger); a new task, a new instance, a claim or a deregistration must.  The dashboard re-reads
    its instances on its own every INSTANCES_REREAD_S for the heartbeat ages."""
    import select
    import threading

    import psycopg2
    a, dir_a = register(cb, tmp_path, "a", "shop", "first task")
    listener = psycopg2.connect(db.dsn)
    listener.autocommit = True
    listener.cursor().execute("LISTEN clambake_ui")

    def kinds_after(*args):
        listener.notifies.clear()
        assert cb(*args, cwd=dir_a).code == 0
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if select.select([listener], [], [], 0.05)[0]:
                listener.poll()
        return sorted({n.payload for n in listener.notifies})

    try:
        assert kinds_after("heartbeat") == []
        assert kinds_after("heartbeat", "--task", "first task") == []
        assert kinds_after("heartbeat", "--task", "second task") == ["i"]
        assert kinds_after("send", "--type", "blocker", "--resource", "docker", "--subject", "mine") == ["c", "l"]
        assert {"c", "i"} <= set(kinds_after("deregister"))
    finally:
        listener.close()

    import clambake
    clambake.load("dashboard")
    hub = clambake.DashboardHub(None, reread=0.5)
    box = hub.subscribe()
    thread = threading.Thread(target=hub.run, daemon=True)
    thread.start()
    try:
        first = box.get(timeout=5)                 # going live: everything may have changed
        assert first["mode"] == "listen" and "i" in first["kinds"], first
        t0 = time.monotonic()
        event = box.get(timeout=3)                 # nothing changes in the database meanwhile
        assert event["kinds"] == ["i"] and 0.2 < time.monotonic() - t0 < 2.0, event
    finally:
        hub.stop.set()
        thread.join(5)
