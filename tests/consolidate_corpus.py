"""Planted duplicates and near misses for the consolidation tests, on top of tests/memory_corpus.py.

DUPLICATES: entries that say what a corpus entry (or another planted entry) already says, the way a
second session writes it down again: other words, another title, sometimes more detail.  Each has
`dup_of`, the key of the entry it repeats; consolidate must put every group in one cluster.

NEAR_MISSES: entries on the same subject as a corpus entry that record a different fact (another
port, another version, another cause).  consolidate must not cluster them with anything.
"""

DUPLICATES = [
    dict(key="dup-docker-restart", dup_of="docker-restart-builds", scope="docdb", type="gotcha",
         title="Restarting Docker aborts running compose builds",
         content="If you restart Docker (or Docker Desktop) while another session runs docker compose build, "
                 "that build dies with 'error during connect'. Claim the docker resource with a blocker before "
                 "restarting and let running builds finish.",
         tags="docker,builds", files="docker-compose.yml"),
    dict(key="dup-port-5433", dup_of="port-5433-allocated", scope="docdb", type="issue",
         title="Port 5433 already allocated when starting compose",
         content="docker compose up -d fails because port 5433 is allocated: an old swarm-postgres container "
                 "from a previous compose project still publishes it. Find it with docker ps -a --filter "
                 "publish=5433 and remove it.",
         tags="docker,ports", files="docker-compose.yml"),
    dict(key="dup-vacuum-1", dup_of="autovacuum-chunks", scope="docdb", type="pattern",
         title="VACUUM the chunks table after a bulk re-embed",
         content="After re-embedding, autovacuum cannot keep up with the chunks table and it bloats. Run "
                 "VACUUM (ANALYZE) chunks when the bulk re-embed is done.",
         tags="postgres", files="sql/tuning.sql"),
    dict(key="dup-vacuum-2", dup_of="autovacuum-chunks", scope="docdb", type="gotcha",
         title="Chunks table bloat after re-embedding",
         content="Bulk re-embedding rewrites millions of chunks rows; the table bloated to 40 GB because "
                 "autovacuum fell behind. Lower autovacuum_vacuum_scale_factor to 0.02 for chunks and vacuum "
                 "after each re-embed.",
         tags="postgres,performance", files=""),
    dict(key="dup-worker-host", dup_of="worker-connection-refused", scope="docdb", type="gotcha",
         title="Inside compose the worker must use swarm-postgres:5432",
         content="The worker got connection refused when it used localhost:5433 from inside its container. "
                 "In the compose network connect to host swarm-postgres on the container port 5432, not the "
                 "published port.",
         tags="docker,networking", files="worker/settings.py"),
    dict(key="dup-enum", dup_of="enum-autogenerate", scope="api", type="gotcha",
         title="Autogenerate does not see new Postgres enum values",
         content="Alembic revision --autogenerate misses values added to a Postgres ENUM type; add them by "
                 "hand with ALTER TYPE ... ADD VALUE, outside a transaction block.",
         tags="alembic", files="migrations/"),
    dict(key="dup-pool", dup_of="pool-exhausted", scope="api", type="fix",
         title="Load tests exhausted the connection pool",
         content="During load tests the pool (pool_size 5) ran out: requests waited 30 s and were refused. "
                 "Fixed by raising pool_size to 20 and enabling pool_pre_ping.",
         tags="performance", files="app/db.py"),
    dict(key="dup-nginx-413", dup_of="nginx-413", scope="webapp", type="gotcha",
         title="Uploads fail with 413 because client_max_body_size is 1m",
         content="nginx answers 413 Request Entity Too Large for uploads over 1m, its client_max_body_size "
                 "default. The server block now sets the upload limit to 25m.",
         tags="nginx", files="nginx/site.conf"),
    dict(key="dup-vite-env", dup_of="vite-env-prefix", scope="webapp", type="gotcha",
         title="Env vars without the VITE_ prefix are undefined in the bundle",
         content="import.meta.env only carries environment variables that start with VITE_; API_URL silently "
                 "becomes undefined in the bundle. Rename it VITE_API_URL.",
         tags="vite", files="vite.config.ts"),
    dict(key="dup-compose-v2", dup_of="compose-v2", scope="global", type="convention",
         title="Write docker compose, not docker-compose",
         content="Use the Compose v2 plugin (docker compose, with a space) in scripts and docs; the old "
                 "docker-compose v1 binary is not installed on the machines.",
         tags="docker", files=""),
]

NEAR_MISSES = [
    dict(key="near-port-8080", scope="docdb", type="issue",
         title="compose up fails: port 8080 already allocated",
         content="The nginx of the webapp stack binds 8080 on the host. Map the admin UI to 8081 in "
                 "docker-compose.override.yml instead.",
         tags="docker,ports", files="docker-compose.override.yml"),
    dict(key="near-pg17", scope="docdb", type="update",
         title="Upgraded the Postgres image from 16 to 17",
         content="pg_upgrade --link on a copy of the volume took four minutes; pgvector had to be rebuilt "
                 "for 17 before the upgrade check passed.",
         tags="postgres,upgrade", files="docker-compose.yml"),
    dict(key="near-windows-slow", scope="docdb", type="gotcha",
         title="Bind mounts on Windows are slow for node_modules",
         content="npm install inside a container on a bind mount from F:/ takes ten minutes. Keep "
                 "node_modules in a named volume.",
         tags="docker,windows", files="docker-compose.yml"),
    dict(key="near-enum-rename", scope="api", type="gotcha",
         title="Renaming a Postgres enum value needs ALTER TYPE RENAME VALUE",
         content="Alembic writes drop-and-create for a renamed enum value, which fails while columns use it. "
                 "Use ALTER TYPE status RENAME VALUE 'old' TO 'new' in the migration instead.",
         tags="migrations,postgres", files="migrations/"),
    dict(key="near-nginx-504", scope="webapp", type="fix",
         title="nginx 504 Gateway Timeout on report downloads",
         content="proxy_read_timeout defaults to 60s; report generation takes up to three minutes, so the "
                 "reports location now sets proxy_read_timeout 300s.",
         tags="nginx,timeouts", files="nginx/site.conf"),
]
