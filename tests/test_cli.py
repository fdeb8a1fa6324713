"""Command-line consistency (issue 10, item 9): one meaning per short flag, --tag/--tags, choices and
required options in --help, ISO 8601 timestamps in JSON, --as only where it means something, and every
flag the user's seed README/CLAUDE.md shows still working."""

import datetime
import os
import re

import pytest

import clambake

SEEDS = "/work/shared/seeds"


def short_flags():
    """{command: {short flag: long option dest}} from the real parser."""
    parser = clambake.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    out = {}
    for name, sp in sub.choices.items():
        flags = {}
        for action in sp._actions:
            shorts = [o for o in action.option_strings if re.fullmatch(r"-[A-Za-z]", o)]
            longs = [o for o in action.option_strings if o.startswith("--")]
            for s in shorts:
                flags[s] = longs[0] if longs else action.dest
        out[name] = flags
    return out


def test_each_short_flag_has_one_meaning_across_commands():
    meanings = {}
    for command, flags in short_flags().items():
        for short, long in flags.items():
            meanings.setdefault(short, set()).add(long)
    clashes = {s: m for s, m in meanings.items() if len(m) > 1}
    assert not clashes, clashes
    assert meanings["-s"] == {"--subject"}


def test_dropped_short_flags_fail_with_a_clear_usage_error(db, cb):
    assert cb("register", "--project", "cli").code == 0
    res = cb("recall", "-s", "docker")
    assert res.code == 2 and res.err.startswith("clambake: error: ") and "Traceback" not in res.err
    res = cb("recall", "--search", "docker")
    assert res.code == 0, res


@pytest.mark.parametrize("flag", ["--tag", "--tags"])
def test_tag_and_tags_both_work(db, cb, flag):
    assert cb("register", "--project", "cli").code == 0
    assert cb("remember", "--project", "cli", "--type", "gotcha", "--title", "t " + flag, "--content", "c",
              flag, "docker,db").code == 0
    got = cb.json("recall", "--project", "cli", flag, "docker")["memories"]
    assert [m["title"] for m in got] == ["t " + flag]
    mid = got[0]["id"]
    assert cb("update-memory", str(mid), flag, "redis").code == 0
    assert cb.json("recall", "--project", "cli", flag, "redis")["memories"][0]["id"] == mid


def test_help_shows_choices_and_required_options(cb):
    res = cb("send", "--help")
    assert res.code == 0
    assert "{info,warning,blocker,request,done}" in res.out
    assert "required options:" in res.out and "--subject SUBJECT" in res.out.split("required options:")[1]
    usage = res.out.split("\n\n")[0]
    assert re.search(r"\s--subject\s+SUBJECT", usage) and "[--subject" not in usage
    res = cb("heartbeat", "--help")
    assert "{active,idle,busy,shutting_down}" in res.out
    res = cb("recall", "--help")
    assert "{active,resolved,deprecated,superseded,any}" in res.out and "gotcha" in res.out
    for command, option in (("remember", "--title"), ("log", "--action"), ("log", "--summary")):
        out = cb(command, "--help").out
        assert option in out.split("required options:")[1], (command, option)


def test_choices_stay_case_insensitive(db, cb):
    iid = cb.json("register", "--project", "cli")["instance_id"]
    other = cb.json("register", "--project", "cli2", "--dir", "/")["instance_id"]
    res = cb("--as", iid, "send", "--to", other, "--type", "WARNING", "--subject", "upper case")
    assert res.code == 0 and "warning" in res.out
    assert cb("--as", iid, "heartbeat", "--status", "Busy").code == 0
    res = cb("--as", iid, "send", "--type", "urgent", "--subject", "x")
    assert res.code == 2 and "info, warning, blocker, request, done" in res.err


def test_json_timestamps_are_iso_8601(db, cb):
    iid = cb.json("register", "--project", "cli")["instance_id"]
    other = cb.json("register", "--project", "cli2", "--dir", "/")["instance_id"]
    assert cb("--as", iid, "send", "--to", other, "--subject", "when").code == 0
    msg = cb.json("--as", other, "inbox", "--peek")["messages"][0]
    for key in ("created_at", "expires_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", msg[key]), msg[key]
        datetime.datetime.fromisoformat(msg[key])


def test_as_only_where_it_means_something(db, cb):
    iid = cb.json("register", "--project", "cli")["instance_id"]
    for argv in (["init", "--as", iid], ["--as", iid, "init"], ["cleanup", "--as", iid, "--dry-run"],
                 ["--as", iid, "install-hooks", "--dry-run"]):
        res = cb(*argv)
        assert res.code == 2 and res.err.startswith("clambake: error: "), (argv, res)
    for argv in (["--as", iid, "whoami"], ["whoami", "--as", iid], ["check", "docker", "--as", iid],
                 ["status", "--as", iid]):
        assert cb(*argv).code == 0, argv


def seed_commands():
    """Every `python .../clambake.py ...` line the seeds show, placeholders filled in."""
    out = []
    for name in sorted(os.listdir(SEEDS)) if os.path.isdir(SEEDS) else []:
        for line in open(os.path.join(SEEDS, name), encoding="utf-8"):
            m = re.search(r"python \S*clambake\.py ([^`\n]+)", line)
            if m:
                out.append(m.group(1).strip())
    return out


def test_every_seed_flag_parses():
    commands = seed_commands()
    if not commands:
        pytest.skip("the seed files are not on this machine")
    flags = set()
    parser = clambake.build_parser()
    for text in commands:
        text = (text.replace("<project-name>", "shop").replace("<name>", "shop").replace("<type>", "gotcha")
                .replace("<working-dir>", "/tmp").replace("<command>", "status"))
        import shlex
        argv = shlex.split(text)
        flags.update(a for a in argv if a.startswith("-"))
        if argv[0] == "status":
            continue
        args = parser.parse_args(clambake.glue_dash_values(argv))
        assert args.func, text
    assert {"--project", "--dir", "--to", "--type", "--subject", "--body", "--title", "--content", "--global",
            "--limit"} <= flags
