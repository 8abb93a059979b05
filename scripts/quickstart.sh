#!/usr/bin/env bash
# The README's main job: install slmbench and evaluate the embedded default model offline
# on the real TeleQnA and ORAN-Bench data in ../shared/data (Pass@1 and loglikelihood).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
install_slmbench
DATA="${SLMBENCH_DATA_DIR:-$(cd .. && pwd)/shared/data}"
exec "$VENV/bin/slmbench" lm-eval --tasks teleqna,oranbench,teleqna_mc,oranbench_mc \
  --model hf --model_args pretrained=embedded --limit "${LIMIT:-50}" \
  --metadata "data_dir=$DATA" --output_path results/quickstart --log_samples "$@"
