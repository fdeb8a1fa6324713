"""Import of markdown notes, export, templates (issue 13).

The fixtures under tests/fixtures/notes are what a project's notes look like before clambake: a
CLAUDE.md with commands, conventions and gotchas (and one section with a connection string in it), an
ISSUES.md in the Problem / Fix / Status style, decision records under docs/adr/, a README with setext
headings and a notes file without any heading.  Each test copies them into its own project directory
(a git checkout, with a node_modules and a .git that import must skip).
"""

import json
import os
import shutil
import time

import pytest

import clambake

from conftest import REPO, run_inprocess

FIXTURES = os.path.join(REPO, "tests", "fixtures", "notes")
SECRET = "s3cr3tPassw0rd"


@pytest.fixture
def project(tmp_path):
    dst = tmp_path / "orders"
    shutil.copytree(FIXTURES, dst)
    (dst / ".git").mkdir()
    (dst / ".git" / "NOTES.md").write_text("# inside .git\n\nnever imported\n")
    (dst / "node_modules" / "left-pad").mkdir(parents=True)
    (dst / "node_modules" / "left-pad" / "README.md").write_text("# left-pad\n\nnever imported\n")
    (dst / ".venv").mkdir()
    (dst / ".venv" / "README.md").write_text("# venv\n\nnever imported\n")
    return dst


def memories(sql, project="orders"):
    rows = sql("SELECT id, memory_type, title, content, status, tags, related_files, source_file, source_heading "
               "FROM clambake.project_memory WHERE project = %s ORDER BY id", (project,))
    return [dict(zip(("id", "type", "title", "content", "status", "tags", "files", "source_file", "heading"), r))
            for r in rows]


def by_title(mems, fragment):
    hits = [m for m in mems if fragment in m["title"]]
    assert len(hits) == 1, (fragment, [m["title"] for m in mems])
    return hits[0]


def test_import_tree_gives_one_typed_entry_per_section(db, cb, sql, project):
    res = cb("import", str(project), "--project", "orders")
    assert res.code == 1, res          # one section held back (the connection string): exit 1 says so
    assert "imported 16 sections from 6 file(s) into orders: 16 new" in res.out
    mems = memories(sql)
    titles = [m["title"] for m in mems]
    # nothing from .git, node_modules or a virtual environment; no License section
    assert not any("never imported" in m["content"] for m in mems)
    assert not any("License" in t for t in titles)
    # gotchas under "## Gotchas" in CLAUDE.md: titled with the document, the grouping heading as a tag
    tz = by_title(mems, "Tests need TZ=UTC")
    assert tz["title"] == "Orders API - notes for Claude > Tests need TZ=UTC"
    assert (tz["type"], tz["status"], tz["tags"]) == ("gotcha", "active", ["gotchas"])
    assert tz["files"] == ["CLAUDE.md"] and tz["source_file"] == "CLAUDE.md"
    assert tz["heading"] == "Orders API - notes for Claude > Gotchas > Tests need TZ=UTC"
    assert by_title(mems, "> Architecture")["type"] == "architecture"
    # the code block's shell comments are text, not headings
    commands = by_title(mems, "> Commands")
    assert "# run the tests" in commands["content"] and not any("run the tests" in t for t in titles)
    # ISSUES.md: Problem / Fix / Status sections are one entry each; fixed ones are resolved fixes
    login = by_title(mems, "Login fails after a Docker restart")
    assert login["title"] == "Login fails after a Docker restart"        # "Known issues" left out
    assert (login["type"], login["status"]) == ("fix", "resolved")
    assert "### Problem" in login["content"] and "alembic upgrade head" in login["content"]
    assert "known-issues" in login["tags"] and login["files"] == ["ISSUES.md"]
    assert (by_title(mems, "Celery jobs vanish")["type"], by_title(mems, "Celery jobs vanish")["status"]) == \
        ("fix", "resolved")
    pdf = by_title(mems, "PDF export times out")
    assert (pdf["type"], pdf["status"]) == ("issue", "active")           # no fix, status open
    webhook = by_title(mems, "Webhook retries duplicate payments")        # **Problem:** / **Fix:** labels
    assert (webhook["type"], webhook["status"]) == ("fix", "resolved")
    # decision records: one entry per file, superseded ones deprecated
    adr1 = by_title(mems, "Use Postgres for the job queue")
    assert (adr1["type"], adr1["status"]) == ("decision", "active")
    assert "SKIP LOCKED" in adr1["content"] and adr1["files"] == ["docs/adr/0001-use-postgres-for-the-job-queue.md"]
    assert (by_title(mems, "Store money as integer cents")["type"],
            by_title(mems, "Store money as integer cents")["status"]) == ("decision", "deprecated")
    # README with setext headings; a file without headings is one entry named after the file
    assert by_title(mems, "Orders API > Quick start")["type"] == "pattern"       # the default type
    notes = by_title(mems, "staging notes")
    assert "reboots every Sunday" in notes["content"] and notes["files"] == ["docs/staging-notes.md"]
    # recall finds imported entries like any other
    found = cb.json("recall", "--project", "orders", "--search", "time zone tests")
    assert found["memories"][0]["id"] == tz["id"]
    assert found["memories"][0]["source"] == {"file": "CLAUDE.md", "heading": tz["heading"]}


def test_secrets_are_held_back_and_named_without_the_secret(db, cb, sql, project):
    res = cb("import", str(project / "CLAUDE.md"), "--project", "orders")
    assert res.code == 1
    assert "held back 1 section(s):" in res.out
    assert "CLAUDE.md > Orders API - notes for Claude > Database access: looks like it contains a URL with an " \
           "embedded password" in res.out
    assert SECRET not in res.out + res.err
    assert not sql("SELECT id FROM clambake.project_memory WHERE content LIKE %s", (f"%{SECRET}%",))
    assert len(memories(sql)) == 6
    res = cb("import", str(project / "CLAUDE.md"), "--project", "orders", "--allow-secret")
    assert res.code == 0 and "1 new, 0 updated, 6 unchanged" in res.out, res


def test_reimport_skips_unchanged_and_updates_edited_sections_in_place(db, cb, sql, project):
    cb("import", str(project), "--project", "orders")
    before = memories(sql)
    res = cb("import", str(project), "--project", "orders")
    assert "0 new, 0 updated, 16 unchanged" in res.out, res
    assert memories(sql) == before
    # edit one section, drop another, add one
    path = project / "CLAUDE.md"
    text = path.read_text()
    text = text.replace("run `make db-seed` before", "run `make db-seed && make warm-cache` before")
    text = text.replace("## Architecture\n\n- api: FastAPI on port 8000 behind nginx\n"
                        "- worker: Celery, queue in redis on 6379\n- db: Postgres 16, published on 5433\n", "")
    text += "\n## Releases\n\nTag releases as vX.Y.Z; CI publishes the image on tags.\n"
    path.write_text(text)
    res = cb("import", str(project), "--project", "orders")
    assert "1 new, 1 updated, 14 unchanged" in res.out, res
    after = memories(sql)
    assert len(after) == len(before) + 1
    old = by_title(before, "Docker restart drops the dev database")
    new = by_title(after, "Docker restart drops the dev database")
    assert new["id"] == old["id"] and "make warm-cache" in new["content"]
    # the section that left the file is still stored, and the report names it
    arch = by_title(after, "> Architecture")
    assert "no longer in their source (1), still stored; retire them with:" in res.out
    assert f"  #{arch['id']} Orders API - notes for Claude > Architecture: {clambake.script_cmd()} update-memory " \
           f"{arch['id']} --status deprecated" in res.out


def test_dry_run_prints_the_plan_and_stores_nothing(db, cb, sql, project):
    res = cb("import", str(project), "--project", "orders", "--dry-run")
    assert res.code == 1, res
    assert res.out.startswith("dry run: would import 16 sections from 6 file(s) into orders: 16 new")
    assert "types: pattern 7, fix 3, decision 2, gotcha 2, architecture 1, issue 1" in res.out
    assert "  new: gotcha [active] Orders API - notes for Claude > Tests need TZ=UTC" in res.out
    assert "(+6 more new)" in res.out
    assert memories(sql) == []
    assert sql("SELECT count(*) FROM clambake.session_log WHERE action = 'import'") == [(0,)]
    data = cb("import", str(project), "--project", "orders", "--dry-run", "--json")
    plan = json.loads(data.out)
    assert plan["dry_run"] is True and len(plan["new"]) == 16 and plan["types"]["fix"] == 3
    assert plan["held_back"][0]["title"] == "Orders API - notes for Claude > Database access"
    assert SECRET not in data.out


def test_globs_relative_paths_and_missing_paths(db, cb, sql, project):
    res = cb("import", "docs/**/*.md", "ISSUES.md", "nope.md", "--project", "orders", cwd=str(project))
    assert res.code == 1                      # a path that is not there: exit 1, the rest is imported
    assert "not found: nope.md" in res.out
    assert "7 new" in res.out, res
    assert {m["source_file"] for m in memories(sql)} == {
        "ISSUES.md", "docs/staging-notes.md", "docs/adr/0001-use-postgres-for-the-job-queue.md",
        "docs/adr/0002-integer-cents.md"}
    res = cb("import", "--project", "orders")
    assert res.code == 2 and "nothing to import" in res.err
    (project / "empty").mkdir()
    res = cb("import", str(project / "empty"), "--project", "orders")
    assert res.code == 1 and "no markdown files found in" in res.err


def test_binary_and_huge_files_are_refused_and_the_rest_continues(db, cbp, sql, project, tmp_path):
    (project / "logo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    big = project / "dump.md"
    big.write_text("# Dump\n\n" + ("x" * 1023 + "\n") * (2 * 1024 + 8))
    (project / "latin1.md").write_bytes("# Caf\xe9\n\nnot utf-8\n".encode("latin-1"))
    res = cbp("import", str(project / "logo.md"), str(big), str(project / "latin1.md"), str(project / "ISSUES.md"),
              "--project", "orders")
    assert res.code == 1, res
    assert "Traceback" not in res.err
    assert "refused logo.md: binary (contains NUL bytes)" in res.out
    assert "refused dump.md: too large (2.0 MB; the limit is 2 MB)" in res.out
    assert "refused latin1.md: binary or not UTF-8 text" in res.out
    assert "imported 4 sections from 1 file(s)" in res.out
    assert {m["source_file"] for m in memories(sql)} == {"ISSUES.md"}


def test_utf16_files_from_powershell_are_read(db, cb, sql, tmp_path):
    path = tmp_path / "ps-notes.md"
    path.write_bytes("# Gotchas\n\n## Caf\u00e9 wifi drops VPN\n\nReconnect with `vpn up`.\n".encode("utf-16"))
    res = cb("import", str(path), "--project", "orders")
    assert res.code == 0, res
    [m] = memories(sql)
    assert (m["title"], m["type"]) == ("Caf\u00e9 wifi drops VPN", "gotcha")


def test_global_import_maps_types_and_default_type(db, cb, sql, tmp_path):
    path = tmp_path / "conventions.md"
    path.write_text("# Team notes\n\n## Conventions\n\n### Commit messages\n\nImperative mood, under 72 "
                    "characters.\n\n## Servers\n\nbuild01 runs CI; db01 runs Postgres on 5433.\n\n"
                    "## Lessons learned\n\nNever resize a volume while the database runs.\n\n"
                    "## Random\n\nThe coffee machine is on floor 2.\n")
    res = cb("import", str(path), "--global", "--type", "preference")
    assert res.code == 0, res
    rows = {r[0]: r[1] for r in sql("SELECT title, memory_type FROM clambake.global_memory")}
    assert rows == {"Team notes > Commit messages": "convention", "Team notes > Servers": "infrastructure",
                    "Team notes > Lessons learned": "lesson", "Team notes > Random": "preference"}
    res = cb("import", str(path), "--global", "--type", "gotcha")
    assert res.code == 2 and "unknown global memory type" in res.err


def test_title_taken_by_another_entry_gets_the_source_file_appended(db, cb, sql, tmp_path):
    cb("remember", "--project", "orders", "--type", "gotcha", "--title", "Deploys > Friday freeze",
       "--content", "No deploys after Friday noon.")
    path = tmp_path / "ops.md"
    path.write_text("# Deploys\n\n## Friday freeze\n\nNo deploys on Fridays at all since March.\n")
    cb("import", str(path), "--project", "orders")
    titles = sorted(m["title"] for m in memories(sql))
    assert titles == ["Deploys > Friday freeze", "Deploys > Friday freeze (ops.md)"]
    # edited: the same entry is updated and keeps its distinct title
    path.write_text("# Deploys\n\n## Friday freeze\n\nNo deploys on Fridays; hotfixes need two reviews.\n")
    res = cb("import", str(path), "--project", "orders")
    assert "0 new, 1 updated" in res.out
    assert sorted(m["title"] for m in memories(sql)) == titles
    # a section with the same title and text as an entry stored by hand: adopted, not copied
    other = tmp_path / "handbook.md"
    other.write_text("# Deploys\n\n## Friday freeze\n\nNo deploys after Friday noon.\n")
    res = cb("import", str(other), "--project", "orders")
    assert "0 new, 0 updated, 0 unchanged, 1 already there" in res.out, res
    [manual] = [m for m in memories(sql) if m["title"] == "Deploys > Friday freeze"]
    assert len(memories(sql)) == 2 and manual["source_file"].endswith("handbook.md")


# --------------------------------------------------------------------------
# export and the round trip
# --------------------------------------------------------------------------

ODD_CONTENT = [
    ("gotcha", "Content with headings and fences", "Intro line.\n\n## Not a section\n\n```bash\n# not a heading\n"
     "make test\n```\n\nLast line.", "docker,db", "docker-compose.yml,Makefile", "active"),
    ("issue", "Whitespace around the text", "\n  indented first line\ntrailing blank lines\n\n\n", "", "", "resolved"),
    ("decision", "A title ending with a hash #", "Body with <!-- clambake: {\"type\":\"fix\"} --> inside.",
     "adr", "", "deprecated"),
    ("fix", "Unclosed fence", "```\ncode that never closes\n## looks like a heading", "", "src/x.py", "active"),
    ("pattern", "Unicode and dashes -- all kept", "Caf\u00e9 -> na\u00efve --> arrows -- and \u2014 dashes",
     "unicode", "", "active"),
]


def seed_odd(cb):
    ids = []
    for mtype, title, content, tags, files, status in ODD_CONTENT:
        args = ["remember", "--project", "orders", "--type", mtype, "--title", title, "--content", "-"]
        if tags:
            args += ["--tags", tags]
        if files:
            args += ["--files", files]
        ids.append(cb.json(*args, input=content)["id"])
        if status != "active":
            cb("update-memory", ids[-1], "--status", status)
    old = cb.json("remember", "--project", "orders", "--type", "gotcha", "--title", "Old wording",
                  "--content", "Restart the worker after deploys.")["id"]
    cb("remember", "--project", "orders", "--type", "gotcha", "--title", "Restart the worker after each deploy",
       "--content", "-", "--supersedes", str(old), input="Restart the worker after every deploy (it caches config).")
    return ids


def snapshot(sql, project):
    rows = sql("SELECT m.memory_type, m.title, m.content, m.status, m.tags, m.related_files, s.title "
               "FROM clambake.project_memory m LEFT JOIN clambake.project_memory s ON s.id = m.superseded_by "
               "WHERE m.project = %s ORDER BY m.title", (project,))
    return rows


@pytest.mark.parametrize("fmt", ["md", "jsonl"])
def test_export_then_import_into_an_empty_database_gives_the_same_entries(db, empty_db, cb, sql, project, fmt,
                                                                         tmp_path):
    cb("import", str(project), "--project", "orders")
    seed_odd(cb)
    original = snapshot(sql, "orders")
    out = tmp_path / f"orders.{fmt}"
    res = cb("export", "--project", "orders", "--format", fmt, "--output", str(out))
    assert res.code == 0 and f"exported {len(original)} entries ({fmt})" in res.err, res
    # a second database, initialised from scratch
    env = {"CLAMBAKE_DSN": empty_db.dsn}
    assert run_inprocess(["init"], env=env).code == 0
    res = run_inprocess(["import", str(out), "--project", "orders"], env=env)
    assert res.code == 0 and f"{len(original)} new" in res.out, res
    import psycopg2
    conn = psycopg2.connect(empty_db.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT m.memory_type, m.title, m.content, m.status, m.tags, m.related_files, s.title "
                        "FROM clambake.project_memory m LEFT JOIN clambake.project_memory s "
                        "ON s.id = m.superseded_by WHERE m.project = 'orders' ORDER BY m.title")
            copied = cur.fetchall()
            cur.execute("SELECT count(*) FROM clambake.project_memory WHERE source_file = 'CLAUDE.md'")
            kept_provenance = cur.fetchone()[0]
    finally:
        conn.close()
    assert copied == original
    assert kept_provenance == 6          # imported entries keep their source: re-importing CLAUDE.md updates them
    # importing the export again changes nothing
    res = run_inprocess(["import", str(out), "--project", "orders"], env=env)
    assert f"0 new, 0 updated, {len(original)} unchanged" in res.out, res


def test_export_to_stdout_and_filters(db, cb, sql, project):
    cb("import", str(project / "ISSUES.md"), "--project", "orders")
    res = cb("export", "--project", "orders", "--status", "active")
    assert res.code == 0
    assert res.out.startswith("<!-- clambake: export -->\n# Clambake memory: project orders\n\n1 entries")
    assert "## PDF export times out for large orders\n<!-- clambake: {\"type\":\"issue\"" in res.out
    lines = cb("export", "--project", "orders", "--format", "jsonl").out.splitlines()
    assert len(lines) == 4
    rec = json.loads(lines[0])
    assert set(rec) >= {"id", "type", "title", "content", "status", "tags", "files", "created_at", "source"}
    assert cb("export", "--project", "orders", "--format", "pdf").code == 2
    empty = cb("export", "--project", "nothing-here")
    assert empty.code == 0 and "0 entries" in empty.out


def test_an_export_of_one_project_is_a_template_for_the_next(db, cb, sql, project, tmp_path):
    cb("import", str(project), "--project", "orders")
    out = tmp_path / "orders-template.md"
    cb("export", "--project", "orders", "--status", "active", "--output", str(out))
    res = cb("import", str(out), "--project", "invoices")
    assert res.code == 0, res
    active = sorted(m["title"] for m in memories(sql) if m["status"] == "active")
    assert sorted(m["title"] for m in memories(sql, "invoices")) == active


# --------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------

def test_templates_are_listed_and_applied_idempotently(db, cb, sql):
    listed = cb.json("import", "--list-templates")["templates"]
    names = [t["name"] for t in listed]
    assert {"docker-compose-stack", "python-web-api", "mail-server"} <= set(names)
    assert all(t["description"] for t in listed)
    res = cb("import", "--template", "docker-compose-stack", "--project", "shop")
    assert res.code == 0 and "10 new" in res.out, res
    mems = memories(sql, "shop")
    down = by_title(mems, "docker compose down -v deletes the named volumes")
    assert down["type"] == "gotcha" and {"docker", "volumes"} <= set(down["tags"])
    assert down["source_file"] == "template:docker-compose-stack"
    res = cb("import", "--template", "docker-compose-stack", "--project", "shop")
    assert "0 new, 0 updated, 10 unchanged" in res.out
    assert len(memories(sql, "shop")) == 10


@pytest.mark.parametrize("name", ["docker-compose-stack", "python-web-api", "mail-server"])
def test_every_shipped_template_imports_cleanly_with_typed_entries(db, cb, sql, name):
    res = cb.json("import", "--template", name, "--project", "p-" + name)
    assert res["held_back"] == [] and res["refused"] == []
    assert len(res["new"]) >= 8
    types = {e["type"] for e in res["new"]}
    assert "gotcha" in types and len(types) >= 3
    assert all(len(m["content"]) > 150 for m in memories(sql, "p-" + name))


def test_unknown_template_lists_the_available_ones(db, cb):
    res = cb("import", "--template", "kubernetes", "--project", "shop")
    assert res.code == 1
    assert "clambake: error: unknown template 'kubernetes'" in res.err
    assert "hint: available: docker-compose-stack (" in res.err and "mail-server (" in res.err
    assert cb("import", "--template", "mail-server", "notes.md", "--project", "shop").code == 2


# --------------------------------------------------------------------------
# speed
# --------------------------------------------------------------------------

def test_importing_1000_sections_takes_seconds(db, cb, sql, tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    for f in range(20):
        parts = [f"# Service {f}\n"]
        for s in range(50):
            parts.append(f"## Endpoint {f}-{s} returns paginated results\n\nThe endpoint /v1/items/{f}/{s} "
                         f"pages with a cursor; page size defaults to 50 and is capped at 500. Clients must "
                         f"follow the next link rather than counting pages ({f}.{s}).\n")
        (root / f"service-{f}.md").write_text("\n".join(parts))
    t0 = time.monotonic()
    res = cb("import", str(root), "--project", "big")
    first = time.monotonic() - t0
    assert res.code == 0 and "1000 new" in res.out, res
    t0 = time.monotonic()
    res = cb("import", str(root), "--project", "big")
    again = time.monotonic() - t0
    assert "1000 unchanged" in res.out
    print(f"\nimport of 1000 sections: {first:.2f}s; re-import (all unchanged): {again:.2f}s")
    assert first < 15 and again < 15          # measured ~0.5 s on an idle 2-core machine
    assert sql("SELECT count(*) FROM clambake.project_memory WHERE project = 'big'") == [(1000,)]


def test_same_heading_in_two_files_of_a_checkout_stays_apart(db, cb, sql, tmp_path):
    repo = tmp_path / "shop"
    (repo / ".git").mkdir(parents=True)
    (repo / "frontend").mkdir()
    (repo / "CLAUDE.md").write_text("# CLAUDE.md\n\n## Commands\n\n`make test` runs the backend tests.\n")
    (repo / "frontend" / "CLAUDE.md").write_text("# CLAUDE.md\n\n## Commands\n\n`npm test` runs the UI tests.\n")
    res = cb("import", str(repo), "--project", "shop")
    assert res.code == 0 and "2 new" in res.out, res
    rows = sorted((m["title"], m["source_file"]) for m in memories(sql, "shop"))
    assert rows == [("CLAUDE.md > Commands", "CLAUDE.md"),
                    ("CLAUDE.md > Commands (frontend/CLAUDE.md)", "frontend/CLAUDE.md")]
    assert "0 new, 0 updated, 2 unchanged" in cb("import", str(repo), "--project", "shop").out


def test_a_readme_pitch_is_no_issue_but_an_adr_is_a_decision(db, cb, sql, tmp_path):
    (tmp_path / "README.md").write_text(
        "# Clambake\n\nCoordination for sessions.\n\n## The Problem\n\nSessions cannot see each other.\n\n"
        "## The Solution\n\nA shared Postgres.\n")
    (tmp_path / "0007-queue.md").write_text(
        "# Use a table as the queue\n\n## Context\n\nRedis lost jobs.\n\n## Decision\n\nA jobs table.\n")
    res = cb("import", str(tmp_path / "README.md"), str(tmp_path / "0007-queue.md"), "--project", "cb")
    assert res.code == 0, res
    got = {m["title"]: m["type"] for m in memories(sql, "cb")}
    assert got == {"Clambake": "pattern", "Clambake > The Solution": "pattern",
                   "Use a table as the queue": "decision"}
