#!/usr/bin/env bash
# Install tillbox into .venv and run the box on its embedded defaults (extra arguments go to
# `tillbox run`, e.g. --http 0.0.0.0:8080 or --data-dir ./data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/tillbox run "$@"
