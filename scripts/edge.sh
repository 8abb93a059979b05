#!/usr/bin/env bash
# The edge page (issue 24): one GGUF backbone at f16, q8_0 and q4_k_m with the zoo's LoRA
# adapters routed per task on llama.cpp, against hf-peft (the same zoo on transformers) on the
# same questions at batch 1; then the bench's memory, disk, decode and adapter-switch rows for
# backbone + N adapters beside the plain backbone; then leaderboards/edge from those records.
#
#   nice bash scripts/edge.sh                        # 7 categories x 150 test questions, and
#                                                    # 6 x 150 circular prompts
#   TASKS=teleqna CIRCULAR_LIMIT=0 bash scripts/edge.sh   # the speed target alone (150 TeleQnA)
#   LIMIT=10 STORE=/tmp/edge OUT=/tmp/edge/page bash scripts/edge.sh   # a smoke run
#   LLAMA_ARGS=flash_attn=false bash scripts/edge.sh  # llama.cpp's plain attention
#   LLAMA_PATCHES=1 bash scripts/edge.sh             # llama.cpp with slmbench's LoRA patches
#   ZOO=z4.yaml ZOO_LABEL=zoo-r4 STORE=... bash scripts/edge.sh   # another zoo, e.g. one cut
#                                                    # by `slmbench reduce-rank`, labelled apart
#   EVAL=0 INTERLEAVED_PAIRS=400 STORE=... bash scripts/edge.sh   # a finer bench of a store
#                                                    # already evaluated: no evaluation is run,
#                                                    # and the page pairs the store's own runs
#
# LLAMA_PATCHES=1 builds patches/llama.cpp once (scripts/build_llama_cpp_lora_patches.sh, about
# 5 minutes), loads that library and switches its patches on (the two LoRA patches, and on an
# AMX host Q5_0 and f16 weights on AMX's tiles); its llama.cpp runs are labelled
# "...:llama.cpp-patched-<patch set>" (the build folder's hash of the patches, so runs on two
# versions of a patch are told apart) and recorded as other runs than stock's, so both stay on
# the page.
#
# llama.cpp runs with its fused attention (flash_attn) by default here: on the 2-core EPYC it
# prefilled 300 tokens of the embedded GGUFs a quarter to a half faster (f16, q8_0, q4_k_m;
# an ad hoc probe without adapters, see issue 24), and these tasks are
# prefill-bound (most answers are one or two tokens). An edge deployment would turn it on.
#
# Resumable: every evaluation goes through the run store and a finished run of the same
# command is reused (FORCE=1 measures again: every request answered anew, --fresh); an
# interrupted bench resumes its missing rows.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA_DIR=${DATA_DIR:-../shared/data}
ZOO=${ZOO:-adapters_zoo/embedded.yaml}
ZOO_LABEL=${ZOO_LABEL:-zoo}
MODEL=${MODEL:-embedded}
TASKS=${TASKS:-teleqna,oranbench,sixg_bench,srsranbench,teletables,telemath,three_gpp_tsg}
LIMIT=${LIMIT:-150}
# prompts per circular task (each question once per rotation: 150 are 30 five-option or 37
# four-option questions; a question the limit cuts short is not scored); 0 leaves circular out
CIRCULAR_LIMIT=${CIRCULAR_LIMIT:-$LIMIT}
QUANTS=${QUANTS:-f16 q8_0 q4_k_m}
THREADS=${THREADS:-$(nproc)}
STORE=${STORE:-leaderboards/edge/runs}
OUT=${OUT:-leaderboards/edge}
BENCH=${BENCH:-1}
EVAL=${EVAL:-1}
for switch in BENCH EVAL; do  # anything else would silently skip that half of the run
  case "${!switch}" in 0|1) ;; *) echo "edge.sh: $switch must be 0 or 1, not '${!switch}'" >&2; exit 2;; esac
done
# adapter on/off request pairs the bench times in one process per quant: the decode ratio's
# median and its 95% interval (6 rounds give one; on a noisy VM 40 narrow it to a few points)
ALT_ROUNDS=${ALT_ROUNDS:-8}
# pairs of 8-token blocks, adapter on and off in turn within one request (a finer ratio per
# second of bench; 200 narrow its interval to about two points here)
INTERLEAVED_PAIRS=${INTERLEAVED_PAIRS:-40}
LLAMA_ARGS=${LLAMA_ARGS:-flash_attn=true}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=$THREADS
slm() { "$PY" -m harness.cli "$@"; }
ENGINE_LABEL=llama.cpp
if [ "${LLAMA_PATCHES:-0}" = "1" ]; then
  LLAMA_CPP_LIB_PATH=$(PYTHON=$PY bash scripts/build_llama_cpp_lora_patches.sh)
  export LLAMA_CPP_LIB_PATH LLAMA_LORA_FUSED=1 LLAMA_LORA_KEEP_RESERVE=1 LLAMA_AMX_Q5_0=1 LLAMA_AMX_F16=1 LLAMA_FA_TILED_SHORT=1
  ENGINE_LABEL=llama.cpp-patched-${LLAMA_CPP_LIB_PATH##*-}
fi
common=(--store "$STORE" --metadata "data_dir=$DATA_DIR" --batch_size 1 --apply_chat_template)
[ "${FORCE:-0}" = "1" ] && common+=(--fresh)

mapfile -t ggufs < <(slm gguf --model "$MODEL" --type "${QUANTS// /,}")
evaluate() {  # tasks, limit: hf-peft, then llama.cpp at each quant, on the same questions
  slm lm-eval --model hf-peft --model_args "pretrained=$MODEL,adapters=$ZOO" \
    --label "$MODEL+$ZOO_LABEL:hf-peft" --tasks "$1" --limit "$2" "${common[@]}"
  local i=0 quant
  for quant in $QUANTS; do
    slm lm-eval --model llama-cpp-peft \
      --model_args "pretrained=${ggufs[$i]},adapters=$ZOO,n_threads=$THREADS${LLAMA_ARGS:+,$LLAMA_ARGS}" \
      --label "$MODEL-$quant+$ZOO_LABEL:$ENGINE_LABEL" --tasks "$1" --limit "$2" "${common[@]}"
    i=$((i + 1))
  done
}
if [ "$EVAL" = "1" ]; then
  evaluate "$TASKS" "$LIMIT"
  # the same categories under circular scoring (MMBench's CircularEval), where a model's
  # preferred letter cannot pass for knowledge; a run of its own, so the page pairs it on its own
  circular=()
  for task in ${TASKS//,/ }; do
    [ -f "harness/tasks/$task/${task}_circular.yaml" ] && circular+=("${task}_circular")
  done
  if [ "$CIRCULAR_LIMIT" != "0" ] && [ ${#circular[@]} -gt 0 ]; then
    evaluate "$(IFS=,; echo "${circular[*]}")" "$CIRCULAR_LIMIT"
  fi
fi
if [ "$BENCH" = "1" ]; then
  formats=()
  for quant in $QUANTS; do formats+=("gguf-$quant" "gguf-$quant+lora"); done
  slm bench --model "$MODEL" --zoo "$ZOO" --formats "$(IFS=,; echo "${formats[*]}")" \
    --task none --data-dir "$DATA_DIR" --synthetic none --threads "$THREADS" \
    --alternating-rounds "$ALT_ROUNDS" --interleaved-pairs "$INTERLEAVED_PAIRS" \
    --output-dir "$STORE/bench"
fi
slm leaderboard --runs "$STORE" --out "$OUT"
echo "edge page: $OUT/edge.md"
