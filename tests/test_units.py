"""Table-driven tests of the pure helpers (no database), and a drift test that the program and
schema.sql agree on every enumerated value and on the schema version."""

import os
import re

import pytest

import clambake
from clambake import ClambakeError
from conftest import REPO


def code_of(fn, *args):
    try:
        fn(*args)
    except ClambakeError as e:
        return e.code
    return 0


# --------------------------------------------------------------------------
# durations
# --------------------------------------------------------------------------

@pytest.mark.parametrize("text,seconds", [
    ("45", 45), ("45s", 45), ("45 s", 45), ("1.5", 1.5), ("10m", 600), ("10min", 600), ("2h", 7200),
    ("2hrs", 7200), ("7d", 604800), ("1w", 604800), ("3days", 259200), (" 5M ", 300), ("0.5h", 1800),
    ("3650d", 3650 * 86400),
])
def test_parse_duration_accepts(text, seconds):
    assert clambake.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "-3", "soon", "2 fortnights", "1y", "10mm", "3651d", "1e3",
                                  "nan", "inf", "5 m s", "--2h"])
def test_parse_duration_refuses(text):
    assert code_of(clambake.parse_duration, text) == clambake.USAGE


@pytest.mark.parametrize("text,seconds", [("90", 90 * 86400), ("0.5", 43200), ("1", 86400), ("12w", 12 * 604800),
                                          ("36h", 36 * 3600), ("30d", 30 * 86400)])
def test_log_days_plain_numbers_are_days(text, seconds):
    assert clambake.log_days(text) == seconds


@pytest.mark.parametrize("text", ["0", "0.0", "-1", "x", "0d"])
def test_log_days_refuses(text):
    assert code_of(clambake.log_days, text) == clambake.USAGE


@pytest.mark.parametrize("seconds,shown", [(0, "0s"), (59.4, "59s"), (60, "1m"), (89, "1m"), (3569, "59m"),
                                           (3600, "1h"), (84599, "23h"), (86400, "1d"), (-5, "0s")])
def test_span(seconds, shown):
    assert clambake.span(seconds) == shown


# --------------------------------------------------------------------------
# shell splitting and argv gluing
# --------------------------------------------------------------------------

@pytest.mark.parametrize("command,parts", [
    ("docker ps", [["docker", "ps"]]),
    ("a; b", [["a"], ["b"]]),
    ("a && b || c", [["a"], ["b"], ["c"]]),
    ("a | b", [["a"], ["b"]]),
    ("echo 'x; y' && z", [["echo", "x; y"], ["z"]]),
    ('echo "a && b"; c', [["echo", "a && b"], ["c"]]),
    ('echo "say \\"hi\\"; ok"', [["echo", 'say "hi"; ok']]),
    ("echo a\\;b", [["echo", "a;b"]]),
    ("a\nb", [["a"], ["b"]]),
    ("a &", [["a"]]),
    ("   ", []),
    ("echo 'unterminated; rest", [["echo", "unterminated; rest"]]),
    ("cat F:\\Docker\\x.yml", [["cat", "F:\\Docker\\x.yml"]]),          # a Windows path keeps its backslashes
    ("echo $(docker ps) done", [["echo", "$(docker ps)", "done"], ["docker", "ps"]]),
])
def test_shell_parts(command, parts):
    """Simple commands as their words (quotes removed), substitutions also as commands of their own."""
    assert [words for words, _redirects, _piped in clambake.shell_parts(command)] == parts


def test_shell_parts_redirections_and_pipes():
    assert clambake.shell_parts("echo x > out.txt 2>&1 | tee -a log") == [
        (["echo", "x"], ["out.txt"], False), (["tee", "-a", "log"], [], True)]
    assert clambake.shell_parts("cat <<'EOF' > f\nrm -rf /\nEOF\nls") == [(["cat"], ["f"], False), (["ls"], [], False)]


@pytest.mark.parametrize("argv,glued", [
    (["recall", "--search", "-docker"], ["recall", "--search=-docker"]),
    (["send", "--subject", "-1 failing test"], ["send", "--subject=-1 failing test"]),
    (["send", "--subject", "--to"], ["send", "--subject", "--to"]),          # an option stays an option
    (["send", "--subject", "-s"], ["send", "--subject", "-s"]),
    (["send", "--body", "-"], ["send", "--body", "-"]),                       # '-' is standard input
    (["log", "--summary", "-x -y"], ["log", "--summary=-x -y"]),
    (["status", "--limit", "-3"], ["status", "--limit", "-3"]),               # not a text option
])
def test_glue_dash_values(argv, glued):
    assert clambake.glue_dash_values(argv) == glued


@pytest.mark.parametrize("argv,name", [
    (["send", "--subject", "a\udcff"], "--subject"),
    (["send", "--title=x\udce9"], "--title"),
    (["read", "\udc80"], "argument 2"),
])
def test_check_utf8_names_the_argument(argv, name):
    with pytest.raises(ClambakeError) as e:
        clambake.check_utf8(argv)
    assert e.value.code == clambake.USAGE and str(e.value).startswith(name + " is not valid UTF-8")


def test_check_utf8_passes_valid_text():
    clambake.check_utf8(["send", "--subject", "caf\u00e9 \u2713 \U0001f600"])


# --------------------------------------------------------------------------
# text safety and normalisation
# --------------------------------------------------------------------------

@pytest.mark.parametrize("raw,single,multi", [
    ("plain", "plain", "plain"),
    ("a\x1b[2Jb", "a\\x1b[2Jb", "a\\x1b[2Jb"),
    ("t\x1b]0;x\x07", "t\\x1b]0;x\\x07", "t\\x1b]0;x\\x07"),
    ("x\ny", "x\\x0ay", "x\ny"),
    ("x\r\ny", "x\\x0d\\x0ay", "x\ny"),
    ("over\rwrite", "over\\x0dwrite", "over\\x0dwrite"),
    ("tab\there", "tab\\x09here", "tab\there"),
    ("c1\x9bm", "c1\\x9bm", "c1\\x9bm"),
    ("del\x7f", "del\\x7f", "del\\x7f"),
    ("bidi\u202eevil", "bidi\\u202eevil", "bidi\\u202eevil"),
    ("caf\u00e9 \u2713", "caf\u00e9 \u2713", "caf\u00e9 \u2713"),
    (None, "", ""),
])
def test_term_safe(raw, single, multi):
    assert clambake.term_safe(raw) == single
    assert clambake.term_safe(raw, multiline=True) == multi


def test_one_line_collapses_then_escapes_then_cuts():
    assert clambake.one_line("a\n\n b\x1b[1m  c", 100) == "a b\\x1b[1m c"
    assert clambake.one_line("x" * 50, 10) == "xxxxxxx..."


@pytest.mark.parametrize("raw,norm", [
    ("docker", "docker"), ("Docker", "docker"), ("  docker  ", "docker"), ("sec\u2010res", "sec-res"),
    ("sec\u2013res", "sec-res"), ("sec\u2014res", "sec-res"), ("sec\u2212res", "sec-res"),
    ("sec\u200b-res", "sec-res"), ("sec-\u00adres", "sec-res"), ("\ufeffdocker", "docker"),
    ("\uff44\uff4f\uff43\uff4b\uff45\uff52", "docker"), ("port  8080", "port 8080"),
    ("docker-compose.yml", "docker-compose.yml"),
])
def test_norm_resource(raw, norm):
    assert clambake.norm_resource(raw) == norm


@pytest.mark.parametrize("value,key", [
    ("abc-123", "abc-123"), ("ab\x00cd", "abcd"), ("  ", None), (None, None), ("\x1b]0;x\x07", "]0;x"),
    ("s" * 500, "s" * 200), (["a"], "['a']"),
])
def test_session_key_of(value, key):
    assert clambake.session_key_of(value) == key


# --------------------------------------------------------------------------
# DSN secrets
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dsn,must_hide", [
    ("postgresql://u:s3cretpw@h:5432/db", ["s3cretpw"]),
    ("postgresql://u:p4ss@w0rd99@h/db", ["p4ss", "w0rd99"]),
    ("postgres://u:a@b@c@h/db", []),
    ("host=h user=u password=topsecret dbname=d", ["topsecret"]),
    ("host=h password='two words' user=u", ["two words"]),
    ("postgresql://u@h/db", []),
])
def test_dsn_secrets_cover_every_password_fragment(dsn, must_hide):
    secrets = clambake.dsn_secrets(dsn, {})
    text = clambake.scrub(f"could not connect using {dsn}", secrets)
    for frag in must_hide:
        assert frag not in text


# --------------------------------------------------------------------------
# the secrets guard
# --------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE...",
    "key AKIAIOSFODNN7EXAMPLE in the config",
    "token ghp_" + "a" * 36,
    "slack xoxb-1234567890-abcdefghij",
    "use sk-ant-" + "b" * 30,
    "stripe sk_live_" + "c" * 24,
    "AIza" + "d" * 35,
    "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "postgresql://admin:hunter2@db:5432/x",
    "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
    "mysql --password hunter2pass",
    "POSTGRES_PASSWORD=supersecret",
    '"db_password": "letmein123"',
    "api_key: 9f8e7d6c5b4a",
])
def test_secret_guard_refuses(text):
    assert code_of(clambake.secret_guard, [text], False) == clambake.USAGE
    assert code_of(clambake.secret_guard, [text], True) == 0           # --allow-secret


@pytest.mark.parametrize("text", [
    "password is in the vault", "POSTGRES_PASSWORD=${POSTGRES_PASSWORD}", "password: <your password>",
    "token = os.environ['TOKEN']", "postgresql://user:${PASS}@db/x", "postgresql://user@db/x",
    "the api_key setting is optional", "set PGPASSWORD from the pgpass file", "password=***",
    "restart docker before the build", "--password-file /run/secrets/db",
])
def test_secret_guard_passes_ordinary_text(text):
    assert code_of(clambake.secret_guard, [text], False) == 0


def test_secret_guard_never_echoes_the_secret():
    with pytest.raises(ClambakeError) as e:
        clambake.secret_guard(["POSTGRES_PASSWORD=supersecret"], False)
    assert "supersecret" not in str(e.value) and "POSTGRES_PASSWORD" in str(e.value)


# --------------------------------------------------------------------------
# drift: the program's enums and version against schema.sql
# --------------------------------------------------------------------------

def check_values(sql, constraint):
    rows = sql("SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_namespace n "
               "ON n.oid = c.connamespace WHERE n.nspname = 'clambake' AND c.conname = %s", (constraint,))
    assert rows, f"no constraint {constraint}"
    return set(re.findall(r"'([^']*)'::text", rows[0][0]))


@pytest.mark.parametrize("constraint,values", [
    ("instances_status_check", clambake.INSTANCE_STATUSES),
    ("messages_type_check", clambake.MESSAGE_TYPES),
    ("messages_target_kind_check", ("all", "project", "instance")),
    ("project_memory_status_check", clambake.MEMORY_STATUSES),
    ("global_memory_status_check", clambake.MEMORY_STATUSES),
])
def test_python_enums_equal_the_schema_check_constraints(db, sql, constraint, values):
    assert check_values(sql, constraint) == set(values)


def test_schema_version_agrees(db, sql):
    with open(os.path.join(REPO, "schema.sql"), encoding="utf-8") as f:
        text = f.read()
    m = re.findall(r"\('schema_version',\s*'(\d+)'\)", text)
    assert m and {int(v) for v in m} == {clambake.SCHEMA_VERSION}
    assert sql("SELECT value FROM clambake.meta WHERE key = 'schema_version'")[0][0] == str(clambake.SCHEMA_VERSION)
