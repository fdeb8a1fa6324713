"""Command-line consistency (issue 10, item 9): one meaning per short flag, --tag/--tags, choices and
required options in --help, ISO 8601 timestamps in JSON, --as only where it means something, and every
flag the user's seed README/CLAUDE.md shows still working."""

import datetime
import os
import re
import subprocess
import sys

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


# --------------------------------------------------------------------------
# fast_parse: the common command lines without argparse, from the same declarations
# --------------------------------------------------------------------------

def _argparse_result(argv):
    try:
        return vars(clambake.build_parser(clambake.command_in(argv)).parse_args(list(argv)))
    except (SystemExit, clambake.ClambakeError):
        return None


def _value_for(kw, n=0):
    if "choices" in kw:
        return list(kw["choices"])[n % len(kw["choices"])]
    return str(7 + n) if kw.get("type") is int else ["a b", "-", "x=y", "über"][n % 4]


def _command_lines(name):
    """For one subcommand: its minimal command line, then each option added in every spelling, and pairs."""
    sp = clambake.build_parser(name, argparse=clambake._Spec).subs[name]
    base = [name] + [_value_for(kw) for _, kw in sp.positionals if kw.get("nargs") is None]
    for flags, kw in sp.options:
        if kw.get("required"):
            base += [flags[0], _value_for(kw)]
    lines = [base]
    for flags, kw in sp.options:
        for flag in flags:
            if kw.get("action") == "store_true":
                lines += [base + [flag], base + [flag, flag], base + [flag + "=1"]]
            elif kw.get("action") == "append":
                lines += [base + [flag, _value_for(kw), flag, _value_for(kw, 1)]]
            else:
                lines += [base + [flag, _value_for(kw, 1)], base + [flag, _value_for(kw, 2), flag, _value_for(kw, 3)],
                          base + [flag], base + [flag, "--json"], base + [flag, "nonsense-value"]]
                if flag.startswith("--"):
                    lines += [base + [f"{flag}={_value_for(kw, 1)}"], base + [flag[:-1], _value_for(kw, 1)]]
    for (f1, k1), (f2, k2) in zip(sp.options, sp.options[1:]):
        lines.append(base + [f1[0]] + ([] if k1.get("action") == "store_true" else [_value_for(k1)])
                     + [f2[-1]] + ([] if k2.get("action") == "store_true" else [_value_for(k2, 1)]))
    lines.append([name] + ["nonsense-value"] * len(sp.positionals) + base[1 + len(sp.positionals):])
    lines += [[name], base + ["extra"], base + ["-h"], base + ["--help"], base + ["--"], base + ["-5"],
              base + ["--no-such-option"]]
    return lines


def test_fast_parse_agrees_with_argparse_on_every_command_line_it_takes():
    """Every command line fast_parse takes gives exactly argparse's result, and every line argparse
    rejects (or answers with help) fast_parse leaves to argparse.  Generated from the declarations, so a
    new option is covered the day it is added."""
    taken = left = 0
    for name in sorted(clambake.COMMAND_NAMES):
        for argv in _command_lines(name):
            fast = clambake.fast_parse(list(argv))
            slow = _argparse_result(argv)
            if fast is None:
                left += 1
                continue
            assert slow is not None, f"fast_parse took what argparse rejects: {argv}"
            assert vars(fast) == slow, argv
            taken += 1
    assert taken > 300 and left > 200, (taken, left)


@pytest.mark.parametrize("argv", [
    ["status"], ["inbox"], ["heartbeat", "--task", "benchmarking clambake"], ["check", "docker"],
    ["send", "--to", "@all", "--type", "warning", "--subject", "restarting docker", "--body", "back in 2 minutes"],
    ["recall", "--search", "docker restart"], ["recall", "--global", "--limit", "10"],
    ["register", "--project", "X", "--dir", "Y"], ["status", "--as", "api-1a2b"],
])
def test_the_everyday_command_lines_skip_argparse(argv):
    fast = clambake.fast_parse(list(argv))
    assert fast is not None and vars(fast) == _argparse_result(argv)


def test_the_fast_parser_does_not_search_path_for_the_installed_command():
    """Help texts name the installed command, found by a PATH search (on Windows, every PATH directory
    times every PATHEXT suffix): the recorded declarations leave them out, so a plain command line that
    prints no command never searches."""
    code = ("import clambake\n"
            "assert clambake.fast_parse(['heartbeat', '--task', 'x']) is not None\n"
            "print('searched' if 'path' in clambake._installed else 'not searched')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(os.path.abspath(clambake.__file__)),
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "not searched", (proc.stdout, proc.stderr)


@pytest.mark.parametrize("argv", [
    ["status", "--lim", "3"], ["--as", "x", "status"], ["status", "--limit", "three"], ["send", "--subject"],
    ["recall", "--global", "--project", "p"], ["check"], ["hook", "bogus"], ["status", "--json=yes"],
    ["server", "restart"], ["import", "a.md", "b.md"], ["off", "--project"], ["--version"], [],
])
def test_anything_unusual_is_left_to_argparse(argv):
    assert clambake.fast_parse(list(argv)) is None
