"""The retrieval corpus: what one developer's sessions stored over half a year, and questions later
sessions asked about it.

MEMORIES extends tests/memory_corpus.py's CORPUS (the two together are the corpus: 160 memories over
five projects and global memory) with two more projects (`mail`, a Stalwart mail server; `infra`, the
home lab: Traefik, Ollama, backups, Keycloak) and more entries for the first three.

QUERIES: (kind, query, key expected first).  Four kinds, written as a session would type them, without
looking at how recall ranks:
    keyword     a few words the entry itself uses
    paraphrase  the same need in other words (few or no words shared with the entry)
    question    a natural question, with the filler words and sometimes a flag (-v) or "or"
    typo        keywords with one or two typing mistakes
Every query is searched over all scopes (an unregistered recall without --project/--global).
"""

from memory_corpus import CORPUS


def m(key, scope, mtype, title, content, tags="", files="", status=None):
    d = dict(key=key, scope=scope, type=mtype, title=title, content=content, tags=tags, files=files)
    if status:
        d["status"] = status
    return d


MEMORIES = [
    # ------------------------------------------------------------------ mail (Stalwart)
    m("stalwart-dkim", "mail", "fix", "DKIM signatures failed after rotating the selector",
      "Gmail marked mail as dkim=fail: the new selector's TXT record was published with quotes split at 255 "
      "characters by the DNS panel. Publish the key as one string per 255-char chunk without extra spaces.",
      "dns,dkim"),
    m("stalwart-spf-include", "mail", "gotcha", "SPF allows only ten DNS lookups",
      "Adding the newsletter provider's include pushed SPF to 11 lookups and receivers returned permerror. "
      "Flatten the provider's ranges into ip4: entries.", "dns,spf"),
    m("stalwart-port25", "mail", "issue", "The ISP blocks outbound port 25",
      "Direct delivery from home times out on port 25. Outgoing mail is relayed through the VPS smarthost on "
      "submission port 587.", "smtp,networking"),
    m("stalwart-acme", "mail", "decision", "Stalwart gets its certificates from Traefik, not its own ACME",
      "Two ACME clients for one domain hit the Let's Encrypt rate limit. Traefik owns the certificates and "
      "a sidecar copies them into Stalwart's certs volume.", "tls,traefik"),
    m("stalwart-rspamd", "mail", "pattern", "Spam filtering stays in Stalwart's built-in filter",
      "The built-in spam filter with the bayes classifier trained on the Junk folder is good enough; an "
      "external rspamd container added memory and nothing measurable.", "spam"),
    m("stalwart-imap-idle", "mail", "gotcha", "Phones stop getting push after the proxy idle timeout",
      "IMAP IDLE connections through Traefik were cut after 60 s of silence. Raise the TCP router's idle "
      "timeout to 30 minutes for port 993.", "imap,traefik"),
    m("stalwart-backup", "mail", "architecture", "Mail data lives in RocksDB on the mail-data volume",
      "The store is RocksDB; blobs are on the same volume. Back up by stopping the container and snapshotting "
      "the volume: copying live RocksDB files gives a corrupt backup.", "backup,storage"),
    m("stalwart-reverse-dns", "mail", "fix", "Outlook rejected mail: missing reverse DNS",
      "Microsoft answered 550 5.7.1 because the relay IP had no PTR record. The VPS provider sets PTR in "
      "its panel; it must match the HELO name.", "dns,deliverability"),
    m("stalwart-mta-sts", "mail", "feature", "MTA-STS policy published in enforce mode",
      "mta-sts.example.org serves the policy file through Traefik; the _mta-sts TXT id changes whenever the "
      "policy changes.", "tls,dns"),
    m("stalwart-dmarc-reports", "mail", "update", "DMARC aggregate reports go to a separate mailbox",
      "rua=mailto:dmarc@ reports arrive daily from Google and Microsoft; a sieve rule files them away.",
      "dmarc,sieve"),
    m("stalwart-sieve-vacation", "mail", "issue", "Vacation replies were sent to mailing lists",
      "The sieve vacation script answered list traffic. Skip messages with List-Id or Precedence: bulk.",
      "sieve"),
    m("stalwart-quota", "mail", "gotcha", "A full mailbox bounces silently for the sender's client",
      "Over quota, Stalwart rejects at RCPT with 552 and some clients show no error. Alert at 90% quota.",
      "quota,monitoring"),

    # ------------------------------------------------------------------ infra (home lab)
    m("traefik-dashboard-auth", "infra", "gotcha", "Traefik dashboard exposed without authentication",
      "api.insecure=true published the dashboard on 8080 to the whole LAN. Serve it through a router with "
      "basicauth middleware instead.", "traefik,security"),
    m("traefik-labels-network", "infra", "fix", "Traefik routed to the wrong container network",
      "Containers on two networks got a 504 because Traefik picked the internal one. Set the label "
      "traefik.docker.network=proxy.", "traefik,docker,networking"),
    m("ollama-gpu-oom", "infra", "issue", "Ollama falls back to CPU when two models are loaded",
      "With a 7B chat model loaded, loading the embedding model spills to CPU and embedding takes seconds. "
      "OLLAMA_MAX_LOADED_MODELS=1 or a smaller chat model.", "ollama,gpu"),
    m("ollama-keep-alive", "infra", "pattern", "Keep the embedding model resident in Ollama",
      "Each first request after five idle minutes reloaded nomic-embed-text (3 s). keep_alive=-1 for that "
      "model keeps it in memory.", "ollama,embeddings"),
    m("ollama-bind", "infra", "gotcha", "Ollama listens on localhost only by default",
      "Containers could not reach it on host.docker.internal:11434 until OLLAMA_HOST=0.0.0.0 was set in the "
      "service environment.", "ollama,networking"),
    m("restic-backups", "infra", "architecture", "Nightly restic backups to the NAS and to B2",
      "A cron job at 02:30 runs restic backup of the volumes directory to the NAS repository and copies the "
      "snapshot to Backblaze B2. Retention: 7 daily, 4 weekly, 12 monthly.", "backup,restic,cron"),
    m("restic-prune-lock", "infra", "fix", "Backup job failed with repository is already locked",
      "A killed prune left a stale lock in the repository; `restic unlock` removes it. The job now runs "
      "unlock first when no other restic process is alive.", "backup,restic"),
    m("keycloak-session-idle", "infra", "fix", "Users logged out of the wiki every thirty minutes",
      "The Keycloak realm's SSO Session Idle was 30 minutes. Raised to 8 hours and Client Session Idle to "
      "match; offline tokens unchanged.", "keycloak,sso,auth"),
    m("keycloak-proxy-headers", "infra", "gotcha", "Keycloak behind Traefik built http:// redirect URIs",
      "Without KC_PROXY_HEADERS=xforwarded the redirect_uri used http and the login failed with invalid "
      "redirect. Set it and KC_HOSTNAME to the public URL.", "keycloak,traefik"),
    m("keycloak-db-upgrade", "infra", "update", "Keycloak upgraded to 24 with its database migrated",
      "Migration ran automatically on start; took four minutes on the realm with 2k users. Export the realm "
      "before major upgrades.", "keycloak,upgrade"),
    m("clock-skew-ntp", "infra", "issue", "Tokens rejected as not yet valid because the VM clock drifted",
      "The Proxmox guest had no NTP and ran 90 s ahead; JWTs issued by Keycloak had iat/nbf in the future "
      "for the API. Installed chrony on every guest.", "ntp,time,auth"),
    m("proxmox-ballooning", "infra", "gotcha", "Memory ballooning starves the database VM",
      "The balloon driver reclaimed memory from the Postgres guest under host pressure and queries swapped. "
      "Disable ballooning for database VMs.", "proxmox,memory"),
    m("zfs-scrub", "infra", "pattern", "Monthly ZFS scrub on the first Sunday",
      "zpool scrub tank via systemd timer; the results mail goes to the admin alias.", "zfs,storage"),
    m("disk-smart-warning", "infra", "issue", "SMART reallocated sectors rising on the NAS disk 3",
      "Reallocated_Sector_Ct went from 0 to 48 in a week. Ordered a replacement; the pool is mirrored.",
      "storage,hardware"),
    m("wireguard-mtu", "infra", "fix", "Large downloads stall over the WireGuard tunnel",
      "Path MTU through the mobile network is smaller; pages loaded but big transfers hung. MTU = 1380 on "
      "the wg0 interface fixed it.", "wireguard,networking"),
    m("pihole-dns-loop", "infra", "gotcha", "Pi-hole and the router forwarded DNS to each other",
      "Conditional forwarding plus the router's DNS pointing at Pi-hole created a loop and every lookup "
      "timed out. Only Pi-hole forwards upstream.", "dns,networking"),
    m("uptime-kuma-alerts", "infra", "feature", "Uptime Kuma checks every public service",
      "HTTP checks every 60 s, alerts to the Matrix room after two failures; the mail check uses an SMTP "
      "probe on 587.", "monitoring"),
    m("letsencrypt-rate-limit", "infra", "gotcha", "Let's Encrypt staging first when testing ACME changes",
      "Five failed validations in an hour lock the domain out of production issuance; the staging CA has "
      "far higher limits.", "tls,acme"),
    m("docker-log-rotation", "infra", "fix", "Container logs filled the root disk",
      "json-file logs grew to 30 GB. daemon.json now sets log-opts max-size 50m and max-file 3 for every "
      "container.", "docker,disk"),
    m("watchtower-off", "infra", "decision", "No automatic image updates",
      "Watchtower updated Postgres to a new major version overnight and the container would not start on "
      "the old data directory. Images are pinned and updated by hand.", "docker,updates"),
    m("grafana-loki-retention", "infra", "pattern", "Loki keeps logs for 14 days",
      "retention_period 336h with the compactor enabled; older chunks are deleted from the object store.",
      "logging,grafana"),

    # ------------------------------------------------------------------ more docdb
    m("docdb-ocr-timeout", "docdb", "issue", "OCR of large scanned PDFs times out in the worker",
      "Celery hard time limit of 300 s kills tesseract on 200-page scans. Split into page batches of 20 "
      "and chain the tasks.", "ocr,celery"),
    m("docdb-chunk-size", "docdb", "decision", "Documents are chunked at 800 tokens with 100 overlap",
      "Smaller chunks lost context in answers, larger ones diluted the similarity search. Measured on the "
      "contract set.", "embeddings,chunking"),
    m("docdb-hnsw-params", "docdb", "pattern", "HNSW index with m=16, ef_construction=64",
      "Build time 40 minutes for 2M chunks; SET hnsw.ef_search = 100 per query for recall above 0.95.",
      "pgvector,index"),
    m("docdb-unicode-normalize", "docdb", "fix", "Search missed words with ligatures from PDF text",
      "Extracted text contained U+FB01 for 'fi'. NFKC-normalise extracted text before indexing.",
      "pdf,unicode"),
    m("docdb-upload-virus-scan", "docdb", "feature", "Uploads are scanned by ClamAV before storage",
      "clamd runs as a sidecar; the api streams the file to it with INSTREAM and refuses infected uploads "
      "with 422.", "security,uploads"),
    m("docdb-pg-stat-statements", "docdb", "pattern", "Find slow queries with pg_stat_statements",
      "The extension is preloaded; `SELECT query, mean_exec_time FROM pg_stat_statements ORDER BY 2 DESC "
      "LIMIT 20` after a load test.", "postgres,performance"),
    m("docdb-tz-reports", "docdb", "gotcha", "Report dates shifted by one day",
      "Dates were stored as timestamptz at midnight UTC and shown in Europe/Berlin. Use the date type for "
      "calendar dates.", "timezones,postgres"),
    m("docdb-celery-prefetch", "docdb", "fix", "One long OCR task blocked short tasks behind it",
      "Workers prefetched four tasks each. worker_prefetch_multiplier = 1 and acks_late for the OCR queue.",
      "celery,performance"),
    m("docdb-reembed-cost", "docdb", "gotcha", "Re-embedding everything takes a weekend",
      "2M chunks at 150 chunks per second on the GPU is about four hours of compute but the API rate limit "
      "and vacuum made it two days. Plan model changes.", "embeddings"),
    m("docdb-healthcheck", "docdb", "fix", "api container marked unhealthy during startup migrations",
      "The healthcheck started before alembic finished. start_period: 120s in the compose healthcheck.",
      "docker,healthcheck"),

    # ------------------------------------------------------------------ more api
    m("api-cors-credentials", "api", "gotcha", "CORS with credentials cannot use a wildcard origin",
      "Browsers reject Access-Control-Allow-Origin: * when cookies are sent. List the exact origins in "
      "CORS_ORIGINS.", "cors,security"),
    m("api-rate-limit", "api", "feature", "Rate limiting per API key with a redis token bucket",
      "100 requests per minute per key, burst 20; 429 with Retry-After.", "redis,limits"),
    m("api-pydantic-v2", "api", "update", "Migrated the models to Pydantic v2",
      "orm_mode became from_attributes, validators became field_validator; response times dropped by a "
      "third.", "pydantic,upgrade"),
    m("api-n-plus-one", "api", "issue", "The project list endpoint ran one query per row",
      "Lazy loading of owners issued 500 queries for one page. selectinload(Project.owner) in the query.",
      "sqlalchemy,performance"),
    m("api-uvicorn-workers", "api", "decision", "Four uvicorn workers behind gunicorn",
      "CPU-bound JSON serialisation saturates one worker; four on the 4-core VM, more only add memory.",
      "deployment,performance"),
    m("api-clock-tests", "api", "pattern", "Tests freeze time with time-machine",
      "Token expiry tests use time_machine.travel instead of sleeping.", "testing"),
    m("api-openapi-breaking", "api", "decision", "Renaming a response field broke the mobile app",
      "The app was generated from the OpenAPI schema. Add new fields, deprecate old ones, remove after two "
      "releases.", "api-design"),
    m("api-sentry-pii", "api", "gotcha", "Sentry captured request bodies with passwords",
      "send_default_pii was on. Turned off and a before_send hook scrubs Authorization headers.",
      "sentry,security"),
    m("api-background-tasks", "api", "pattern", "Slow work goes to the queue, not BackgroundTasks",
      "FastAPI BackgroundTasks run in the worker process and die with it on deploy; emails and exports are "
      "celery tasks.", "fastapi,celery"),
    m("api-db-pool-size", "api", "fix", "Requests hung waiting for a database connection",
      "pool_size 5 per worker with 4 workers and long export queries exhausted it. pool_size 10, "
      "max_overflow 5, and exports use their own engine.", "sqlalchemy,postgres"),
    m("api-gzip", "api", "feature", "Responses over 1 kB are gzip-compressed",
      "GZipMiddleware(minimum_size=1000); nginx passes compressed responses through.", "performance"),
    m("api-pytest-db", "api", "pattern", "Each test runs in a rolled-back transaction",
      "A session fixture creates the schema once; every test runs inside a SAVEPOINT that is rolled back.",
      "testing,postgres"),

    # ------------------------------------------------------------------ more webapp
    m("webapp-service-worker-cache", "webapp", "gotcha", "Users kept an old version after deploys",
      "The service worker served cached index.html forever. skipWaiting plus a version check that reloads "
      "when the build hash changes.", "pwa,caching"),
    m("webapp-env-build-time", "webapp", "gotcha", "VITE_ variables are baked in at build time",
      "Changing VITE_API_URL in the container environment had no effect; the value is compiled into the "
      "bundle. A runtime config.json is fetched at start instead.", "vite,config"),
    m("webapp-bundle-size", "webapp", "issue", "The main bundle grew to 2 MB",
      "A date library with all locales and the whole icon set. Lazy-load routes and import single icons.",
      "performance,bundle"),
    m("webapp-csp", "webapp", "feature", "Content Security Policy without unsafe-inline",
      "nginx sends a CSP with script hashes; inline styles from the chart library needed a nonce.",
      "security,nginx"),
    m("webapp-i18n", "webapp", "decision", "Translations live in JSON files per locale",
      "vue-i18n with lazy-loaded locale files; missing keys fall back to English and are logged in dev.",
      "i18n"),
    m("webapp-eslint-flat", "webapp", "update", "Moved to the ESLint flat config",
      "eslint.config.js replaces .eslintrc; the vue plugin needed version 9.", "lint,tooling"),
    m("webapp-safari-date", "webapp", "fix", "Dates showed Invalid Date in Safari",
      "new Date('2024-05-01 10:00') is not ISO; Safari refuses the space. Parse with the date library or "
      "use the T separator.", "safari,dates"),
    m("webapp-pnpm", "webapp", "decision", "pnpm instead of npm for the frontend",
      "Install time in CI went from 90 s to 25 s with the store cache; strict dependency resolution caught "
      "two phantom imports.", "tooling,ci"),
    m("webapp-hmr-docker", "webapp", "fix", "Hot reload did not connect when running in Docker",
      "The HMR websocket tried the container port. server.hmr.clientPort = 5173 and host 0.0.0.0 in "
      "vite.config.", "vite,docker"),
    m("webapp-a11y-focus", "webapp", "pattern", "Dialogs trap focus and return it on close",
      "The modal component moves focus to the first field and back to the trigger button when closed; "
      "axe checks run in CI.", "accessibility"),

    # ------------------------------------------------------------------ more global
    m("conventional-commits", "global", "convention", "Commit messages follow Conventional Commits",
      "feat:, fix:, chore:, docs: prefixes; the changelog is generated from them. Breaking changes carry a "
      "footer.", "git,style"),
    m("git-rebase-autosquash", "global", "tool", "git rebase --autosquash with fixup commits",
      "git commit --fixup=SHA then git rebase -i --autosquash folds them into the right commit.", "git"),
    m("ssh-agent-windows", "global", "tool", "Windows OpenSSH agent for git in every terminal",
      "Start the ssh-agent service (Automatic) and set core.sshCommand to C:/Windows/System32/OpenSSH/ssh.exe "
      "so git uses the same agent.", "windows,ssh,git"),
    m("python-venv-per-project", "global", "convention", "Every Python project has its own .venv",
      "Created with uv venv; editors point at .venv/bin/python. No global pip installs.", "python"),
    m("wsl-line-endings", "global", "lesson", "Shell scripts from Windows fail with bad interpreter",
      "CRLF line endings make /bin/bash^M not found. .gitattributes sets *.sh text eol=lf.", "windows,git"),
    m("backups-3-2-1", "global", "preference", "Backups follow 3-2-1",
      "Three copies, two media, one off site; restores are tested every quarter.", "backup"),
    m("secrets-in-vault", "global", "credential", "Where the secrets are",
      "Passwords and API keys live in the Vaultwarden organisation 'homelab'; never in memory or git.",
      "secrets"),
    m("timezone-utc", "global", "convention", "Servers run in UTC",
      "All hosts and containers use UTC; conversion happens only in the UI.", "time"),
    m("make-help", "global", "convention", "Every repository has make help",
      "The Makefile's first target lists the others with their one-line descriptions.", "tooling"),
    m("docker-prune", "global", "tool", "Reclaim disk from Docker",
      "docker system df shows usage; docker builder prune -af clears the build cache, which is usually the "
      "largest part.", "docker,disk"),
    m("jq-tricks", "global", "tool", "jq for API responses",
      "jq -r '.items[] | [.id, .name] | @tsv' turns JSON lists into columns.", "shell"),
    m("review-small-prs", "global", "preference", "Pull requests under 400 lines",
      "Bigger changes are split into stacked PRs; reviews happen the same day.", "git,review"),
    m("pg-connection-limits", "global", "lesson", "Count connections before raising max_connections",
      "Each Postgres connection costs memory; a pooler (PgBouncer, transaction mode) is cheaper than raising "
      "max_connections past 200.", "postgres,pgbouncer"),
    m("curl-verbose", "global", "tool", "curl -v shows TLS and headers",
      "curl -v prints the handshake, the certificate chain and every header; -sS hides the progress bar "
      "but keeps errors.", "shell,http"),
    m("rg-hidden-files", "global", "tool", "ripgrep skips hidden and ignored files",
      "rg -uu searches hidden files too; -uuu also binary ones.", "shell"),
    m("llm-context-files", "global", "preference", "Keep CLAUDE.md short",
      "Long instruction files get skimmed; put commands in snippets and details in linked docs.", "claude"),
    m("python-pin-deps", "global", "convention", "Applications pin dependencies with a lock file",
      "uv lock for applications; libraries declare ranges only.", "python,dependencies"),
    m("dns-ttl-before-move", "global", "lesson", "Lower DNS TTLs a day before moving a service",
      "With TTL 86400 clients kept the old address for a day after the move.", "dns"),
    m("systemd-restart", "global", "convention", "Long-running scripts run as systemd services",
      "Restart=on-failure with RestartSec=5 instead of nohup and cron @reboot.", "linux,systemd"),
    m("ports-registry", "global", "infrastructure", "Port map of the workstation",
      "5433 swarm-postgres, 11434 Ollama, 8080 Traefik dashboard (LAN), 3000 Grafana, 9000 Portainer.",
      "ports,docker"),

    # ------------------------------------------------------------------ neighbours: entries that share
    # words with others (the ranking must still tell them apart)
    m("traefik-access-log", "infra", "pattern", "Traefik access logs in JSON to Loki",
      "accessLog with format json and a filter on status codes 400-599; promtail ships them.",
      "traefik,logging"),
    m("traefik-tls-options", "infra", "pattern", "Traefik TLS options: minimum TLS 1.2",
      "A tls.options default block sets minVersion VersionTLS12 and the modern cipher list for every router.",
      "traefik,tls"),
    m("ollama-model-dir", "infra", "fix", "Ollama models moved off the system disk",
      "OLLAMA_MODELS=/data/ollama; the models took 60 GB on the root partition.", "ollama,disk"),
    m("keycloak-smtp", "infra", "fix", "Keycloak password reset mails were never sent",
      "The realm's email settings pointed at port 25 which the ISP blocks. Use the relay on 587 with "
      "STARTTLS.", "keycloak,smtp"),
    m("keycloak-token-lifespan", "infra", "decision", "Access token lifespan 5 minutes in the homelab realm",
      "Short access tokens with refresh; the API checks exp with 30 s leeway.", "keycloak,tokens"),
    m("restic-check", "infra", "pattern", "restic check --read-data-subset monthly",
      "Verifies a tenth of the pack files each month so the whole repository is read within a year.",
      "backup,restic"),
    m("nas-nfs-permissions", "infra", "gotcha", "NFS share squashed root and broke the backup job",
      "root_squash mapped the backup user to nobody; the NAS export now maps it to the backup uid.",
      "nas,nfs,backup"),
    m("stalwart-smtp-auth", "mail", "fix", "Clients could not send: SMTP AUTH not offered on port 25",
      "Submission clients must use 587 (STARTTLS) or 465; port 25 is only for server-to-server.",
      "smtp"),
    m("stalwart-junk-training", "mail", "update", "The spam classifier is retrained weekly",
      "A cron job feeds the Junk and Inbox folders to the bayes trainer every Sunday.", "spam,cron"),
    m("mail-dns-records", "mail", "architecture", "DNS records for the mail domain",
      "MX to mail.example.org, SPF, DKIM selector s2024, DMARC p=quarantine, MTA-STS and TLS-RPT.",
      "dns"),
    m("api-jwt-leeway", "api", "fix", "Token validation allows 30 seconds of clock difference",
      "PyJWT decode with leeway=30 so tokens from a slightly fast identity server are accepted.",
      "auth,tokens"),
    m("api-logging-json", "api", "pattern", "Structured JSON logs with a request id",
      "structlog renders JSON; a middleware binds request_id from the X-Request-ID header.", "logging"),
    m("webapp-docker-build-cache", "webapp", "fix", "Frontend image rebuilds took eight minutes",
      "COPY package.json and the lockfile before the sources so the install layer is cached.",
      "docker,ci"),
    m("webapp-env-files", "webapp", "pattern", "Each environment has its own .env.production file",
      "Vite loads .env.[mode]; the CI build passes --mode staging for the staging bundle.", "vite,config"),
    m("docdb-backup-pgdump", "docdb", "pattern", "Nightly pg_dump of docdb in custom format",
      "pg_dump -Fc to the backups volume, kept 14 days; restic picks the files up afterwards.",
      "backup,postgres"),
    m("docdb-disk-full", "docdb", "issue", "Postgres stopped when the WAL filled the disk",
      "A stuck replication slot kept WAL forever. Dropped the unused slot and alert on pg_wal size.",
      "postgres,disk"),
    m("global-git-lfs", "global", "tool", "Large binaries go to git LFS",
      "git lfs track '*.psd' before the first commit of such files; the server has a 2 GB limit.",
      "git"),
    m("global-editor-config", "global", "convention", "An .editorconfig in every repository",
      "Indentation, final newline and line endings are set there, not in each editor.", "style"),
    m("global-ssh-config", "global", "tool", "Host aliases in ~/.ssh/config",
      "One Host block per server with User, Port and IdentityFile so ssh nas just works.", "ssh"),
    m("global-windows-paths", "global", "lesson", "Docker on Windows wants forward slashes in volume paths",
      "F:/Docker/app:/app works in compose; backslashes break when the file is used from WSL.",
      "windows,docker"),
]

ALL = CORPUS + MEMORIES

QUERIES = [
    # keyword: words the entry uses
    ("keyword", "dkim selector", "stalwart-dkim"),
    ("keyword", "spf lookups", "stalwart-spf-include"),
    ("keyword", "port 25 blocked", "stalwart-port25"),
    ("keyword", "rocksdb backup", "stalwart-backup"),
    ("keyword", "traefik dashboard authentication", "traefik-dashboard-auth"),
    ("keyword", "ollama cpu fallback", "ollama-gpu-oom"),
    ("keyword", "restic repository locked", "restic-prune-lock"),
    ("keyword", "keycloak proxy headers", "keycloak-proxy-headers"),
    ("keyword", "wireguard mtu", "wireguard-mtu"),
    ("keyword", "container logs disk", "docker-log-rotation"),
    ("keyword", "celery prefetch", "docdb-celery-prefetch"),
    ("keyword", "pydantic v2", "api-pydantic-v2"),
    ("keyword", "vite hmr docker", "webapp-hmr-docker"),
    ("keyword", "conventional commits", "conventional-commits"),
    ("keyword", "nginx 413 upload", "nginx-413"),
    ("keyword", "autovacuum chunks", "autovacuum-chunks"),
    ("keyword", "safari invalid date", "webapp-safari-date"),
    ("keyword", "loki retention", "grafana-loki-retention"),
    # paraphrase: the need in other words
    ("paraphrase", "phone mail push notifications stop arriving", "stalwart-imap-idle"),
    ("paraphrase", "microsoft refuses our outgoing email", "stalwart-reverse-dns"),
    ("paraphrase", "people get signed out of the wiki too often", "keycloak-session-idle"),
    ("paraphrase", "freshly minted login tokens refused since the server clock is wrong", "clock-skew-ntp"),
    ("paraphrase", "the root filesystem ran out of space because of container output", "docker-log-rotation"),
    ("paraphrase", "big file transfers hang over the vpn", "wireguard-mtu"),
    ("paraphrase", "every name lookup times out on the home network", "pihole-dns-loop"),
    ("paraphrase", "embedding requests are slow after the model sat idle", "ollama-keep-alive"),
    ("paraphrase", "database guest swapping because the hypervisor took its ram", "proxmox-ballooning"),
    ("paraphrase", "frontend users still see the previous release after we ship", "webapp-service-worker-cache"),
    ("paraphrase", "changing the api address env var in the container did nothing", "webapp-env-build-time"),
    ("paraphrase", "one page of projects fires hundreds of sql statements", "api-n-plus-one"),
    ("paraphrase", "error tracker stored user passwords from request payloads", "api-sentry-pii"),
    ("paraphrase", "long scanned documents get killed before text recognition finishes", "docdb-ocr-timeout"),
    ("paraphrase", "calendar days in reports off by one", "docdb-tz-reports"),
    ("paraphrase", "bash scripts written on windows will not run on linux", "wsl-line-endings"),
    # question: natural questions
    ("question", "how do I stop the Traefik dashboard being open to everyone?", "traefik-dashboard-auth"),
    ("question", "why does git ask for my ssh passphrase again in each terminal on windows?",
     "ssh-agent-windows"),
    ("question", "what should I run when restic says the repository is already locked?", "restic-prune-lock"),
    ("question", "how can containers reach ollama on the host?", "ollama-bind"),
    ("question", "which port does the postgres container use inside the compose network?",
     "worker-connection-refused"),
    ("question", "what does curl -v show?", "curl-verbose"),
    ("question", "how do I search hidden files with rg -uu or similar?", "rg-hidden-files"),
    ("question", "should I use BackgroundTasks or celery for sending emails?", "api-background-tasks"),
    ("question", "how often are backups taken and how long are they kept?", "restic-backups"),
    ("question", "why are my vite env variables ignored at runtime?", "webapp-env-build-time"),
    ("question", "what prefix format do commit messages use?", "conventional-commits"),
    ("question", "how big are the document chunks and why?", "docdb-chunk-size"),
    ("question", "is it safe to copy the mail store while the server runs?", "stalwart-backup"),
    ("question", "how do I free disk space used by docker builds?", "docker-prune"),
    ("question", "why did the vacation autoreply answer mailing lists?", "stalwart-sieve-vacation"),
    ("question", "what is the spf lookup limit or is there none?", "stalwart-spf-include"),
    # typo: keywords with typing mistakes
    ("typo", "keycloack sesion idle", "keycloak-session-idle"),
    ("typo", "convetional commit mesages", "conventional-commits"),
    ("typo", "wiregaurd mtu", "wireguard-mtu"),
    ("typo", "restik unlock", "restic-prune-lock"),
    ("typo", "trafeik dashbord", "traefik-dashboard-auth"),
    ("typo", "ollama keep alvie", "ollama-keep-alive"),
    ("typo", "pydantik migration", "api-pydantic-v2"),
    ("typo", "servise worker cache", "webapp-service-worker-cache"),
    ("typo", "celery prefetsh multiplier", "docdb-celery-prefetch"),
    ("typo", "dkim signatuers", "stalwart-dkim"),
    ("typo", "autovaccum chunks", "autovacuum-chunks"),
    ("typo", "ballooning proxmx", "proxmox-ballooning"),
    ("typo", "reverse dsn outlook", "stalwart-reverse-dns"),
    ("typo", "sentyr passwords", "api-sentry-pii"),
]

KINDS = ("keyword", "paraphrase", "question", "typo")
