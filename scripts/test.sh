#!/usr/bin/env bash
# The README's test command: install slmbench with its test extras, lint, run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
install_slmbench test
"$VENV/bin/python" -m ruff check harness tests
exec "$VENV/bin/python" -m pytest -m "not gpu and not slow and not benchmark" "$@"
