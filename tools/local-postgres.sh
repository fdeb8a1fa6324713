#!/usr/bin/env bash
# Kept for old instructions: `clambake server start|stop|status` (Python, any OS) does this now.
#   tools/local-postgres.sh start|stop|status   ==   python clambake.py server start|stop|status
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[[ -n "${CLAMBAKE_LOCAL_PG_DIR:-}" && -z "${CLAMBAKE_SERVER_DIR:-}" ]] && export CLAMBAKE_SERVER_DIR="$CLAMBAKE_LOCAL_PG_DIR"
exec "$(command -v python3 || command -v python)" "$here/clambake.py" server "$@"
