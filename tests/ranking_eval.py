"""hit@1 / hit@3 of `recall --search` on the retrieval corpus (tests/retrieval_corpus.py), or with
--holdout on the validation set (tests/retrieval_holdout.py), per kind.

Used by tests/test_retrieval.py, and on its own to compare versions of clambake.py:

    python tests/ranking_eval.py --dsn "host=... dbname=..." [--clambake path/to/clambake.py]
                                 [--embed-url http://127.0.0.1:PORT]   (hybrid)

The database must be empty (no clambake schema): the corpus is stored through `remember`, the way
sessions store memories (with an embedding provider configured in the environment, they get
embedded as they are stored).
"""

import argparse
import importlib.util
import io
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from retrieval_corpus import ALL, KINDS, QUERIES  # noqa: E402


def load_module(path):
    spec = importlib.util.spec_from_file_location("clambake_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(mod, argv, env):
    """mod.main(argv) with env applied and stdout captured -> (code, stdout, stderr)."""
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        try:
            code = mod.main(argv)
        except SystemExit as e:
            code = e.code
    finally:
        sys.stdout, sys.stderr = saved
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if hasattr(mod, "close_conn"):
            mod.close_conn()
    return code, out.getvalue(), err.getvalue()


def load_corpus(mod, env, memories=ALL):
    """Store every memory through remember (and set statuses); -> {key: id}."""
    code, out, err = run(mod, ["init"], env)
    assert code == 0, (out, err)
    ids = {}
    for mem in memories:
        argv = ["remember"] + (["--global"] if mem["scope"] == "global" else ["--project", mem["scope"]])
        argv += ["--type", mem["type"], "--title", mem["title"], "--content", mem["content"], "--json"]
        if mem["tags"]:
            argv += ["--tags", mem["tags"]]
        if mem["files"]:
            argv += ["--files", mem["files"]]
        code, out, err = run(mod, argv, env)
        assert code == 0, (mem["key"], out, err)
        ids[mem["key"]] = json.loads(out)["id"]
    return ids


def evaluate(mod, env, ids, queries=QUERIES):
    """-> {kind: [hit@1, hit@3, n]}, misses [(kind, query, expected, got keys, method)]."""
    keys = {v: k for k, v in ids.items()}
    table = {k: [0, 0, 0] for k in KINDS}
    misses = []
    for kind, query, expected in queries:
        code, out, err = run(mod, ["recall", "--status", "any", "--search", query, "--limit", "5", "--json"], env)
        assert code == 0, (query, out, err)
        data = json.loads(out)
        got = [keys.get(m["id"]) for m in data["memories"]]
        row = table[kind]
        row[2] += 1
        row[0] += got[:1] == [expected]
        row[1] += expected in got[:3]
        if got[:1] != [expected]:
            misses.append((kind, query, expected, got[:3], data["method"]))
    return table, misses


def format_table(table):
    lines = [f"{'kind':<11} {'n':>3} {'hit@1':>12} {'hit@3':>12}"]
    tot = [0, 0, 0]
    for kind in KINDS:
        h1, h3, n = table[kind]
        tot = [tot[0] + h1, tot[1] + h3, tot[2] + n]
        lines.append(f"{kind:<11} {n:>3} {h1:>4} {100.0 * h1 / n:5.1f}% {h3:>4} {100.0 * h3 / n:5.1f}%")
    h1, h3, n = tot
    lines.append(f"{'all':<11} {n:>3} {h1:>4} {100.0 * h1 / n:5.1f}% {h3:>4} {100.0 * h3 / n:5.1f}%")
    return "\n".join(lines)


def totals(table):
    h1 = sum(v[0] for v in table.values())
    h3 = sum(v[1] for v in table.values())
    n = sum(v[2] for v in table.values())
    return h1 / n, h3 / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", required=True, help="an empty database")
    ap.add_argument("--clambake", default=os.path.join(os.path.dirname(HERE), "clambake.py"))
    ap.add_argument("--misses", action="store_true", help="list the queries that missed")
    ap.add_argument("--embed-url", help="embedding provider for hybrid ranking (e.g. tests/embed_server.py's)")
    ap.add_argument("--embed-model", default="wordllama-256")
    ap.add_argument("--holdout", action="store_true",
                    help="the validation set (tests/retrieval_holdout.py) instead of the corpus's queries")
    args = ap.parse_args()
    mod = load_module(args.clambake)
    env = {"CLAMBAKE_DSN": args.dsn}
    if args.embed_url:
        env.update(CLAMBAKE_EMBED_URL=args.embed_url, CLAMBAKE_EMBED_MODEL=args.embed_model,
                   CLAMBAKE_EMBED_BUDGET="5s")
    if args.holdout:
        from retrieval_holdout import HOLDOUT_ALL, HOLDOUT_QUERIES
        ids = load_corpus(mod, env, HOLDOUT_ALL)
        table, misses = evaluate(mod, env, ids, HOLDOUT_QUERIES)
    else:
        ids = load_corpus(mod, env)
        table, misses = evaluate(mod, env, ids)
    print(format_table(table))
    if args.misses:
        for miss in misses:
            print("miss:", *miss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
