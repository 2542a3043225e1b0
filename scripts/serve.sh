#!/usr/bin/env bash
# Install radius-contracts into ./.venv and run it on its embedded default:
# SQLite in ./var, management API on http://127.0.0.1:8080, first admin token in ./var/admin-token.
# Extra arguments go to `radius-contracts serve` (e.g. --config FILE).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
exec "$VENV/bin/radius-contracts" serve "$@"
