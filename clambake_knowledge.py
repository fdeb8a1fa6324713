"""clambake knowledge: import of markdown notes and templates, export, and consolidation (duplicate
and stale memories).

A part of clambake.py (see its docstring), run in its namespace when `import`, `export` or `consolidate`
needs it; it uses the core's names (q, transaction, ClambakeError, ...).  Not a module of its own.
"""

# --------------------------------------------------------------------------
# memory: import, export, templates, consolidation
# --------------------------------------------------------------------------

IMPORT_EXTENSIONS = (".md", ".markdown", ".mdown", ".mkd", ".mdx")
IMPORT_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox",
                    ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages", "bower_components"}
MAX_IMPORT_FILE = 2 * 1024 * 1024        # bytes; bigger files are refused (one file, the rest goes on)
MAX_IMPORT_FILES = 10000
TEMPLATE_PREFIX = "template:"
DEFAULT_IMPORT_TYPE = {"project": "pattern", "global": "lesson"}

_FENCE_RX = _LazyRe(r"^ {0,3}(`{3,}|~{3,})")
_ATX_RX = _LazyRe(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_META_RX = _LazyRe(r"^\s*<!--\s*clambake:\s*(.*?)\s*-->\s*$")

# Headings that are parts of the section above them (an issue's Problem / Fix / Status, a decision
# record's Context / Decision / Consequences): merged into that section's entry, never entries alone.
_PART_HEADINGS = _LazyRe(
    r"^(problems?|the problem|symptoms?|issue|bug|error|cause|root cause|causes|analysis|diagnosis|fix|the fix|fixes|"
    r"solution|solutions|resolution|workaround|status|context|background|decision|decision outcome|"
    r"consequences|options|options considered|considered options|alternatives|alternatives considered|"
    r"rationale|why|details|notes?|example|examples|steps|steps to reproduce|repro|reproduction|"
    r"references|links|see also|pros and cons|pros|cons|outcome|result|results|impact|date|"
    r"decision drivers|verification|how to verify|test|tests|follow-?ups?|next steps)$")

# Headings that only group what is under them ("Known issues", "Gotchas"): they give the children a
# type and a tag, but stay out of the children's titles.
_CONTAINER_HEADINGS = _LazyRe(
    r"^(issues?|known issues|open issues|problems|bugs|notes|misc|miscellaneous|gotchas|pitfalls|warnings|"
    r"caveats|decisions|architecture decisions|decision log|decision records|adrs?|conventions|fixes|"
    r"lessons( learned)?|learnings|faq|troubleshooting|todo|to ?do|changelog|change log|log|tips|"
    r"tips and tricks|things to know|patterns|rules|guidelines|index|contents|table of contents)$")

# (kind, words in a heading or a part heading), first match wins
_KIND_WORDS = [
    ("decision", r"decisions?|adrs?|architecture decisions?|decided|decision records?|rationale|we chose"),
    ("fix", r"fix(?:es|ed)?|solved|workarounds?|how we fixed"),
    ("issue", r"issues?|problems?|bugs?|symptoms?|incidents?|troubleshooting|broken|crash(?:es)?|"
              r"fail(?:s|ed|ing|ure)?"),
    ("gotcha", r"gotchas?|warnings?|pitfalls?|caveats?|beware|careful|traps?|watch out|footguns?|don'?t|do not|"
               r"never|avoid"),
    ("convention", r"conventions?|style|style guide|code style|coding standards?|standards|guidelines?|naming|"
                   r"rules|best practices|etiquette"),
    ("lesson", r"lessons?(?: learned)?|learnings?|retrospectives?|retro|post-?mortems?|takeaways?|til"),
    ("architecture", r"architecture|overview|design|structure|layout|components?|stack|topology|data model|"
                     r"schema|modules"),
    ("infrastructure", r"infrastructure|servers?|hosts?|networking|network|ports?|hosting|dns|deployment|"
                       r"environments?|machines?"),
    ("tool", r"tools?|tooling|commands?|cli|scripts?|makefile"),
    ("preference", r"preferences?|preferred"),
    ("credential", r"credentials?|secrets?|access|logins?|accounts?|api keys?"),
    ("feature", r"features?|roadmap|user stor(?:y|ies)|capabilit(?:y|ies)"),
    ("update", r"changelog|change log|release notes|updates?|progress|history|status report|news"),
]
STRONG_KINDS = ("decision", "fix", "issue", "gotcha", "convention", "lesson")   # the rest name a topic
# Sections that are no knowledge (license, contributing, a table of contents): not imported.
_SKIP_HEADINGS = _LazyRe(r"^(license|licence|contributing|contributors|authors|acknowledg(e)?ments|sponsors|"
                            r"table of contents|contents|toc|badges|support|code of conduct)$")
# kind -> (project type, global type); None: the default type
_KIND_TYPES = {
    "issue": ("issue", "lesson"), "fix": ("fix", "lesson"), "decision": ("decision", "convention"),
    "gotcha": ("gotcha", "lesson"), "convention": ("pattern", "convention"), "pattern": ("pattern", "convention"),
    "architecture": ("architecture", "infrastructure"), "infrastructure": ("architecture", "infrastructure"),
    "tool": ("pattern", "tool"), "preference": ("pattern", "preference"), "credential": (None, "credential"),
    "lesson": ("gotcha", "lesson"), "feature": ("feature", None), "update": ("update", None),
}
_RESOLVED_RX = _LazyRe(r"\b(fixed|resolved|solved|done|closed|complete|completed|mitigated)\b", re.I)
_DEPRECATED_RX = _LazyRe(r"\b(superseded|deprecated|rejected|obsolete|won'?t ?fix|abandoned|retired)\b", re.I)
_OPEN_RX = _LazyRe(r"\b(open|unresolved|in progress|investigating|ongoing|not fixed|pending|todo)\b", re.I)


def _kind_rx():
    return [(kind, re.compile(r"(?<![a-z0-9])(?:" + words + r")(?![a-z0-9])")) for kind, words in _KIND_WORDS]


def _match_kind(texts, strong):
    """The first kind whose words appear in one of `texts` (in order), among strong or topical kinds."""
    rx = [(k, r) for k, r in _kind_rx() if (k in STRONG_KINDS) == strong]
    for text in texts:
        for kind, krx in rx:
            if text and krx.search(text):
                return kind
    return None


def clean_heading(text):
    """Heading text without markdown decoration: emphasis, code marks, links, a leading '1.' and a
    trailing colon."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text or "")
    text = re.sub(r"[*_`]+", "", text).strip()
    text = re.sub(r"^(?:\d+(?:\.\d+)*[.)]?|[-*+])\s+", "", text)
    return " ".join(text.rstrip(":").split())


def _norm_words(text):
    return " ".join(re.sub(r"[^a-z0-9' -]+", " ", clean_heading(text).lower()).split())


def split_markdown(text):
    """Markdown -> list of [level, heading, body lines] in document order; level 0 is the text before
    the first heading.  Headings inside fenced code blocks are text (a shell comment is no heading);
    setext headings (a line underlined with === or ---) count."""
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":          # YAML front matter
        for i in range(1, min(len(lines), 200)):
            if lines[i].strip() in ("---", "..."):
                lines = lines[i + 1:]
                break
    nodes = [[0, None, []]]
    fence = None
    for line in lines:
        m = _FENCE_RX.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip(" `~"):
                fence = None
            nodes[-1][2].append(line)
            continue
        if m:
            fence = m.group(1)
            nodes[-1][2].append(line)
            continue
        h = _ATX_RX.match(line)
        body = nodes[-1][2]
        if h:
            nodes.append([len(h.group(1)), h.group(2) or "", []])
            continue
        underline = re.match(r"^ {0,3}(=+|-+)[ \t]*$", line)
        if (underline and body and body[-1].strip() and not re.match(r"^\s*([-*+>|]|\d+[.)]\s)", body[-1])
                and (len(body) == 1 or not body[-2].strip())):
            heading = body.pop()
            nodes.append([1 if underline.group(1)[0] == "=" else 2, heading.strip(), []])
            continue
        body.append(line)
    return nodes


def _body_text(lines):
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(line.rstrip() for line in lines)


def file_label(path):
    """A title for a file without headings: its name, with the directory when the name says little."""
    stem = os.path.splitext(os.path.basename(path.replace("\\", "/")))[0]
    words = " ".join(re.sub(r"[-_]+", " ", stem).split()) or stem
    parent = os.path.basename(os.path.dirname(path.replace("\\", "/")))
    if words.lower() in ("notes", "readme", "index", "todo", "notes", "claude", "agents", "memory", "log") and parent:
        words = f"{parent} {words}"
    return words


def infer_kind(own, parts, ancestors, body, path, level=2):
    """(kind or None, status) of a section: a strong word (issue, fix, decision, gotcha, convention,
    lesson) in its own heading first, then its part headings (Problem and Fix: a fix; Problem alone: an
    issue; Context and Decision: a decision) and labels in its text (**Problem:**, Status: fixed), then
    strong words in the headings above it (nearest first), then topic words (architecture, servers,
    commands...) in its heading and above, then the file's path (docs/adr/..., ISSUES.md)."""
    labels = set(parts)
    for m in re.finditer(r"(?m)^\s*(?:[-*]\s+)?(?:\*\*|__)?([A-Za-z][A-Za-z ]{1,24}?)(?:\*\*|__)?\s*:(?:\*\*|__)?\s",
                         body):
        labels.add(m.group(1).strip().lower())
    status_text = None
    m = re.search(r"(?im)^\s*(?:[-*]\s+)?(?:\*\*|__)?status(?:\*\*|__)?\s*:(?:\*\*|__)?\s*(.+)$", body)
    if m:
        status_text = m.group(1)
    elif "status" in parts:
        m = re.search(r"(?ims)^#{1,6}\s*status\s*#*\s*$\s*(.+?)$", body)
        status_text = m.group(1) if m else None
    has = lambda *names: any(n in labels for n in names)   # noqa: E731
    kind = _match_kind([own], strong=True)
    if level == 1 and kind is None:
        # a document's title section: its parts make a decision record, but a README's "The problem"
        # and "The solution" are a pitch, not an issue
        if has("decision", "decision outcome") and has("context", "consequences", "status", "options",
                                                        "considered options"):
            kind = "decision"
    elif kind is None or kind == "issue":
        if has("fix", "the fix", "solution", "resolution", "workaround", "fixes") and \
                has("problem", "the problem", "problems", "symptom", "symptoms", "issue", "bug", "error", "cause",
                    "root cause") or (kind == "issue" and has("fix", "solution", "resolution", "workaround")):
            kind = "fix"
        elif kind is None and has("decision", "decision outcome") and has("context", "consequences", "status",
                                                                          "options", "considered options"):
            kind = "decision"
        elif kind is None and has("problem", "the problem", "symptom", "symptoms", "bug", "root cause"):
            kind = "issue"
    near = list(reversed(ancestors))
    kind = kind or _match_kind(near, strong=True) or _match_kind([own], strong=False) \
        or _match_kind(near, strong=False)
    if kind is None:
        low = path.replace("\\", "/").lower()
        if re.search(r"(^|/)(adr|adrs|decisions?)(/|$)|(^|/)adr-?\d", low):
            kind = "decision"
        elif re.search(r"(^|/)(issues?|bugs?|problems?)[^/]*\.\w+$", low):
            kind = "issue"
        elif re.search(r"(^|/)(changelog|history)[^/]*\.\w+$", low):
            kind = "update"
    status = "active"
    if status_text:
        if _DEPRECATED_RX.search(status_text):
            status = "deprecated"
        elif _RESOLVED_RX.search(status_text) and not _OPEN_RX.search(status_text) and kind in ("issue", "fix"):
            status = "resolved"
    return kind, status


def type_for(kind, scope, default):
    """A memory type of `scope` for an inferred kind (or a type name), else the default."""
    types = GLOBAL_MEMORY_TYPES if scope == "global" else PROJECT_MEMORY_TYPES
    if kind in types:
        return kind
    mapped = _KIND_TYPES.get(kind, (None, None))[1 if scope == "global" else 0]
    return mapped or default


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def _fit_title(chain):
    """'A > B > C' within MAX_TITLE: leading context is dropped first, then the text is cut."""
    chain = [c for c in chain if c] or ["untitled"]
    while len(chain) > 1 and len(" > ".join(chain)) > MAX_TITLE:
        chain = chain[1:]
    title = " > ".join(chain)
    return title if len(title) <= MAX_TITLE else title[:MAX_TITLE - 3].rstrip() + "..."


def markdown_sections(text, path, scope, default_type):
    """Ordinary markdown -> entries: one per section that has text of its own (or in its part headings),
    titled 'Parent > Child' (grouping headings like 'Known issues' left out, kept as tags)."""
    nodes = split_markdown(text)
    out, stack = [], []          # stack: [level, clean heading, entry, inside a part heading]
    label = file_label(path)

    def new_entry(chain, raw_chain, own, body, ancestors_norm, level):
        return {"chain": chain, "raw": raw_chain, "own": own, "parts": [], "body": body,
                "ancestors": ancestors_norm, "level": level}

    preamble = new_entry([label], [], "", list(nodes[0][2]), [], 0)
    entries = [preamble]
    for level, heading, body in nodes[1:]:
        h = clean_heading(heading)
        norm = _norm_words(heading)
        while stack and stack[-1][0] >= level:
            stack.pop()
        if _PART_HEADINGS.match(norm) or (stack and stack[-1][3]):
            host = stack[-1][2] if stack else preamble
            host["parts"].append(norm)
            host["body"] += ["", heading_line(level, h)] + list(body)
            stack.append([level, h, host, True])       # deeper headings belong to the part too
            continue
        ancestors = [s[1] for s in stack]
        chain = [a for a in ancestors if not _CONTAINER_HEADINGS.match(_norm_words(a))] + [h]
        # a level-1 heading above is the document's title: it gives a type only when it is a grouping word
        hints = [_norm_words(a) for a, lv in ((s[1], s[0]) for s in stack)
                 if lv > 1 or _CONTAINER_HEADINGS.match(_norm_words(a))]
        e = new_entry(chain, ancestors + [h], norm, [] if _SKIP_HEADINGS.match(norm) else list(body), hints, level)
        e["tags"] = [_slug(a) for a in ancestors if len(a.split()) <= 3 and _slug(a)][-4:]
        entries.append(e)
        stack.append([level, h, e, False])
    seen = {}
    for e in entries:
        content = _body_text(e["body"])
        if not content.strip() or not re.sub(r"(?s)<!--.*?-->", "", content).strip():
            continue
        kind, status = infer_kind(e["own"], e["parts"], e["ancestors"], content, path, e["level"])
        raw = " > ".join(e["raw"])
        seen[raw] = seen.get(raw, 0) + 1
        if seen[raw] > 1:
            raw += f" #{seen[raw]}"
        title = _fit_title(e["chain"] if e["raw"] else [label])
        out.append({"title": title, "type": type_for(kind, scope, default_type), "status": status,
                    "content": content, "tags": e.get("tags", []), "heading": raw})
    return out


def heading_line(level, text):
    return "#" * max(1, level) + " " + text


def parse_meta(text):
    """The inside of <!-- clambake: ... -->: JSON ({"type": ...}) or key=value words."""
    text = text.strip()
    if text.startswith("{"):
        try:
            meta = json.loads(text)
        except ValueError as e:
            raise ValueError(f"bad clambake marker ({e})") from None
        if not isinstance(meta, dict):
            raise ValueError("bad clambake marker (not an object)")
        return meta
    import shlex
    meta = {}
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ValueError(f"bad clambake marker ({e})") from None
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"bad clambake marker: {word!r} is not key=value")
        meta[key.strip().lower()] = split_list(value) if key in ("tags", "files") else value
    return meta


def explicit_sections(text):
    """A file with <!-- clambake: ... --> markers (an export, a template): one entry per marked heading,
    its text running to the next marked heading; anything before the first marked heading is the file's
    own header and not imported.  -> list of entries, or None when the file has no marker."""
    lines = text.split("\n")
    starts, fence = [], None
    for i, line in enumerate(lines):
        m = _FENCE_RX.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip(" `~"):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        if _ATX_RX.match(line) and i + 1 < len(lines) and _META_RX.match(lines[i + 1]):
            starts.append(i)
    if not starts:     # an export of nothing still says what it is
        return [] if any(_META_RX.match(line) for line in lines) else None
    out = []
    for n, i in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        meta = parse_meta(_META_RX.match(lines[i + 1]).group(1))
        body = lines[i + 2:end]
        if body and not body[0].strip():
            body = body[1:]
        content = meta["content"] if isinstance(meta.get("content"), str) else _body_text(body)
        title = meta["title"] if isinstance(meta.get("title"), str) else clean_heading(_ATX_RX.match(lines[i]).group(2)
                                                                                      or "")
        out.append({"title": title, "content": content, "meta": meta})
    return out


def jsonl_sections(text):
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise ValueError(f"line {n} is not JSON") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("title"), str):
            raise ValueError(f"line {n} is not a memory (an object with a title)")
        out.append({"title": rec["title"], "content": rec.get("content") or "", "meta": rec})
    return out


def _meta_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return split_list(value)
    return [str(v) for v in value if str(v).strip()] if isinstance(value, list) else []


def explicit_entry(raw, scope, default_type):
    """An entry of an export or template (its marker says type, status, tags, files, provenance...)."""
    meta = raw["meta"]
    mtype = str(meta.get("type") or "").strip().lower()
    status = str(meta.get("status") or "active").strip().lower()
    src = meta.get("source") if isinstance(meta.get("source"), dict) else {}
    return {"title": " ".join(raw["title"].split()), "content": raw["content"],
            "type": type_for(mtype, scope, default_type) if mtype else default_type,
            "status": status if status in MEMORY_STATUSES else "active",
            "tags": [t.lower() for t in _meta_list(meta.get("tags"))], "files": _meta_list(meta.get("files")),
            "source_file": src.get("file") or meta.get("source_file"),
            "heading": src.get("heading") if src.get("file") else meta.get("source_heading"),
            "created_at": iso_time(meta.get("created_at") or meta.get("created")),
            "updated_at": iso_time(meta.get("updated_at") or meta.get("updated")),
            "old_id": meta.get("id"), "old_superseded_by": meta.get("superseded_by")}


def iso_time(value):
    """An ISO 8601 time from a marker, or None when absent or not one."""
    from datetime import datetime
    try:
        return datetime.fromisoformat(str(value)).isoformat() if value else None
    except ValueError:
        return None


def read_import_file(path):
    """The text of a file to import, or raise ValueError saying why it is refused."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise ValueError(f"cannot read ({e.strerror})") from None
    if size > MAX_IMPORT_FILE:
        raise ValueError(f"too large ({size / 1048576:.1f} MB; the limit is {MAX_IMPORT_FILE // 1048576} MB)")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"cannot read ({e.strerror})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):          # UTF-16 with a BOM (PowerShell's `>`)
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ValueError("binary or not UTF-8/UTF-16 text") from None
    else:
        if b"\x00" in data[:65536] or b"\x00" in data:
            raise ValueError("binary (contains NUL bytes)")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("binary or not UTF-8 text") from None
    if "\x00" in text:
        raise ValueError("binary (contains NUL characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def import_targets(paths):
    """Files named, matched by a glob, or (markdown only) found under a directory, skipping .git,
    node_modules, virtual environments and hidden directories.  -> (files, missing arguments)."""
    import glob
    files, missing, seen = [], [], set()

    def add(path):
        key = os.path.normcase(os.path.realpath(path))
        if key not in seen:
            seen.add(key)
            files.append(path)
    for arg in paths:
        if not os.path.exists(arg) and glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
        else:
            matches = [arg] if os.path.exists(arg) else []
        if not matches:
            missing.append(arg)
        for m in matches:
            if os.path.isdir(m):
                for root, dirs, names in os.walk(m):
                    dirs[:] = sorted(d for d in dirs if d not in IMPORT_SKIP_DIRS and not d.startswith(".")
                                     and not os.path.exists(os.path.join(root, d, "pyvenv.cfg")))
                    for name in sorted(names):
                        if name.lower().endswith(IMPORT_EXTENSIONS):
                            add(os.path.join(root, name))
            elif os.path.isfile(m):
                add(m)
        if len(files) > MAX_IMPORT_FILES:
            raise ClambakeError(f"more than {MAX_IMPORT_FILES} files to import; name fewer paths", USAGE)
    return files, missing


def project_dirs(project):
    """Directories the project is known to live in on this host (its registered working directories)."""
    if project is None:
        return []
    rows = q("SELECT DISTINCT working_dir FROM clambake.instances WHERE project = %s AND host = %s "
             "AND working_dir IS NOT NULL LIMIT 20", (project, socket.gethostname()))
    return [r["working_dir"] for r in rows if os.path.isdir(r["working_dir"])]


def source_key(path, bases):
    """How an imported file is named in provenance and related files: relative to the project's
    registered directory or the git top level holding it, else to the current directory, else
    absolute; always with '/'."""
    full = os.path.realpath(os.path.abspath(path))
    roots = [b for b in bases if full.startswith(os.path.join(os.path.realpath(b), ""))]
    if not roots:
        d = os.path.dirname(full)
        while True:
            if os.path.exists(os.path.join(d, ".git")):
                roots.append(d)
                break
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
    cwd = os.path.realpath(os.getcwd())
    if not roots and full.startswith(os.path.join(cwd, "")):
        roots.append(cwd)
    rel = os.path.relpath(full, max(roots, key=len)) if roots else full
    return rel.replace("\\", "/")


def section_hash(e):
    import hashlib
    data = json.dumps([e["title"], e["type"], e["status"], e["content"], e["tags"], e["files"]],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]


def file_entries(text, path, key, scope, default_type):
    """All entries of one file's text (markdown, an export, a template or JSON lines), checked."""
    if path.lower().endswith(".jsonl"):
        raws, explicit = jsonl_sections(text), True
    else:
        raws = explicit_sections(text)
        explicit = raws is not None
    if explicit:
        entries = [explicit_entry(r, scope, default_type) for r in raws]
    else:
        entries = markdown_sections(text, key, scope, default_type)
    seen = {}
    for e in entries:
        e.setdefault("files", [])
        if not e.get("source_file"):
            e["source_file"] = key
            heading = e.get("heading") or e["title"] if explicit else e["heading"]
            seen[heading] = seen.get(heading, 0) + 1
            e["heading"] = heading if seen[heading] == 1 else f"{heading} #{seen[heading]}"
            if not explicit and key not in e["files"]:
                e["files"] = [key] + e["files"]
        e["heading"] = e.get("heading") or ""
        e["title"] = _fit_title([" ".join(e["title"].split())]) if e["title"].strip() else file_label(key)
        e["tags"] = sorted(set(e["tags"]), key=e["tags"].index)[:MAX_TAGS]
        e["files"] = e["files"][:MAX_FILES]
        e["hash"] = section_hash(e)
    return entries


def check_entry(e):
    """Why an entry cannot be stored (None when it can): size, NUL, a secret."""
    if len(e["content"]) > MAX_CONTENT:
        return f"section too long ({len(e['content'])} characters; the limit is {MAX_CONTENT})"
    if any(len(t) > MAX_NAME for t in e["tags"]) or any(len(f) > MAX_PATH for f in e["files"]):
        return "a tag or file name is too long"
    if "\x00" in e["title"] + e["content"]:
        return "contains a NUL character"
    return None


def apply_entries(scope, project, entries, by, dry_run):
    """Store one file's entries in one transaction: new ones in one multi-row INSERT, changed ones
    (same source file and heading, different text) updated in place, unchanged ones skipped.  An
    active entry of the same title that came from elsewhere keeps its title: the new one is named
    'Title (source file)'; one with the same text is adopted (given this provenance).
    -> {"new": [...], "updated": [...], "unchanged": [...], "linked": [...]} of (id, entry)."""
    from psycopg2.extras import execute_values
    table = "clambake.global_memory" if scope == "global" else "clambake.project_memory"
    pcond = "" if scope == "global" else "AND project = %(project)s"
    result = {"new": [], "updated": [], "unchanged": [], "linked": []}
    if not entries:
        return result
    with transaction() as conn:
        q("SELECT pg_advisory_xact_lock(hashtext('clambake.memory:' || %s))", (project or "@global",))
        files = sorted({e["source_file"] for e in entries})
        existing = {(r["source_file"], r["source_heading"]): r for r in q(
            f"SELECT id, title, status, source_file, source_heading, source_hash FROM {table} "
            f"WHERE source_file = ANY(%(files)s) {pcond}", {"files": files, "project": project})}
        wanted = sorted({e["title"].lower() for e in entries}
                        | {f"{e['title']} ({source_label(e['source_file'])})".lower() for e in entries})
        taken = {}
        for r in q(f"SELECT id, lower(title) AS t, content, source_file FROM {table} WHERE status = 'active' "
                   f"AND lower(title) = ANY(%(t)s) {pcond}", {"t": wanted, "project": project}):
            taken.setdefault(r["t"], r)
        inserts = []
        for e in entries:
            ex = existing.get((e["source_file"], e["heading"]))
            if ex is not None:
                e["id"] = ex["id"]
                if ex["source_hash"] == e["hash"]:
                    result["unchanged"].append(e)
                    continue
                free_title(e, taken, own_id=ex["id"])
                result["updated"].append(e)
                if not dry_run:
                    q(f"UPDATE {table} SET title = %s, content = %s, memory_type = %s, tags = %s, related_files = %s, "
                      f"status = CASE WHEN status = 'superseded' THEN status ELSE %s END, source_hash = %s, "
                      f"updated_at = coalesce(%s::timestamptz, now()) WHERE id = %s",
                      (e["title"], e["content"], e["type"], e["tags"], e["files"], e["status"], e["hash"],
                       e.get("updated_at"), ex["id"]))
                continue
            same = taken.get(e["title"].lower()) if e["status"] == "active" else None
            if same is not None and same["source_file"] is None and \
                    (same["content"] or "").strip() == e["content"].strip():
                e["id"] = same["id"]
                result["linked"].append(e)
                if not dry_run:
                    q(f"UPDATE {table} SET source_file = %s, source_heading = %s, source_hash = %s WHERE id = %s",
                      (e["source_file"], e["heading"], e["hash"], same["id"]))
                continue
            if e["status"] == "active":
                free_title(e, taken)
            result["new"].append(e)
            inserts.append(e)
        if inserts and not dry_run:
            cols = "memory_type, title, content, status, tags, related_files, created_by, source_file, " \
                   "source_heading, source_hash, created_at, updated_at"
            tmpl = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s::timestamptz, now()), " \
                   "coalesce(%s::timestamptz, now()))"
            rows = [(e["type"], e["title"], e["content"], e["status"], e["tags"], e["files"], by, e["source_file"],
                     e["heading"], e["hash"], e.get("created_at"), e.get("updated_at") or e.get("created_at"))
                    for e in inserts]
            if scope == "project":
                cols = "project, " + cols
                tmpl = "(%s, " + tmpl[1:]
                rows = [(project,) + r for r in rows]
            ids = execute_values(conn.cursor(), f"INSERT INTO {table} ({cols}) VALUES %s RETURNING id", rows,
                                 template=tmpl, page_size=500, fetch=True)
            for e, (new_id,) in zip(inserts, ids):
                e["id"] = new_id
        if not dry_run:
            relink_superseded(table, entries)
    return result


def source_label(key):
    """A source file as named in a title: its path in the project, or its name when it is absolute."""
    return os.path.basename(key) if os.path.isabs(key) or re.match(r"^[A-Za-z]:[\\/]", key) else key


def free_title(e, taken, own_id=None):
    """Give an active entry a title no other active entry in the scope has: 'Title (source file)'."""
    other = taken.get(e["title"].lower())
    if other is not None and other["id"] != own_id:
        alt = _fit_title([f"{e['title']} ({source_label(e['source_file'])})"])
        if alt.lower() not in taken or taken[alt.lower()]["id"] == own_id:
            e["title"] = alt
    taken.setdefault(e["title"].lower(), {"id": own_id if own_id else -1, "source_file": e["source_file"],
                                          "content": e["content"]})


def relink_superseded(table, entries):
    """An export carries each entry's id and the id that superseded it: point the copies the same way."""
    by_old = {e["old_id"]: e["id"] for e in entries if e.get("old_id") is not None and e.get("id")}
    for e in entries:
        succ = by_old.get(e.get("old_superseded_by"))
        if succ and e.get("id") and succ != e["id"]:
            q(f"UPDATE {table} SET superseded_by = %s, status = 'superseded' WHERE id = %s", (succ, e["id"]))


def template_dir():
    return asset_path("templates")


def list_templates():
    """[(name, one-line description)] of the templates shipped in templates/."""
    out = []
    try:
        names = sorted(n for n in os.listdir(template_dir()) if n.endswith(".md"))
    except OSError:
        names = []
    for n in names:
        desc = ""
        try:
            with open(os.path.join(template_dir(), n), encoding="utf-8") as f:
                for line in f:
                    if line.strip() and not line.startswith("#") and not _META_RX.match(line):
                        desc = line.strip()
                        break
        except OSError:
            pass
        out.append((n[:-3], desc))
    return out


class Progress:
    """A progress line on stderr for long imports: only on a terminal, only after the first second."""

    def __init__(self, total):
        self.total, self.t0, self.last = total, time.monotonic(), 0.0
        self.on = total > 1 and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        self.shown = False

    def update(self, done, sections):
        now = time.monotonic()
        if self.on and now - self.t0 > 1.0 and now - self.last > 0.25:
            sys.stderr.write(f"\rclambake: importing {done}/{self.total} files, {sections} sections")
            sys.stderr.flush()
            self.last, self.shown = now, True

    def end(self):
        if self.shown:
            sys.stderr.write("\n")


def cmd_import(args):
    if args.list_templates:
        rows = list_templates()
        if args.json:
            emit_json({"templates": [{"name": n, "description": d} for n, d in rows]})
        else:
            for n, d in rows:
                emit(f"{n}: {d}")
            if not rows:
                emit(f"no templates in {template_dir()}")
        return OK
    if args.template and args.paths:
        raise ClambakeError("give PATH... or --template NAME, not both", USAGE)
    if not args.template and not args.paths:
        raise ClambakeError("nothing to import: give PATH... (files, directories, globs) or --template NAME",
                            USAGE, hint=f"templates: {script_cmd()} import --list-templates")
    for path in args.paths:
        check_text(path, "path", MAX_PATH, required=True)
    scope_flag = "global" if args.global_ else "project"
    types = GLOBAL_MEMORY_TYPES if scope_flag == "global" else PROJECT_MEMORY_TYPES
    default_type = check_choice(args.type, types, f"{scope_flag} memory type") if args.type \
        else DEFAULT_IMPORT_TYPE[scope_flag]
    if args.template:
        templates = dict(list_templates())
        name = args.template.strip().lower()
        name = name[:-3] if name.endswith(".md") else name
        if name not in templates:
            raise ClambakeError(f"unknown template {args.template!r}", REFUSED,
                                hint="available: " + ("; ".join(f"{n} ({d})" if d else n for n, d in templates.items())
                                                      or f"none (no .md files in {template_dir()})"))
    scope, project = memory_scope(args)
    me = whoami(args, required=False)
    by = me["instance_id"] if me else None
    if args.template:
        files, missing = [os.path.join(template_dir(), name + ".md")], []
        keys = {files[0]: TEMPLATE_PREFIX + name}
    else:
        files, missing = import_targets(args.paths)
        if not files and not missing:
            raise ClambakeError("no markdown files found in " + ", ".join(args.paths), REFUSED,
                                hint="directories contribute .md/.markdown files; name other files explicitly")
        bases = project_dirs(project)
        keys = {f: source_key(f, bases) for f in files}
    t0 = time.monotonic()
    progress = Progress(len(files))
    totals = {"new": [], "updated": [], "unchanged": [], "linked": []}
    refused, held, gone = [], [], []
    for n, path in enumerate(files, 1):
        key = keys[path]
        try:
            entries = file_entries(read_import_file(path), path, key, scope, default_type)
        except ValueError as e:
            refused.append((key, str(e)))
            continue
        ok = []
        for e in entries:
            why = check_entry(e)
            found = None if why or args.allow_secret else find_secret([e["title"], e["content"]] + e["tags"])
            if found:
                why = f"looks like it contains {found[0]} ({found[1]!r})"
            if why:
                held.append((key, e["title"], why))
            else:
                ok.append(e)
        res = apply_entries(scope, project, ok, by, args.dry_run)
        for k in totals:
            totals[k] += res[k]
        gone += stale_sources(scope, project, key, entries)
        progress.update(n, sum(len(v) for v in totals.values()))
    progress.end()
    dt = time.monotonic() - t0
    stored = totals["new"] + totals["updated"]
    if not args.dry_run and (stored or totals["linked"]):
        log_action(by, project, "import", f"imported {len(totals['new'])} new, {len(totals['updated'])} updated "
                   f"from {len(files) - len(refused)} file(s)" + (f" (template {args.template})" if args.template else ""))
    report_import(args, scope, project, files, totals, refused, held, missing, gone, dt)
    return REFUSED if refused or held or missing else OK


def stale_sources(scope, project, key, entries):
    """Entries imported earlier from this file whose section is no longer in it: (id, title)."""
    table = "clambake.global_memory" if scope == "global" else "clambake.project_memory"
    pcond = "" if scope == "global" else "AND project = %(project)s"
    headings = [e["heading"] for e in entries if e["source_file"] == key]
    rows = q(f"SELECT id, title FROM {table} WHERE source_file = %(key)s {pcond} AND status <> 'superseded' "
             f"AND NOT (source_heading = ANY(%(h)s)) ORDER BY id LIMIT 50",
             {"key": key, "project": project, "h": headings})
    return [(r["id"], r["title"]) for r in rows]


def report_import(args, scope, project, files, totals, refused, held, missing, gone, dt):
    where = "global memory" if scope == "global" else project
    counts = {}
    for e in totals["new"] + totals["updated"]:
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    if args.json:
        def brief(e):
            return {"id": e.get("id"), "title": e["title"], "type": e["type"], "status": e["status"],
                    "source": {"file": e["source_file"], "heading": e["heading"]}}
        emit_json({"dry_run": args.dry_run, "scope": scope, "project": project, "files": len(files),
                   "seconds": round(dt, 3), "types": counts,
                   **{k: [brief(e) for e in v] for k, v in totals.items()},
                   "refused": [{"file": f, "reason": r} for f, r in refused],
                   "held_back": [{"file": f, "title": t, "reason": r} for f, t, r in held],
                   "missing": missing, "gone_from_source": [{"id": i, "title": t} for i, t in gone]})
        return
    n = {k: len(v) for k, v in totals.items()}
    verb = "dry run: would import" if args.dry_run else "imported"
    emit(f"{verb} {n['new'] + n['updated']} sections from {len(files) - len(refused)} file(s) into {where}: "
         f"{n['new']} new, {n['updated']} updated, {n['unchanged']} unchanged"
         + (f", {n['linked']} already there" if n["linked"] else "") + f" ({dt:.2f}s)")
    if counts:
        emit("types: " + ", ".join(f"{t} {c}" for t, c in sorted(counts.items(), key=lambda x: (-x[1], x[0]))))
    if args.dry_run:
        for label, key in (("new", "new"), ("update", "updated")):
            for e in totals[key][:10]:
                emit(f"  {label}: {e['type']} [{e['status']}] {one_line(e['title'], 90)}"
                     + (f" (#{e['id']})" if e.get("id") else ""))
            if len(totals[key]) > 10:
                emit(f"  (+{len(totals[key]) - 10} more {label})")
    for f, r in refused:
        emit(f"refused {term_safe(f)}: {r}")
    for a in missing:
        emit(f"not found: {term_safe(a)}")
    if held:
        emit(f"held back {len(held)} section(s):")
        for f, t, r in held[:20]:
            emit(f"  {term_safe(f)} > {one_line(t, 80)}: {r}")
        if len(held) > 20:
            emit(f"  (+{len(held) - 20} more)")
        if any("looks like" in r for _, _, r in held):
            emit("  store where to find a secret, not the secret; --allow-secret imports them anyway")
    if gone:
        emit(f"no longer in their source ({len(gone)}), still stored; retire them with:")
        for i, t in gone[:10]:
            emit(f"  #{i} {one_line(t, 60)}: {script_cmd()} update-memory {i} --status deprecated")
        if len(gone) > 10:
            emit(f"  (+{len(gone) - 10} more; --json lists them all)")


def export_rows(scope, project, status, mtype):
    where = ["mem.scope = %(scope)s"] + (["mem.project = %(project)s"] if scope == "project" else [])
    if status != "any":
        where.append("mem.status = %(status)s")
    if mtype:
        where.append("mem.memory_type = %(type)s")
    return q(f"SELECT {RECALL_COLS} FROM {MEMORY_VIEW} WHERE {' AND '.join(where)} ORDER BY mem.id",
             {"scope": scope, "project": project, "status": status, "type": mtype})


def export_record(r):
    rec = {"id": r["id"], "scope": r["scope"], "project": r["project"], "type": r["memory_type"],
           "title": r["title"], "status": r["status"], "tags": r["tags"], "files": r["related_files"],
           "content": r["content"] or "", "created_at": r["created_at"].isoformat(),
           "updated_at": r["updated_at"].isoformat(), "created_by": r["created_by"]}
    if r["superseded_by"]:
        rec["superseded_by"] = r["superseded_by"]
    if r["source_file"]:
        rec["source"] = {"file": r["source_file"], "heading": r["source_heading"]}
    return rec


def export_markdown_entry(rec):
    """One entry in the import format: '## Title', a <!-- clambake: {...} --> marker, the text.  Text that
    would not read back the same (surrounding blank space, a marker of its own, an open code fence) goes
    into the marker instead."""
    meta = {k: rec[k] for k in ("type", "status", "tags", "files", "id", "superseded_by", "source",
                                "created_at", "updated_at") if rec.get(k) not in (None, [], "")}
    heading = "## " + rec["title"]
    m = _ATX_RX.match(heading)
    if clean_heading(m.group(2) or "") != rec["title"]:
        meta["title"] = rec["title"]

    def render(meta):
        marker = json.dumps(meta, ensure_ascii=True, separators=(",", ":")).replace("--", "-\\u002d")
        body = "" if "content" in meta else rec["content"]
        return f"{heading}\n<!-- clambake: {marker} -->\n\n" + (body + "\n\n" if body else "")
    text = render(meta)
    back = explicit_sections(text + "## end\n<!-- clambake: {} -->\n")
    if not back or len(back) != 2 or back[0]["content"] != rec["content"] or back[0]["title"] != rec["title"]:
        meta["content"] = rec["content"]
        text = render(meta)
    return text


def cmd_export(args):
    fmt = check_choice(args.format, ("md", "jsonl"), "format")
    status = check_choice(args.status, MEMORY_STATUSES + ("any",), "status")
    mtype = check_choice(args.type, PROJECT_MEMORY_TYPES + GLOBAL_MEMORY_TYPES, "memory type") if args.type else None
    if args.output is not None:
        check_text(args.output, "--output", MAX_PATH, required=True)
    scope, project = memory_scope(args)
    records = [export_record(r) for r in export_rows(scope, project, status, mtype)]
    if fmt == "jsonl":
        text = "".join(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n" for rec in records)
    else:
        where = "global memory" if scope == "global" else f"project {project}"
        text = (f"<!-- clambake: export -->\n# Clambake memory: {where}\n\n{len(records)} entries exported "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Import with: {script_cmd()} import FILE "
                f"--project NAME (or --global). Each entry is a heading, a clambake marker and its text.\n\n"
                + "".join(export_markdown_entry(rec) for rec in records))
    if args.output:
        tmp = args.output + ".clambake.tmp"
        try:
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            os.replace(tmp, args.output)
        except OSError as e:
            raise ClambakeError(f"cannot write {args.output}: {e.strerror}", REFUSED) from None
        note(f"exported {len(records)} entries ({fmt}) to {args.output}")
    else:
        sys.stdout.write(term_safe(text, multiline=True) if sys.stdout.isatty() else text)
    return OK


# consolidation: clusters of duplicates, likely stale entries

CLUSTER_MIN = 0.5            # weighted word overlap (cosine) that makes two entries duplicates
CLUSTER_LINK = 0.4           # every pair in a cluster at least this similar (no chains of drift)
EMBED_MIN = 0.92             # cosine of embeddings, where the column exists and is filled
MERGE_TYPE_ORDER = ("fix", "gotcha", "decision", "convention", "architecture", "infrastructure", "pattern",
                    "lesson", "tool", "preference", "credential", "feature", "issue", "update")


def _trigrams(text):
    out = set()
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        w = f"  {w} "
        out.update(w[i:i + 3] for i in range(len(w) - 2))
    return out


def similarity_index(rows):
    """Per entry: its weighted word vector (Postgres' English stemmer, rare words weigh more, title words
    double) and title trigrams.  -> (vectors, norms, trigrams)."""
    import math
    df = {}
    for r in rows:
        for w in set(r["lex"]):
            df[w] = df.get(w, 0) + 1
    n = len(rows)
    vec, norm, tri = {}, {}, {}
    for r in rows:
        title = set(r["tlex"])
        v = {w: math.log((n + 1) / (df[w] + 0.5)) * (2.0 if w in title else 1.0) for w in set(r["lex"])}
        vec[r["id"]] = v
        norm[r["id"]] = math.sqrt(sum(x * x for x in v.values())) or 1.0
        tri[r["id"]] = (_trigrams(r["title"]), frozenset(re.findall(r"\d+(?:\.\d+)*", r["title"])))
    return vec, norm, tri, df


def pair_similarity(a, b, vec, norm, tri):
    va, vb = vec[a], vec[b]
    if len(va) > len(vb):
        va, vb = vb, va
    cos = sum(x * vb[w] for w, x in va.items() if w in vb) / (norm[a] * norm[b])
    (ta, na), (tb, nb) = tri[a], tri[b]
    t = len(ta & tb) / len(ta | tb) if ta and tb else 0.0
    # titles alike only count when the texts agree too
    s = max(cos, (cos + t) / 2 if cos >= 0.3 else 0.0)
    # each title has a number the other lacks (port 5433 / port 8080, 15 to 16 / 16 to 17): other facts
    return s * 0.7 if na - nb and nb - na else s


def embedding_pairs(scope, project):
    """{(a, b): cosine} of nearest neighbours by embedding, when the memory table has a filled
    `embedding` column (pgvector); {} otherwise or on any error (it is an optional extra)."""
    table = "global_memory" if scope == "global" else "project_memory"
    try:
        has = q("SELECT 1 FROM information_schema.columns WHERE table_schema = 'clambake' AND table_name = %s "
                "AND column_name = 'embedding'", (table,), one=True)
        if not has:
            return {}
        ext = q("SELECT quote_ident(n.nspname) AS nsp FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE e.extname = 'vector'", one=True)
        if not ext:
            return {}
        dist = f"OPERATOR({ext['nsp']}.<=>)"       # pgvector's cosine distance, wherever it is installed
        pcond = "" if scope == "global" else "AND {a}.project = %(project)s"
        rows = q(f"SELECT a.id AS a, nb.id AS b, nb.sim FROM clambake.{table} a CROSS JOIN LATERAL ("
                 f"  SELECT b.id, 1 - (a.embedding {dist} b.embedding) AS sim FROM clambake.{table} b "
                 f"  WHERE b.id <> a.id AND b.status = 'active' AND b.embedding IS NOT NULL {pcond.format(a='b')} "
                 f"  ORDER BY a.embedding {dist} b.embedding LIMIT 5) nb "
                 f"WHERE a.status = 'active' AND a.embedding IS NOT NULL {pcond.format(a='a')} "
                 f"AND nb.sim >= %(min)s", {"project": project, "min": EMBED_MIN})
    except Exception:          # an optional extra: never fails the command
        return {}
    return {(min(r["a"], r["b"]), max(r["a"], r["b"])): float(r["sim"]) for r in rows}


def duplicate_clusters(rows, embedded=None):
    """Clusters of entries that say the same thing.  Candidate pairs share a rare word; a pair is a
    duplicate at CLUSTER_MIN (or by embedding); clusters grow by the most similar pairs first and only
    while every member stays CLUSTER_LINK-similar to every other.  -> [(similarity, [ids])]."""
    vec, norm, tri, df = similarity_index(rows)
    n = len(rows)
    rare = max(3, n // 10)
    postings = {}
    for r in rows:
        for w in vec[r["id"]]:
            if df[w] <= rare:
                postings.setdefault(w, []).append(r["id"])
    cand = set()
    for ids in postings.values():
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                cand.add((a, b) if a < b else (b, a))
    sims = {}
    for pair in cand | set(embedded or {}):
        s = pair_similarity(pair[0], pair[1], vec, norm, tri)
        e = (embedded or {}).get(pair)
        if e is not None and s >= 0.2:
            s = max(s, CLUSTER_MIN + (e - EMBED_MIN))
        sims[pair] = s
    edges = sorted(((s, p) for p, s in sims.items() if s >= CLUSTER_MIN), reverse=True)
    cluster = {r["id"]: {r["id"]} for r in rows}

    def sim(a, b):
        p = (a, b) if a < b else (b, a)
        if p not in sims:
            sims[p] = pair_similarity(p[0], p[1], vec, norm, tri)
        return sims[p]
    for s, (a, b) in edges:
        ca, cb = cluster[a], cluster[b]
        if ca is cb or len(ca) + len(cb) > 12:
            continue
        if all(sim(x, y) >= CLUSTER_LINK for x in ca for y in cb):
            merged = ca | cb
            for x in merged:
                cluster[x] = merged
    out, done = [], set()
    for members in cluster.values():
        if len(members) < 2 or id(members) in done:
            continue
        done.add(id(members))
        ids = sorted(members)
        pairs = [sim(x, y) for i, x in enumerate(ids) for y in ids[i + 1:]]
        out.append((round(sum(pairs) / len(pairs), 2), ids))
    return sorted(out, key=lambda c: (-c[0], c[1]))


def missing_files(files, bases):
    """Related files that exist nowhere they could be: absolute paths (of this OS) checked directly,
    relative ones against the project's directories (unchecked when none is known)."""
    import glob
    out = []
    for f in files:
        if f.startswith(TEMPLATE_PREFIX) or re.match(r"^[a-z][a-z0-9+.-]*://", f, re.I):
            continue
        if re.match(r"^[A-Za-z]:[\\/]", f) and os.name != "nt":
            continue                 # a Windows path seen from another OS: cannot tell
        cands = [f] if os.path.isabs(f) else [os.path.join(b, f) for b in bases]
        if not cands:
            continue
        if not any(glob.glob(c, recursive=True) if glob.has_magic(c) else os.path.exists(c) for c in cands):
            out.append(f)
    return out


def consolidate_data(scope, project, bases, stale_after):
    where = ["mem.scope = %(scope)s", "mem.status = 'active'"] + \
        (["mem.project = %(project)s"] if scope == "project" else [])
    rows = q(f"SELECT {RECALL_COLS}, tsvector_to_array(mem.search_tsv) AS lex, "
             f"tsvector_to_array(to_tsvector('english', mem.title)) AS tlex FROM {MEMORY_VIEW} "
             f"WHERE {' AND '.join(where)} ORDER BY mem.id LIMIT 20000", {"scope": scope, "project": project})
    by_id = {r["id"]: r for r in rows}
    flag = "--global" if scope == "global" else f"--project {quote_arg(project)}"
    clusters = []
    for sim, ids in duplicate_clusters(rows, embedding_pairs(scope, project)):
        members = sorted((by_id[i] for i in ids), key=lambda r: r["age"])        # newest first
        types = [m["memory_type"] for m in members]
        # the most common type; on a tie the one that says most (a fix over the issue it fixes)
        mtype = max(types, key=lambda t: (types.count(t), -MERGE_TYPE_ORDER.index(t)
                                          if t in MERGE_TYPE_ORDER else -99))
        tags = sorted({t for m in members for t in m["tags"]})[:MAX_TAGS]
        files = sorted({f for m in members for f in m["related_files"]})[:MAX_FILES]
        cmd = (f"{script_cmd()} remember {flag} --type {mtype} --title {quote_arg(members[0]['title'])} "
               f"--content -" + (f" --tags {quote_arg(','.join(tags))}" if tags else "")
               + (f" --files {quote_arg(','.join(files))}" if files else "")
               + f" --supersedes {','.join(str(i) for i in ids)}")
        clusters.append({"similarity": sim, "ids": ids, "members": members, "command": cmd})
    stale = []
    for r in rows:
        reasons = []
        gone = missing_files(r["related_files"], bases)
        if gone:
            reasons.append("missing file" + ("s" if len(gone) > 1 else "") + ": " + ", ".join(gone[:3])
                           + (f" +{len(gone) - 3}" if len(gone) > 3 else ""))
        if r["memory_type"] == "issue" and r["age"] > stale_after:
            reasons.append(f"issue unresolved for {span(r['age'])}")
        if reasons:
            status = "resolved" if not gone else "deprecated"
            stale.append({"memory": r, "reasons": reasons, "missing": gone,
                          "command": f"{script_cmd()} update-memory {r['id']} --status {status}"})
    return {"count": len(rows), "clusters": clusters, "stale": stale}


def cmd_consolidate(args):
    if not 1 <= args.limit <= 500:
        raise ClambakeError("--limit must be between 1 and 500", USAGE)
    stale_after = parse_duration(args.stale_after, "--stale-after")
    scope, project = memory_scope(args)
    if args.dir:
        bases = [real_dir(d) for d in split_list(args.dir)]
    else:
        bases = project_dirs(project)
        here = real_dir(os.getcwd())
        if scope == "project" and project_from_dir(here) == project and here not in bases:
            bases.append(here)
    data = consolidate_data(scope, project, bases, stale_after)
    where = "global memory" if scope == "global" else project
    clusters, stale = data["clusters"], data["stale"]
    if args.json:
        emit_json({"scope": scope, "project": project, "memories": data["count"], "checked_dirs": bases,
                   "clusters": [{"similarity": c["similarity"], "ids": c["ids"], "command": c["command"],
                                 "members": [{"id": m["id"], "type": m["memory_type"], "title": m["title"],
                                              "age_s": round(m["age"], 1)} for m in c["members"]]}
                                for c in clusters[:args.limit]],
                   "clusters_total": len(clusters),
                   "stale": [{"id": s["memory"]["id"], "type": s["memory"]["memory_type"],
                              "title": s["memory"]["title"], "reasons": s["reasons"], "missing_files": s["missing"],
                              "command": s["command"]} for s in stale[:args.limit]],
                   "stale_total": len(stale)})
        return OK
    emit(f"consolidate {where}: {data['count']} active memories; {len(clusters)} duplicate cluster(s) "
         f"({sum(len(c['ids']) for c in clusters)} entries), {len(stale)} likely stale"
         + ("" if bases or scope == "global" else "; related files not checked (no project directory known: "
            "--dir DIR)"))
    for n, c in enumerate(clusters[:args.limit], 1):
        emit(f"[{n}] {len(c['ids'])} alike ({c['similarity']:.2f}):")
        for m in c["members"]:
            emit(f"  #{m['id']} {m['memory_type']} {one_line(m['title'], 80)} ({ago(m['age'])})")
        emit(f"  merge: {term_safe(c['command'])}")
    if len(clusters) > args.limit:
        emit(f"(+{len(clusters) - args.limit} more clusters; --limit N)")
    if clusters:
        emit("(write the merged text on standard input; the merged ids become superseded and point to it)")
    if stale:
        emit("likely stale:")
        for s in stale[:args.limit]:
            m = s["memory"]
            emit(f"  #{m['id']} {m['memory_type']} {one_line(m['title'], 60)}: {term_safe('; '.join(s['reasons']))}"
                 f" -> {s['command']}")
        if len(stale) > args.limit:
            emit(f"  (+{len(stale) - args.limit} more; --limit N)")
    if not clusters and not stale:
        emit("nothing to consolidate")
    return OK
