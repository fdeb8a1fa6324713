"""A fixed corpus of realistic memories for the recall ranking tests.

What one developer learned over a few months on three projects (`docdb`, a
document database in Docker; `api`, a FastAPI backend; `webapp`, a Vite
frontend behind nginx) plus cross-project global knowledge.  Nothing here is a
real secret.  Each entry has a stable key; tests map keys to the ids that
`remember` printed.

Fields: key, scope ("global" or a project name), type, title, content, tags,
files, status (entries that are not "active" are updated after storing).
"""

CORPUS = [
    # ------------------------------------------------------------------ docdb
    dict(key="docker-restart-builds", scope="docdb", type="gotcha",
         title="Docker restart kills in-flight image builds",
         content="Running `docker restart` or restarting Docker Desktop while another session runs "
                 "`docker compose build` aborts that build with 'error during connect'. Send a blocker "
                 "on the docker resource before restarting and wait for running builds to finish.",
         tags="docker,builds", files="docker-compose.yml"),
    dict(key="port-5433-allocated", scope="docdb", type="fix",
         title="compose up fails: port 5433 already allocated",
         content="A stale swarm-postgres container from an older compose project keeps the port. "
                 "`docker ps -a --filter publish=5433`, remove that container, then `docker compose up -d`.",
         tags="docker,ports,postgres", files="docker-compose.yml"),
    dict(key="migrations-entrypoint", scope="docdb", type="decision",
         title="Alembic migrations run in the container entrypoint",
         content="Migrations run at container start (entrypoint.sh calls `alembic upgrade head`) so that dev "
                 "and prod apply them the same way. CI only runs `alembic check`.",
         tags="migrations,alembic", files="entrypoint.sh,alembic.ini"),
    dict(key="autovacuum-chunks", scope="docdb", type="gotcha",
         title="Autovacuum falls behind on the chunks table",
         content="Re-embedding updates millions of rows in chunks; autovacuum cannot keep up and the table "
                 "bloats to 40 GB. Run VACUUM (ANALYZE) chunks after a bulk re-embed and set "
                 "autovacuum_vacuum_scale_factor = 0.02 on that table.",
         tags="postgres,performance", files="sql/tuning.sql"),
    dict(key="copy-bulk-load", scope="docdb", type="pattern",
         title="Bulk loads use COPY instead of INSERT batches",
         content="Above ten thousand rows use COPY FROM STDIN through psycopg2 copy_expert; INSERT batches "
                 "are twenty times slower. ANALYZE the table afterwards.",
         tags="postgres,performance", files="loader/bulk.py"),
    dict(key="pgvector-index-mem", scope="docdb", type="issue",
         title="pgvector index build runs out of maintenance_work_mem",
         content="CREATE INDEX ... USING ivfflat on embeddings fails with 'memory required is 1200 MB'. "
                 "SET maintenance_work_mem = '2GB' in the session before building the index.",
         tags="postgres,pgvector", files="sql/indexes.sql"),
    dict(key="docdb-layout", scope="docdb", type="architecture",
         title="Doc DB v2 service layout",
         content="Containers: api (FastAPI on 8000), worker (celery), swarm-postgres (published on 5433), "
                 "redis (6379) for the job queue. All defined in docker-compose.yml.",
         tags="architecture,docker", files="docker-compose.yml"),
    dict(key="windows-file-watch", scope="docdb", type="gotcha",
         title="Bind mounts on Windows never trigger file watching",
         content="Bind mounts from F:/ do not propagate inotify events into the container, so uvicorn "
                 "--reload never fires. Set WATCHFILES_FORCE_POLLING=true in the api service.",
         tags="docker,windows", files="docker-compose.yml"),
    dict(key="worker-connection-refused", scope="docdb", type="fix",
         title="Worker got connection refused from postgres",
         content="The worker connected to localhost:5433 from inside its container. Inside the compose "
                 "network the host is swarm-postgres and the port is 5432 (the container port, not the "
                 "published one).",
         tags="docker,postgres,networking", files="worker/settings.py"),
    dict(key="pg16-upgrade", scope="docdb", type="update",
         title="Upgraded the Postgres image from 15 to 16",
         content="Dumped with pg_dumpall, restored into a fresh 16 volume, rebuilt pgvector 0.7. "
                 "The old volume is kept as docdb_pg15 for a month.",
         tags="postgres,upgrade", files="docker-compose.yml"),
    dict(key="restore-vector-ext", scope="docdb", type="gotcha",
         title="Restoring a dump needs the vector extension first",
         content="pg_restore fails on the embeddings column type unless CREATE EXTENSION vector ran in the "
                 "target database beforehand.",
         tags="postgres,pgvector,backup", files=""),
    dict(key="redis-maxmemory", scope="docdb", type="issue",
         title="Celery jobs vanish when redis hits maxmemory",
         content="The default eviction policy dropped queued jobs when the container hit its memory limit. "
                 "Set maxmemory-policy noeviction for the queue instance.",
         tags="redis,celery", files="redis.conf", status="resolved"),

    # ------------------------------------------------------------------ api
    dict(key="jwt-key-rotation", scope="api", type="gotcha",
         title="JWT signing key rotation logs everyone out",
         content="Rotating JWT_SIGNING_KEY invalidates every access token at once. Keep the previous key "
                 "in JWT_PREVIOUS_KEYS for one token lifetime (15 minutes) while the new key rolls out.",
         tags="auth,jwt", files="app/auth/keys.py"),
    dict(key="token-lifetimes", scope="api", type="decision",
         title="Access tokens expire after 15 minutes, refresh tokens after 14 days",
         content="Short access tokens limit the damage of a leak; refresh tokens are stored hashed and "
                 "rotated on every use.",
         tags="auth,tokens", files="app/auth/tokens.py"),
    dict(key="refresh-500", scope="api", type="fix",
         title="Refresh token endpoint returned 500 for expired tokens",
         content="jwt.ExpiredSignatureError was not caught in refresh(); it now answers 401 with "
                 "error=token_expired.",
         tags="auth,tokens,bug", files="app/auth/routes.py", status="resolved"),
    dict(key="env-import-time", scope="api", type="gotcha",
         title="Settings read environment variables at import time",
         content="config.py reads os.environ when the module is imported, so setting environment variables "
                 "in a test after the import changes nothing. Use the settings fixture or reload config.",
         tags="env,config,tests", files="app/config.py"),
    dict(key="sqlalchemy-url-scheme", scope="api", type="gotcha",
         title="DATABASE_URL must start with postgresql:// for SQLAlchemy",
         content="SQLAlchemy 1.4 and later refuse the short postgres:// scheme that some hosting providers "
                 "hand out; config.py rewrites the scheme.",
         tags="env,sqlalchemy", files="app/config.py"),
    dict(key="upload-test-ci", scope="api", type="issue",
         title="test_upload_large_file fails intermittently in CI",
         content="About one run in twenty on GitHub Actions ends in a ReadTimeout because the shared runner "
                 "is slow. It is retried twice for now; the real fix is streaming the upload.",
         tags="ci,flaky,tests", files="tests/test_upload.py"),
    dict(key="downgrade-required", scope="api", type="pattern",
         title="Every migration gets a working downgrade",
         content="Alembic revisions must implement downgrade(); review rejects an empty one. Data "
                 "migrations go in their own revision.",
         tags="migrations,alembic,review", files="migrations/"),
    dict(key="enum-autogenerate", scope="api", type="gotcha",
         title="Alembic autogenerate misses new enum values",
         content="revision --autogenerate does not see values added to a Postgres ENUM. Write "
                 "ALTER TYPE ... ADD VALUE by hand, outside a transaction block.",
         tags="migrations,alembic,postgres", files="migrations/"),
    dict(key="ratelimit-nginx", scope="api", type="fix",
         title="Rate limiter saw every client as 127.0.0.1 behind nginx",
         content="One busy user exhausted the limit for everybody. The limiter now keys on the client "
                 "address from X-Forwarded-For, trusted only from the nginx proxy.",
         tags="nginx,ratelimit", files="app/middleware/ratelimit.py"),
    dict(key="api-versioning", scope="api", type="architecture",
         title="API versions live in the URL prefix /v1",
         content="Breaking changes get a new prefix; /v1 stays for six months after /v2 ships.",
         tags="architecture,http", files="app/main.py"),
    dict(key="uv-lockfiles", scope="api", type="decision",
         title="Use uv for lockfiles instead of pip-tools",
         content="uv pip compile is thirty times faster and understands the same requirements.in files.",
         tags="tooling,python", files="requirements.in"),
    dict(key="port-8000-conflict", scope="api", type="gotcha",
         title="Port 8000 conflicts with the Doc DB api",
         content="Both services default to 8000. Run this api on 8001 locally (PORT=8001 in .env).",
         tags="ports,env", files=".env.example"),
    dict(key="password-reset-email", scope="api", type="feature",
         title="Password reset emails go through SES",
         content="The reset link is valid for 30 minutes. For security reasons the SES credentials come "
                 "from the vault path api/ses, never from .env.",
         tags="email,auth", files="app/email/reset.py"),
    dict(key="pool-exhausted", scope="api", type="issue",
         title="Connection pool exhausted during load tests",
         content="With pool_size 5 new requests waited 30 s and were then refused by the app. Raised the "
                 "pool to 20 and set pool_pre_ping.",
         tags="postgres,performance", files="app/db.py"),

    # ------------------------------------------------------------------ webapp
    dict(key="nginx-websocket", scope="webapp", type="gotcha",
         title="nginx drops the Upgrade header so websockets fail",
         content="Without proxy_set_header Upgrade and Connection upgrade in the /ws location the "
                 "handshake answers 400.",
         tags="nginx", files="nginx/site.conf"),
    dict(key="socketio-polling", scope="webapp", type="pattern",
         title="Socket.IO falls back to long polling",
         content="When the websocket transport cannot connect, Socket.IO silently polls instead; check the "
                 "browser console for a websocket error before blaming the websocket server, and force the "
                 "websocket transport in development to see websocket failures early.",
         tags="realtime", files="src/realtime.ts"),
    dict(key="nginx-413", scope="webapp", type="fix",
         title="nginx 413 Request Entity Too Large on uploads",
         content="client_max_body_size defaults to 1m; the upload size limit is now 25m in the server "
                 "block.",
         tags="nginx,uploads", files="nginx/site.conf"),
    dict(key="vite-env-prefix", scope="webapp", type="gotcha",
         title="Vite only exposes env vars prefixed VITE_",
         content="Only environment variables starting with VITE_ reach import.meta.env; API_URL silently "
                 "becomes undefined in the bundle.",
         tags="env,vite", files="vite.config.ts"),
    dict(key="playwright-flaky", scope="webapp", type="issue",
         title="Playwright screenshots flaky on CI because of animations",
         content="Screenshots differ by a few pixels when the CI runner is slow. reducedMotion is now set "
                 "in playwright.config.ts.",
         tags="ci,flaky,playwright", files="playwright.config.ts"),
    dict(key="tokens-cookies", scope="webapp", type="decision",
         title="Auth tokens live in httpOnly cookies, not localStorage",
         content="Keeps them out of reach of injected scripts; the API sets SameSite=Lax.",
         tags="auth,security", files="src/auth.ts"),
    dict(key="vite-port-5173", scope="webapp", type="gotcha",
         title="Dev server silently moves off port 5173",
         content="When another Vite project holds 5173 the dev server picks 5174 and the OAuth redirect "
                 "breaks. strictPort: true makes it fail loudly instead.",
         tags="ports,vite,oauth", files="vite.config.ts"),
    dict(key="nginx-cache-index", scope="webapp", type="fix",
         title="nginx cached index.html so deploys looked stale",
         content="index.html is now served with Cache-Control no-cache; hashed assets stay immutable for "
                 "a year.",
         tags="nginx,cache,deploy", files="nginx/site.conf"),
    dict(key="feature-flags", scope="webapp", type="pattern",
         title="Feature flags are fetched once at boot",
         content="The app reads /api/flags before rendering; flags never change during a session.",
         tags="flags", files="src/flags.ts"),
    dict(key="circleci-move", scope="webapp", type="update",
         title="CI moved from CircleCI to GitHub Actions",
         content="Workflows live in .github/workflows; the CircleCI config was deleted.",
         tags="ci", files=".github/workflows/ci.yml", status="superseded"),
    dict(key="webapp-docker-slow", scope="webapp", type="issue",
         title="Webapp image build takes nine minutes",
         content="node_modules was copied into the Docker build context. A .dockerignore brought the "
                 "build down to 90 seconds.",
         tags="docker,builds", files="Dockerfile,.dockerignore"),

    # ------------------------------------------------------------------ global
    dict(key="shared-postgres", scope="global", type="infrastructure",
         title="Shared Postgres runs as swarm-postgres on port 5433",
         content="Database docdb, user postgres. Restarting the container drops every session's "
                 "connections; announce it first.",
         tags="postgres,ports,docker", files=""),
    dict(key="imperative-commits", scope="global", type="convention",
         title="Commit messages use the imperative mood",
         content="'Add retry to uploader', not 'Added retry'. First line under 72 characters.",
         tags="git", files=""),
    dict(key="pg-activity", scope="global", type="tool",
         title="pg_activity shows slow queries live",
         content="Like top for Postgres: pip install pg_activity, run it against port 5433.",
         tags="postgres,monitoring", files=""),
    dict(key="small-prs", scope="global", type="preference",
         title="Prefer small pull requests over big rewrites",
         content="The user reviews faster when a change stays under about 300 lines.",
         tags="review", files=""),
    dict(key="staging-db-password", scope="global", type="credential",
         title="Where the staging database password lives",
         content="The password is in 1Password under 'db' (vault Engineering). Host staging-db.internal, "
                 "port 5432, user app_staging; password=<from vault>.",
         tags="postgres,staging", files=""),
    dict(key="no-restart-during-build", scope="global", type="lesson",
         title="Announce before touching Docker Desktop",
         content="Restarting Docker Desktop stops every container of every project; a session that was "
                 "building lost twenty minutes. Always send a warning first.",
         tags="docker", files=""),
    dict(key="token-rotation-lesson", scope="global", type="lesson",
         title="Schedule credential rotation before expiry",
         content="Rotate deploy keys and service credentials at about 80 percent of their lifetime so an "
                 "expiry never lands on a weekend.",
         tags="security", files=""),
    dict(key="wsl-memory", scope="global", type="infrastructure",
         title="Docker Desktop WSL2 memory limit is 8 GB",
         content=".wslconfig sets memory=8GB; image builds above that run out of memory.",
         tags="docker,windows", files=""),
    dict(key="env-example", scope="global", type="convention",
         title="Every environment variable is documented in .env.example",
         content="A new variable without a line in .env.example fails review.",
         tags="env,docs", files=""),
    dict(key="compose-v2", scope="global", type="tool",
         title="Use docker compose v2, not docker-compose",
         content="The v1 python tool is gone; the plugin command is two words.",
         tags="docker", files=""),
    dict(key="vacuum-full-lock", scope="global", type="lesson",
         title="VACUUM FULL locks the whole table",
         content="It takes an ACCESS EXCLUSIVE lock and rewrites the table; use pg_repack on live tables.",
         tags="postgres", files=""),
    dict(key="ci-runner-size", scope="global", type="infrastructure",
         title="CI runners have 2 CPUs and 7 GB RAM",
         content="Parallel test jobs above two workers only add contention.",
         tags="ci", files=""),
]

PROJECTS = ("docdb", "api", "webapp")
