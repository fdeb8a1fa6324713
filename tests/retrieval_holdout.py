"""A second, separate validation set for recall's ranking: written after the ranking was built and
before it was tuned further, so that a change to the ranking can be checked on entries and queries it
was not shaped by (a change is kept only when it does not hurt this set).

HOLDOUT_MEMORIES: further memories -- a new project `shop` (a Django shop with Stripe), a new
project `ml` (a model training pipeline), and more entries for the existing projects and global
memory, several of them close neighbours of existing entries (more Postgres, Docker, Traefik, token
notes) so that a query has to pick the right one among similar ones.  They are stored together with
tests/retrieval_corpus.py's ALL (HOLDOUT_ALL), so the corpus's entries are distractors too.

HOLDOUT_QUERIES: (kind, query, key expected first), the four kinds of retrieval_corpus.py, phrased as
a new user of these projects would type them.
"""

from retrieval_corpus import ALL, m

HOLDOUT_MEMORIES = [
    # ------------------------------------------------------------------ shop (Django + Stripe)
    m("shop-webhook-signature", "shop", "fix", "Stripe webhook signature check failed behind the proxy",
      "stripe.Webhook.construct_event raised SignatureVerificationError because the view read "
      "request.POST instead of the raw body. Pass request.body untouched to the verifier.", "stripe,webhooks"),
    m("shop-webhook-idempotency", "shop", "pattern", "Webhook events are processed once by event id",
      "Stripe retries deliveries for three days. Every event id is stored in processed_events with a unique "
      "constraint; a duplicate delivery returns 200 without doing the work again.", "stripe,webhooks"),
    m("shop-decimal-money", "shop", "decision", "Prices are integers in cents, never floats",
      "Amounts are stored as integer minor units (cents) and formatted only in templates; 0.1 + 0.2 "
      "rounding errors showed up in invoice totals when floats were used.", "money"),
    m("shop-vat-rounding", "shop", "issue", "VAT totals differ by one cent from the accountant's export",
      "We round VAT per line item, the accounting tool rounds on the invoice total. Open: agree on one "
      "rule with the accountant before the next quarter.", "tax,invoices"),
    m("shop-static-whitenoise", "shop", "decision", "Static files served by WhiteNoise, not nginx",
      "One container less: WhiteNoise serves compressed static files with far-future cache headers; "
      "collectstatic runs in the image build.", "django,static"),
    m("shop-csrf-trusted-origins", "shop", "gotcha", "Django 4 needs CSRF_TRUSTED_ORIGINS with the scheme",
      "After the upgrade every form POST from the public domain got 403 CSRF verification failed. "
      "CSRF_TRUSTED_ORIGINS entries must include https://.", "django,csrf"),
    m("shop-celery-beat-dupes", "shop", "fix", "Abandoned-cart emails were sent twice",
      "Two celery beat processes ran after a deploy (old container not stopped). Beat now runs as its own "
      "single-replica service and the task takes a redis lock.", "celery,email"),
    m("shop-image-thumbnails", "shop", "pattern", "Product image thumbnails are generated on upload",
      "Pillow creates 200, 600 and 1200 px WebP variants in a worker task when the image is uploaded; "
      "templates use srcset.", "images"),
    m("shop-search-postgres", "shop", "decision", "Product search uses Postgres full text, not Elasticsearch",
      "A few thousand products do not need a search cluster. SearchVector on name and description with a "
      "GIN index, weighted A for the name.", "search,postgres"),
    m("shop-stock-race", "shop", "issue", "Two customers bought the last item at the same time",
      "Stock was checked and decremented in separate queries. Now SELECT ... FOR UPDATE on the stock row "
      "inside the checkout transaction.", "checkout,postgres"),
    m("shop-test-stripe-keys", "shop", "decision", "Stripe test keys are in the team vault",
      "The test-mode publishable and secret keys live in the vault under shop/stripe-test; never commit "
      "them to .env.example.", "stripe,secrets"),
    m("shop-session-redis", "shop", "architecture", "Sessions and cache share one redis with separate databases",
      "Django sessions use redis db 1, the cache db 2, celery db 0; flushing the cache no longer logs "
      "customers out.", "redis,sessions"),
    m("shop-email-templates", "shop", "pattern", "Transactional email templates are MJML",
      "Order confirmation, shipping and password emails are written in MJML and compiled to HTML at build "
      "time so they render in Outlook.", "email"),
    m("shop-admin-slow", "shop", "fix", "Django admin order list took 20 seconds",
      "The changelist counted all rows and joined customer for every line. list_select_related and "
      "show_full_result_count = False made it load in under a second.", "django,performance"),
    # ------------------------------------------------------------------ ml (training pipeline)
    m("ml-cuda-oom", "ml", "gotcha", "CUDA out of memory halfway through the first epoch",
      "Padding to the longest sequence in a batch sometimes made a batch 4x bigger. Sort by length into "
      "buckets and cap tokens per batch instead of sequences per batch.", "gpu,training"),
    m("ml-seed", "ml", "pattern", "Every run sets the seed for python, numpy and torch",
      "utils.seed_everything(seed) at the start of train.py; the seed is logged with the run so results "
      "can be reproduced.", "reproducibility"),
    m("ml-dataloader-workers", "ml", "fix", "Training stalled on the data loader",
      "GPU utilisation sat at 30%: num_workers was 0. Eight workers with pin_memory and persistent "
      "workers keep the GPU busy.", "performance,training"),
    m("ml-mlflow", "ml", "decision", "Experiments are tracked in MLflow on the NAS",
      "MLflow tracking server with a Postgres backend store and artifacts on the NAS share; W&B was too "
      "expensive for the team.", "tracking"),
    m("ml-checkpoint-resume", "ml", "pattern", "Checkpoints every 1000 steps, resume from the newest",
      "The trainer saves model, optimizer and scheduler state every 1000 steps and keeps the last three; "
      "--resume picks the newest one after a preemption.", "training"),
    m("ml-tokenizer-mismatch", "ml", "gotcha", "Evaluation scores collapsed with the wrong tokenizer",
      "The eval script loaded the base model's tokenizer while the checkpoint had added special tokens. "
      "Save the tokenizer next to every checkpoint.", "evaluation"),
    m("ml-fp16-nan", "ml", "issue", "Loss becomes NaN with fp16 mixed precision",
      "After a few thousand steps the loss turns NaN in fp16. bf16 on the A100 is stable; on older cards "
      "lower the learning rate and keep the grad scaler.", "gpu,training"),
    m("ml-dataset-versioning", "ml", "decision", "Datasets are versioned with DVC",
      "Raw and processed datasets are tracked with DVC pointing at the B2 bucket; git holds only the .dvc "
      "files.", "data"),
    m("ml-jupyter-remote", "ml", "pattern", "Jupyter on the GPU box through an SSH tunnel",
      "ssh -L 8888:localhost:8888 gpu-box, then open the token URL locally; never expose Jupyter on a "
      "public port.", "jupyter,ssh"),
    m("ml-eval-leak", "ml", "issue", "Validation accuracy was inflated by duplicate examples",
      "Near-duplicate rows appeared in both train and validation splits. Deduplicate by a hash of the "
      "normalised text before splitting.", "data,evaluation"),
    # ------------------------------------------------------------------ more for existing projects
    m("api-idempotency-keys", "api", "feature", "POST endpoints accept an Idempotency-Key header",
      "A retried payment request with the same key returns the stored response instead of charging "
      "again; keys expire after 24 hours.", "http"),
    m("api-openapi-docs", "api", "pattern", "The OpenAPI schema is checked in and diffed in CI",
      "make openapi regenerates openapi.json; CI fails when the committed file differs, so breaking "
      "changes show up in review.", "docs,ci"),
    m("api-pagination", "api", "decision", "List endpoints use cursor pagination",
      "Offset pagination got slow past page 500 and skipped rows on inserts; cursors encode the last "
      "id and created_at.", "http,postgres"),
    m("api-healthcheck", "api", "pattern", "Health endpoint checks the database but not third parties",
      "/healthz runs SELECT 1 with a 2 s timeout; an outage at the mail provider must not make the "
      "orchestrator restart every api container.", "ops"),
    m("docdb-pgbouncer-prepared", "docdb", "gotcha", "Prepared statements fail through PgBouncer",
      "asyncpg raised prepared statement does not exist in transaction pooling mode. Set "
      "statement_cache_size=0 for connections through the pooler.", "postgres,pgbouncer"),
    m("docdb-lang-detect", "docdb", "feature", "Documents get a language tag at ingestion",
      "fastText's lid model tags each document; search uses the matching text search configuration "
      "(german, english, simple).", "search"),
    m("webapp-i18n-plurals", "webapp", "gotcha", "Plural forms broke in Polish",
      "We assumed one/other; Polish needs one/few/many. Use Intl.PluralRules and ICU message format in the "
      "translation files.", "i18n"),
    m("webapp-lighthouse", "webapp", "update", "Lighthouse performance score back to 95",
      "Lazy-loading the chart library and preloading the main font brought the mobile score from 61 to 95.",
      "performance"),
    m("infra-proxmox-backup", "infra", "architecture", "VM snapshots go to Proxmox Backup Server",
      "PBS on the old NUC takes nightly VM backups with deduplication; restic still backs up the "
      "application data.", "backup,proxmox"),
    m("infra-ups-shutdown", "infra", "architecture", "NUT shuts the servers down on UPS battery",
      "The UPS is read by NUT on the NAS; at 20% battery it tells Proxmox and the NAS to shut down "
      "cleanly.", "power"),
    m("infra-traefik-ratelimit", "infra", "pattern", "Rate limit middleware on public Traefik routes",
      "Public routers carry a ratelimit middleware (average 50, burst 100) so a scraper cannot take the "
      "wiki down.", "traefik"),
    m("infra-cert-expiry-alert", "infra", "fix", "Certificate renewal silently failed for a month",
      "The DNS challenge token for the provider had expired; Traefik kept serving the old certificate "
      "until it ran out. Uptime Kuma now alerts 14 days before expiry.", "tls,traefik,monitoring"),
    m("infra-vlan-iot", "infra", "decision", "IoT devices live on their own VLAN",
      "Cameras and smart plugs are on VLAN 30 without access to the LAN; only Home Assistant may reach "
      "them.", "networking"),
    # ------------------------------------------------------------------ more global
    m("global-pre-commit", "global", "convention", "pre-commit runs ruff and prettier before every commit",
      "Every repository has a .pre-commit-config.yaml with ruff, ruff-format and prettier; CI runs the "
      "same hooks.", "git,lint"),
    m("global-timezone-db", "global", "convention", "Timestamps are stored as timestamptz",
      "Never timestamp without time zone: columns are timestamptz and the application converts to the "
      "user's zone only for display.", "postgres,time"),
    m("global-gpg-signing", "global", "preference", "Commits are signed with an SSH key",
      "git config gpg.format ssh and user.signingkey point at the ed25519 key; GitHub shows the commits "
      "as verified.", "git,ssh"),
    m("global-make-venv", "global", "tool", "direnv loads .venv and .env when entering a project",
      "An .envrc with layout python and dotenv makes every shell in the project use its own venv and "
      "variables.", "shell,python"),
    m("global-docker-buildkit-cache", "global", "lesson", "Order Dockerfile steps so dependencies cache",
      "Copy the lock file and install dependencies before copying the source; otherwise every code "
      "change reinstalls all packages.", "docker,builds"),
    m("global-locks-postgres", "global", "lesson", "ALTER TABLE waits behind a long transaction and blocks everyone",
      "An idle-in-transaction session held a lock; the ALTER queued behind it and every query queued "
      "behind the ALTER. Set lock_timeout before migrations.", "postgres,migrations"),
]

HOLDOUT_ALL = ALL + HOLDOUT_MEMORIES

HOLDOUT_QUERIES = [
    # keyword
    ("keyword", "stripe webhook signature", "shop-webhook-signature"),
    ("keyword", "csrf trusted origins", "shop-csrf-trusted-origins"),
    ("keyword", "cuda out of memory", "ml-cuda-oom"),
    ("keyword", "mlflow tracking", "ml-mlflow"),
    ("keyword", "pgbouncer prepared statements", "docdb-pgbouncer-prepared"),
    ("keyword", "cursor pagination", "api-pagination"),
    ("keyword", "ups battery shutdown", "infra-ups-shutdown"),
    ("keyword", "lock_timeout migrations", "global-locks-postgres"),
    # paraphrase
    ("paraphrase", "customers received the same reminder mail two times", "shop-celery-beat-dupes"),
    ("paraphrase", "gpu mostly idle while training because input loading is slow", "ml-dataloader-workers"),
    ("paraphrase", "same item sold to two shoppers simultaneously", "shop-stock-race"),
    ("paraphrase", "results of the model looked great but test data overlapped with training data",
     "ml-eval-leak"),
    ("paraphrase", "https certificate expired and nobody noticed", "infra-cert-expiry-alert"),
    ("paraphrase", "a retried payment must not charge the card twice", "api-idempotency-keys"),
    ("paraphrase", "rounding differences in tax amounts against the bookkeeping", "shop-vat-rounding"),
    ("paraphrase", "translations with numbers look wrong in some languages", "webapp-i18n-plurals"),
    # question
    ("question", "how do we store money amounts?", "shop-decimal-money"),
    ("question", "where do I find the stripe test keys?", "shop-test-stripe-keys"),
    ("question", "why is the training loss nan with fp16?", "ml-fp16-nan"),
    ("question", "how do I open jupyter on the gpu machine?", "ml-jupyter-remote"),
    ("question", "what happens when the power goes out?", "infra-ups-shutdown"),
    ("question", "how often are checkpoints saved and can training resume?", "ml-checkpoint-resume"),
    ("question", "why did every form post return 403 after the django upgrade?", "shop-csrf-trusted-origins"),
    ("question", "which tool versions the datasets?", "ml-dataset-versioning"),
    # typo
    ("typo", "stripe webhok signiture", "shop-webhook-signature"),
    ("typo", "whitenose static files", "shop-static-whitenoise"),
    ("typo", "pgbouncr prepared statments", "docdb-pgbouncer-prepared"),
    ("typo", "tokeniser mismatch evaluation", "ml-tokenizer-mismatch"),
    ("typo", "thumbnials product images", "shop-image-thumbnails"),
    ("typo", "idempotancy key", "api-idempotency-keys"),
    ("typo", "lighthose performance score", "webapp-lighthouse"),
    ("typo", "proxmox backup servr", "infra-proxmox-backup"),
]
