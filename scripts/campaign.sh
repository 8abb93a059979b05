#!/usr/bin/env bash
# The reliability campaign (issue 15): 10,000 fuzzed rows mixed into copies of the real data,
# tampered copies of real adapters, manifests, run records and baselines, a canary API key
# searched for in every byte written, and 20 kill -9s of lm-eval, train, sweep, bench and judge
# each followed by a re-run. Writes leaderboards/reliability.md (+ .png, .json).
# About 15 minutes on 2 cores; exit 1 if anything was mishandled.
#
#   bash scripts/campaign.sh            # full campaign
#   bash scripts/campaign.sh --quick    # the short version the test suite runs
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec "${PY:-.venv/bin}/slmbench" campaign --data-dir "${DATA_DIR:-../shared/data}" "$@"
