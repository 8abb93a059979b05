#!/usr/bin/env bash
# The README's test command: install slmbench with its test extras, then run the suite.
# CPU torch is pinned first (an unpinned torch pulls several GB of CUDA wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SLMBENCH_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[test]"
"$VENV/bin/python" -m ruff check harness tests
exec "$VENV/bin/python" -m pytest -m "not gpu and not slow" "$@"
