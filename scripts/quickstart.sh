#!/usr/bin/env bash
# The README's main job: install slmbench and evaluate the embedded default model offline.
#  1. TeleQnA and ORAN-Bench (real data in ../shared/data): Pass@1 and cloze loglikelihood
#     of the option texts, each printed beside its chance and constant-answer baselines.
#  2. E-commerce intents (generated offline): the backbone before and after its committed
#     LoRA adapter (adapters_zoo/embedded.yaml), compared question by question.
# Every run lands in the run store (runs/eval/<id>); re-running reuses finished runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
install_slmbench
S="$VENV/bin/slmbench"
DATA="${SLMBENCH_DATA_DIR:-$(cd .. && pwd)/shared/data}"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

run_folder() {  # the run-store folder of the last `slmbench lm-eval` in $LOG
  sed -n 's/^slmbench: run folder \([^ ]*\).*/\1/p' "$LOG" | tail -1
}

"$S" lm-eval --tasks teleqna,oranbench,teleqna_cloze,oranbench_cloze \
  --model hf --model_args pretrained=embedded --limit "${LIMIT:-50}" --label embedded \
  --metadata "data_dir=$DATA" --output_path results/quickstart --log_samples "$@"

echo; echo "== E-commerce intents: embedded model before and after its adapter =="
"$S" lm-eval --tasks ecommerce_intent --model hf --model_args pretrained=embedded \
  --limit "${INTENT_LIMIT:-100}" --batch_size 8 --label "embedded" 2>&1 | tee "$LOG"
before=$(run_folder)
"$S" lm-eval --tasks ecommerce_intent --model hf-peft \
  --model_args adapters=adapters_zoo/embedded.yaml --limit "${INTENT_LIMIT:-100}" \
  --batch_size 8 --label "embedded+zoo" 2>&1 | tee "$LOG"
after=$(run_folder)
# Paired, per question: delta with its 95% CI and McNemar p (exit 1 would mean "worse").
"$S" regress --baseline "$before" --candidate "$after" --tolerance 0 || true
"$S" intents "$after"
