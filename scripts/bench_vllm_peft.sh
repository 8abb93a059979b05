#!/usr/bin/env bash
# vllm-peft against hf-peft on the same questions with the same zoo (issue 13): scores paired
# question by question (slmbench regress: McNemar), wall time and questions/s side by side.
#
#   LIMIT=300 bash scripts/bench_vllm_peft.sh
#
# vllm-peft runs from its own environment (VLLM_VENV, built from constraints-vllm.txt; see
# README "vLLM with per-task adapters"), hf-peft from .venv. Both runs land in the run store.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-../shared/data}
ZOO=${ZOO:-adapters_zoo/embedded.yaml}
LIMIT=${LIMIT:-300}
TASKS=${TASKS:-teleqna,oranbench}
VLLM_VENV=${VLLM_VENV:-.venv-vllm}
STORE=${STORE:-runs}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
common=(--tasks "$TASKS" --limit "$LIMIT" --store "$STORE" --metadata "data_dir=$DATA_DIR"
        --batch_size 8)

run() {  # venv model label -> prints the run folder
  "$1/bin/slmbench" lm-eval --model "$2" --model_args "adapters=$ZOO" --label "$3" \
    "${common[@]}" 2>&1 | tee -a /dev/stderr | sed -n 's/^slmbench: run folder \([^ ]*\).*/\1/p'
}
hf=$(run .venv hf-peft embedded+zoo | tail -1)
vllm=$(run "$VLLM_VENV" vllm-peft embedded+zoo:vllm | tail -1)
.venv/bin/python - "$hf" "$vllm" <<'PY'
import json, sys
from datetime import datetime
for folder in sys.argv[1:]:
    run = json.load(open(f"{folder}/run.json"))
    wall = (datetime.fromisoformat(run["finished"].rstrip("Z"))
            - datetime.fromisoformat(run["started"].rstrip("Z"))).total_seconds()
    n = sum(t.get("n") or 0 for t in run["tasks"].values())
    scores = ", ".join(f"{k} {v['value']:.3f}" for k, v in sorted(run["tasks"].items()))
    print(f"{run['label']:<22} {wall:8.1f} s  {n / wall:6.2f} questions/s  {scores}")
PY
# Paired: does vllm-peft score the same questions the same way? (exit 1 only on a real drop)
.venv/bin/slmbench regress --baseline "$hf" --candidate "$vllm" --allow-mismatch || true
