#!/usr/bin/env bash
# llama-cpp-peft against hf-peft (issue 24): the same zoo on the same TeleQnA test questions at
# batch 1; wall time, questions/s, and the answers paired question by question.
#
#   bash scripts/bench_llama_cpp_peft.sh                 # 150 questions, the embedded GGUF
#   LIMIT=10 bash scripts/bench_llama_cpp_peft.sh        # a smoke run
#   GGUF=/path/model-f16.gguf bash scripts/bench_llama_cpp_peft.sh
#
# Resumable: each run goes through the run store, and a finished run of the same command is
# reused (pass FORCE=1 to time it again). Both engines get THREADS threads.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA_DIR=${DATA_DIR:-../shared/data}
ZOO=${ZOO:-adapters_zoo/embedded.yaml}
LIMIT=${LIMIT:-150}
TASKS=${TASKS:-teleqna}
GGUF=${GGUF:-embedded}
THREADS=${THREADS:-$(nproc)}
STORE=${STORE:-runs}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=$THREADS
common=(--tasks "$TASKS" --limit "$LIMIT" --store "$STORE" --metadata "data_dir=$DATA_DIR"
        --batch_size 1)
[ "${FORCE:-0}" = "1" ] && common+=(--force)

run() {  # model model_args label -> prints the run folder
  "$PY" -m harness.cli lm-eval --model "$1" --model_args "$2" --label "$3" "${common[@]}" \
    2>&1 | tee -a /dev/stderr | sed -n 's/^slmbench: run folder \([^ ]*\).*/\1/p'
}
hf=$(run hf-peft "adapters=$ZOO" "embedded+zoo:hf" | tail -1)
ll=$(run llama-cpp-peft "pretrained=$GGUF,adapters=$ZOO,n_threads=$THREADS" \
     "$(basename "$GGUF" .gguf)+zoo:llama.cpp" | tail -1)
"$PY" - "$hf" "$ll" <<'PY'
import sys
from datetime import datetime

from harness.runs.store import load_run

runs = [load_run(folder) for folder in sys.argv[1:]]
walls = []
for run in runs:
    m = run.manifest
    wall = (datetime.fromisoformat(m["finished"].rstrip("Z"))
            - datetime.fromisoformat(m["started"].rstrip("Z"))).total_seconds()
    walls.append(wall)
    n = sum(t.get("n") or 0 for t in run.tasks().values())
    scores = ", ".join(f"{k} {v['value']:.3f}" for k, v in sorted(run.tasks().items()))
    print(f"{run.label:<28} {wall:8.1f} s  {n / wall:6.2f} questions/s  {scores}")
print(f"speed-up llama-cpp-peft / hf-peft: {walls[0] / walls[1]:.2f}x (wall, model load included)")
hf, ll = runs
for task in sorted(set(hf.tasks()) & set(ll.tasks())):
    a = {r["id"]: r for r in hf.samples(task) or []}
    b = {r["id"]: r for r in ll.samples(task) or []}
    ids = sorted(set(a) & set(b))
    if not ids:
        continue
    def answer(row):
        resps = row.get("filtered_resps") or row.get("resps") or [""]
        return str(resps[0]).strip()
    same = sum(answer(a[i]) == answer(b[i]) for i in ids)
    both = sum(a[i]["score"] == b[i]["score"] == 1 for i in ids)
    only_hf = sum(a[i]["score"] > b[i]["score"] for i in ids)
    only_ll = sum(a[i]["score"] < b[i]["score"] for i in ids)
    print(f"{task}: {len(ids)} paired questions, same extracted answer on {same} "
          f"({same / len(ids):.1%}); right in both {both}, only hf-peft {only_hf}, "
          f"only llama-cpp-peft {only_ll}")
PY
# Paired significance (McNemar) on the same questions; exit 1 only on a real drop.
"$PY" -m harness.cli regress --baseline "$hf" --candidate "$ll" --allow-mismatch || true
