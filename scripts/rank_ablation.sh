#!/usr/bin/env bash
# The study's rank ablation at a real budget (issue 12): LoRA r in {4, 8, 16, 32} (alpha = 2r,
# all projections, answer-only loss, early stopping, options shuffled per example and epoch)
# on the shuffled zoo adapter's own training draw, each scored on Pass@1, Maj@4 and circularly
# (CircularEval: strict, and the mean over rotations) on the same test questions, then the rank
# page with paired tests between neighbouring ranks and the accuracy-vs-MB plot.
# The committed sweep rank_oranbench_800 was trained before option shuffling and scored without
# circular runs; this one is rank_oranbench_800_shuffled, a section of its own on the page.
#
#   bash scripts/rank_ablation.sh            # train + score (resumes), then publish + render
#   bash scripts/rank_ablation.sh render     # publish + render only (also mid-sweep)
#   GRID=modules bash scripts/rank_ablation.sh
#        # what the adapter adapts at r16: q,v / q,k,v,o / all seven projections, the cost
#        # of routing it on llama.cpp against its accuracy (the "all" point is the rank
#        # sweep's r16, linked from it when this machine trained it, else trained here)
#
# Commit leaderboards/rank_ablation after each point: on a machine that has lost the
# adapters, the published points are kept as recorded and only the rest are trained.
#
# Category: ORANBench. The study used 3GPP-TSG, but its test split here has 398 questions and
# the ablation asks for at least 500; ORANBench is the study's named fallback and has 2,000+.
# On 2 cores each point takes ~40 min (training ~20, scoring ~20 with the 2,000 circular
# prompts); interrupted runs resume.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-../shared/data}
PY=${PY:-.venv/bin}
BENCH=${BENCH:-oranbench}
GRID=${GRID:-rank}
EXAMPLES=${EXAMPLES:-800}   # the zoo adapter's draw (its train_subset in $ZOO)
ZOO=${ZOO:-adapters_zoo/embedded_shuffled.yaml}
EVAL_LIMIT=${EVAL_LIMIT:-500}
STORE=${STORE:-leaderboards/rank_ablation/runs}
OUT=${OUT:-leaderboards/rank_ablation}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# Points and their eval runs go to the working store (adapters and checkpoints stay there);
# only the records are published to $STORE.
export SLMBENCH_RUNS=${SLMBENCH_RUNS:-runs}
SWEEP_DIR=$SLMBENCH_RUNS/sweeps/${GRID}_${BENCH}_${EXAMPLES}_shuffled

# Points published by an earlier machine come back as records: the sweep keeps them as scored
# (their adapters stayed behind) and trains only the rest.
"$PY/python" - "$SWEEP_DIR" "$STORE" <<'PY'
import json, sys
from pathlib import Path

from harness.runs.atomic import write_json_atomic

sweep, store = Path(sys.argv[1]), Path(sys.argv[2])
published = store / "sweeps" / sweep.name / "results.jsonl"
for line in published.read_text().splitlines() if published.is_file() else []:
    row = json.loads(line)
    point = sweep / row["run_id"]
    if not (point / "result.json").is_file():
        point.mkdir(parents=True, exist_ok=True)
        write_json_atomic(point / "result.json", row)  # never half a record to resume from
        print(f"{row['run_id']}: published earlier, kept as recorded")
PY

if [[ ${1:-all} != render ]]; then
  "$PY/slmbench" sweep "$BENCH" --grid "$GRID" --sweep-dir "$SWEEP_DIR" --data-dir "$DATA_DIR" \
    --loss answer --max-train-examples "$EXAMPLES" --max-val-examples 100 --max-seq-len 512 \
    --eval-every 25 --patience 3 --eval-limit "$EVAL_LIMIT" --maj4 --circular
fi

"$PY/python" - "$SWEEP_DIR" "$STORE" "$BENCH" "$ZOO" <<'PY'
"""Publish the sweep's records (not its adapters) and check each point's training draw.

Run it while the sweep goes on (``render``) to publish each point as it finishes.
"""
import json, shutil, sys
from pathlib import Path

import yaml

from harness.runs.records import eval_run_of

sweep, store, bench = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
zoo = yaml.safe_load(Path(sys.argv[4]).read_text())
wanted = next(a["train_data_sha256"] for a in zoo["adapters"] if a["name"] == bench)
runs = Path(sys.argv[1]).parents[1]
target = store / "sweeps" / sweep.name
target.mkdir(parents=True, exist_ok=True)
for name in ("results.jsonl", "run.json"):
    shutil.copy2(sweep / name, target / name)
for line in (sweep / "results.jsonl").read_text().splitlines():
    row = json.loads(line)
    trained_here = sweep / row["run_id"] / "train_record.json"
    published = target / row["run_id"] / "train_record.json"
    if trained_here.is_file():
        published.parent.mkdir(exist_ok=True)
        shutil.copy2(trained_here, published)
    record = json.loads(published.read_text())
    drawn = record["data"]["train_sha256"]
    same = "same draw as the zoo adapter" if drawn == wanted else f"OTHER DRAW ({drawn[:12]})"
    modules = f", {row['module_set']}" if row.get("module_set") else ""
    print(f"{row['run_id']}: rank {row['rank']}{modules}, val loss {row['best_val_loss']}, {same}")
    for run_id in (eval_run_of(row), row.get("circular_eval_run_id")):
        dest = store / "eval" / str(run_id)
        if run_id and not dest.exists():
            shutil.copytree(runs / "eval" / run_id, dest, ignore=shutil.ignore_patterns(".*"))
PY
"$PY/slmbench" leaderboard --runs "$STORE" --out "$OUT"
