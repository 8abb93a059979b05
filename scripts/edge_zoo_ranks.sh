#!/usr/bin/env bash
# Issue 24: does the zoo cut to a lower rank answer as the zoo does, on the same engines and
# questions, while its routed decode comes closer to the merged GGUF's? Every adapted matmul
# pays for the adapter's rank at each decode token, so a lower rank is the cheapest lever on an
# edge CPU, if the answers hold.
#
#   LLAMA_PATCHES=1 nice bash scripts/edge_zoo_ranks.sh          # rank 4, patched llama.cpp
#   RANK=8 ROOT=/tmp/ranks LIMIT=20 BENCH=0 bash scripts/edge_zoo_ranks.sh   # a smoke run
#
# 1. `slmbench reduce-rank` cuts every adapter of ZOO to RANK (truncated SVD, by peft) into
#    CUT, unless CUT already holds every one of them.
# 2. scripts/edge.sh runs both zoos, each in a store of its own under ROOT (hf-peft, then
#    llama.cpp at each quantization, on the same questions; then the bench and its page).
# 3. `slmbench regress` pairs the cut zoo against the zoo on each engine, question by question
#    (exact McNemar per task), and writes ROOT/gate/<engine>.md. A task that regressed is a
#    result, not a failure of this script: each gate's exit code is printed beside it.
#
# Resumable: edge.sh reuses every finished run of the same command and resumes the bench;
# the gate is read again from the runs each time.
set -euo pipefail
cd "$(dirname "$0")/.."
export PY=${PY:-.venv/bin/python}
ZOO=${ZOO:-adapters_zoo/embedded.yaml}
RANK=${RANK:-4}
CUT=${CUT:-${ZOO%.yaml}_r$RANK.yaml}
ROOT=${ROOT:-leaderboards/edge/zoo-ranks}
# the multiple-choice categories; TeleMath's 256-token answers take hf-peft 25 minutes here
export TASKS=${TASKS:-teleqna,oranbench,sixg_bench,srsranbench,teletables,three_gpp_tsg}
export CIRCULAR_LIMIT=${CIRCULAR_LIMIT:-0}
slm() { "$PY" -m harness.cli "$@"; }

names() {  # a manifest's adapter names, sorted; nothing where it does not exist yet
  [ -f "$1" ] && "$PY" -c "import sys; from harness.artefacts.zoo_manifest import load_manifest
print(sorted(a.name for a in load_manifest(sys.argv[1]).adapters))" "$1" || true
}
# cut again where an interrupted cut left the manifest without some adapter
[ "$(names "$CUT")" = "$(names "$ZOO")" ] || slm reduce-rank --zoo "$ZOO" --rank "$RANK" --out "$CUT"
source_rank=$("$PY" -c "import sys; from harness.artefacts.zoo_manifest import load_manifest
print(max(a.rank for a in load_manifest(sys.argv[1]).adapters))" "$ZOO")

for pair in "$ZOO:$source_rank" "$CUT:$RANK"; do
  zoo=${pair%:*} rank=${pair##*:}
  ZOO=$zoo ZOO_LABEL=zoo-r$rank STORE=$ROOT/r$rank OUT=$ROOT/r$rank/page bash scripts/edge.sh
done

run_labelled() {  # store, label: the eval run folder holding that label, or nothing
  "$PY" -c "import json, pathlib, sys
hits = [p.parent for p in pathlib.Path(sys.argv[1], 'eval').glob('*/run.json')
        if json.loads(p.read_text()).get('label') == sys.argv[2]]
print(hits[0] if len(hits) == 1 else sys.exit(f'{len(hits)} runs labelled {sys.argv[2]}'))
" "$@" 2>/dev/null || true
}
mkdir -p "$ROOT/gate"
for path in "$ROOT/r$source_rank"/eval/*/run.json; do
  label=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['label'])" "$path")
  engine=${label#*+zoo-r$source_rank:}
  cut_label=${label/+zoo-r$source_rank:/+zoo-r$RANK:}
  name=${label%%+*}-${engine}
  cut_run=$(run_labelled "$ROOT/r$RANK" "$cut_label")
  if [ -z "$cut_run" ]; then  # e.g. a quantization the cut zoo was not run at (QUANTS)
    echo "gate rank $RANK against rank $source_rank, $name: no run labelled $cut_label"
    continue
  fi
  rc=0
  slm regress --baseline "$(dirname "$path")" --candidate "$cut_run" \
    --summary "$ROOT/gate/$name.md" || rc=$?
  echo "gate rank $RANK against rank $source_rank, $name: exit $rc (0 held, 1 regressed)"
  [ "$rc" -le 1 ] || exit "$rc"  # refused: the two runs did not answer the same questions
done
