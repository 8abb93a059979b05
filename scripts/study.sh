#!/usr/bin/env bash
# The reference study: one adapter per category over one frozen backbone, each scored against
# the backbone and against the constant-answer baselines, plainly (Pass@1, Maj@4) and
# position-free (circular, cloze), then the category pages from the run records.
#
#   bash scripts/study.sh            # train, eval, render (resumes: finished work is reused)
#   bash scripts/study.sh train      # train + publish the category adapters
#   bash scripts/study.sh eval       # backbone and zoo: Pass@1, circular, cloze, Maj@4, seen
#   bash scripts/study.sh render     # zoo metrics and $OUT from the stored runs
#   MODEL=meta-llama/Llama-3.2-1B-Instruct ZOO=adapters_zoo/llama1b.yaml bash scripts/study.sh
#   ZOO=adapters_zoo/embedded.yaml ZOO_LABEL=zoo PERMUTE=no bash scripts/study.sh
#        (the first zoo, trained before option shuffling; its runs are "embedded+zoo")
# By default the study is the shuffled zoo (adapters_zoo/embedded_shuffled.yaml, runs labelled
# "embedded+shuffled"). Training publishes into $ZOO, so the default never overwrites the
# first zoo's adapters, whose quickstart, adapter gate and edge page were measured on them.
#
# Profiles (PROFILE=auto picks gpu when torch sees CUDA):
#   cpu  the 2-core budgets the committed zoo was trained with: a seeded subset of each train
#        split, sequences cut to a few hundred tokens, one job at a time;
#   gpu  the whole train split (capped at TRAIN_CAP) for EPOCHS epochs at MAX_SEQ tokens, and
#        JOBS trainings/evaluations at once (a sub-2B model leaves one GPU mostly idle);
#        scored on vLLM (vllm / vllm-peft) when it is installed (ENGINE=hf|vllm|llama overrides).
# ENGINE=llama scores on llama.cpp: the backbone exported to one GGUF (GGUF_TYPE, default f16,
# `slmbench gguf`) and the zoo routed on it (llama-cpp-peft). On 2 cores it answers 2.2x faster
# than transformers with the same answers at f16 (leaderboards/edge); its runs are labelled
# "<backbone>@llama.cpp-<type>" (and "+<zoo>"), so they never mix with transformers' runs.
# Scoring applies the chat template when the model's tokenizer has one, as training does
# (CHAT=yes|no overrides).
# Choice and label adapters are trained with their options shuffled per example and epoch
# (slmbench train's default; PERMUTE=no turns it off), so an adapter cannot learn the answer
# key's position prior.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-../shared/data}
MODEL=${MODEL:-embedded}
ZOO=${ZOO:-adapters_zoo/embedded_shuffled.yaml}
# How the pages name the zoo's runs: "<backbone>+<name>", e.g. ZOO_LABEL=embedded+shuffled (or
# just "shuffled"); each zoo gets its own section. The default zoo's runs are "+shuffled",
# any other's "+zoo" unless named.
if [[ -z ${ZOO_LABEL:-} && $ZOO == adapters_zoo/embedded_shuffled.yaml ]]; then
  ZOO_LABEL=shuffled
fi
ZOO_LABEL=${ZOO_LABEL:-}
# Options shuffled per example and epoch while training (slmbench train's default); PERMUTE=no
# reproduces adapters trained before it.
PERMUTE=${PERMUTE:-yes}
STORE=${STORE:-leaderboards/study/runs}
OUT=${OUT:-leaderboards/study}
SLMBENCH=${SLMBENCH:-.venv/bin/slmbench}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}
STAGE=${1:-all}
CATEGORIES=${CATEGORIES:-"teleqna oranbench three_gpp_tsg sixg_bench srsranbench teletables telemath"}

PROFILE=${PROFILE:-auto}
if [[ $PROFILE == auto ]]; then
  PROFILE=$(${PYTHON:-$(dirname "$SLMBENCH")/python} -c \
    "import torch; print('gpu' if torch.cuda.is_available() else 'cpu')" 2>/dev/null || echo cpu)
fi
if [[ $PROFILE == gpu ]]; then
  # category:train examples:max tokens (0 = the whole train split, up to TRAIN_CAP)
  BUDGETS=${BUDGETS:-""}
  TRAIN_CAP=${TRAIN_CAP:-2000} MAX_SEQ=${MAX_SEQ:-1024} EPOCHS=${EPOCHS:-2}
  JOBS=${JOBS:-8} BATCH=${BATCH:-32} DEVICE=${DEVICE:-cuda:0}
else
  # 3GPP-TSG's excerpts run to ~2,000 tokens; 256 keeps the end of each (cut from the left).
  BUDGETS=${BUDGETS:-"teleqna:1200:512 oranbench:800:512 three_gpp_tsg:400:256 sixg_bench:200:512 srsranbench:400:512 teletables:300:512 telemath:300:512"}
  TRAIN_CAP=${TRAIN_CAP:-0} MAX_SEQ=${MAX_SEQ:-512} EPOCHS=${EPOCHS:-1}
  JOBS=${JOBS:-1} BATCH=${BATCH:-8} DEVICE=${DEVICE:-cpu}
fi
# Questions scored per table and model. Circular limits count prompts (one per rotation,
# question-major, a question cut short is dropped): 1,500 prompts are >= 300 questions of
# four or five options, or the whole test split where it is smaller.
EVAL_LIMIT=${EVAL_LIMIT:-300}
CIRCULAR_LIMIT=${CIRCULAR_LIMIT:-1500}
CLOZE_LIMIT=${CLOZE_LIMIT:-300}
MAJ_LIMIT=${MAJ_LIMIT:-200}
SEEN_LIMIT=${SEEN_LIMIT:-100}
# Scoring engine: vLLM (vllm / vllm-peft) where it is installed on a GPU, else transformers.
ENGINE=${ENGINE:-auto}
if [[ $ENGINE == auto ]]; then
  ENGINE=hf
  if [[ $PROFILE == gpu ]] && ${PYTHON:-$(dirname "$SLMBENCH")/python} -c "import vllm" 2>/dev/null; then
    ENGINE=vllm
  fi
fi
GGUF_TYPE=${GGUF_TYPE:-f16}
BASE_LABEL=$(basename "$MODEL")
GGUF=""
if [[ $ENGINE == llama ]]; then
  GGUF=$("$SLMBENCH" gguf --model "$MODEL" --type "$GGUF_TYPE")
  BASE_LABEL="$BASE_LABEL@llama.cpp-$GGUF_TYPE"
fi
# "<backbone>+<zoo>": the page pairs a zoo's runs with the backbone's by this prefix.
ZOO_NAME=${ZOO_LABEL:-zoo}
ZOO_NAME=${ZOO_NAME#*+}
ZOO_RUN_LABEL="$BASE_LABEL+$ZOO_NAME"
CHAT=${CHAT:-auto}
if [[ $CHAT == auto ]]; then
  CHAT=$(${PYTHON:-$(dirname "$SLMBENCH")/python} - "$MODEL" <<'PY' 2>/dev/null || echo no
import sys
from transformers import AutoTokenizer
from harness.artefacts.embedded import is_embedded, resolve_pretrained
name = sys.argv[1]
tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(name) if is_embedded(name) else name)
print("yes" if getattr(tokenizer, "chat_template", None) else "no")
PY
)
fi
echo "study: profile $PROFILE, engine $ENGINE, model $MODEL, zoo $ZOO, chat template $CHAT," \
  "$JOBS job(s) at a time" >&2

budget_of() {  # category -> "examples seq" from BUDGETS, else the profile's defaults
  local item
  for item in $BUDGETS; do
    if [[ ${item%%:*} == "$1" ]]; then IFS=: read -r _ n seq <<<"$item"; echo "$n $seq"; return; fi
  done
  echo "$TRAIN_CAP $MAX_SEQ"
}

wait_for_slot() { while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || FAILED=1; done; }
wait_all() { while (( $(jobs -rp | wc -l) > 0 )); do wait -n || FAILED=1; done; }
FAILED=0

train_one() {
  local task=$1 n seq cap=() permute=()
  [[ $PERMUTE == no ]] && permute=(--no-permute-options)
  read -r n seq < <(budget_of "$task")
  [[ $n != 0 ]] && cap=(--max-train-examples "$n")
  mkdir -p "runs/study_logs"
  "$SLMBENCH" train "$task" --data-dir "$DATA_DIR" --base-model "$MODEL" --loss answer \
    --rank 16 --alpha 32 "${cap[@]}" --max-val-examples 100 --max-seq-len "$seq" \
    --epochs "$EPOCHS" --eval-every 25 --patience 3 --zoo "$ZOO" "${permute[@]}" \
    >"runs/study_logs/train_$task.log" 2>&1 \
    || { echo "study: training $task failed (runs/study_logs/train_$task.log)" >&2; return 1; }
  echo "study: trained $task" >&2
}

# One run per category, table and model, so every finished category is a complete row and
# an interrupted study resumes category by category. TABLES picks which are run:
#   pass1 (+ telemath), circular, cloze: the position-free view beside the plain one;
#   maj4, seen: Maj@4 and the adapters' own training questions (seen_from the zoo).
TABLES=${TABLES:-"pass1 circular cloze maj4 seen"}
CHOICE=" teleqna oranbench three_gpp_tsg sixg_bench srsranbench teletables "  # no telemath

table_tasks() {  # category table -> "tasks:limit", or nothing when it does not apply
  local c=$1
  case $2 in
    pass1) echo "$c:$EVAL_LIMIT" ;;
    circular) [[ $CHOICE == *" $c "* ]] && echo "${c}_circular:$CIRCULAR_LIMIT" ;;
    cloze) [[ $CHOICE == *" $c "* ]] && echo "${c}_cloze:$CLOZE_LIMIT" ;;
    maj4) [[ $CHOICE == *" $c "* ]] && echo "${c}_maj4:$MAJ_LIMIT" ;;
    seen) echo "${c}_seen:$SEEN_LIMIT" ;;
  esac
  return 0
}

eval_one() {  # which (backbone | zoo), "tasks:limit"
  local which=$1 tasks=${2%%:*} limit=${2##*:}
  local log="runs/study_logs/eval_${which}_${tasks//,/+}.log"
  local metadata="{\"data_dir\": \"$DATA_DIR\"}"
  [[ $tasks == *_seen* ]] && metadata="{\"data_dir\": \"$DATA_DIR\", \"seen_from\": \"$ZOO\"}"
  mkdir -p runs/study_logs
  local base_model=hf routed_model=hf-peft weights=$MODEL
  [[ $ENGINE == vllm ]] && base_model=vllm routed_model=vllm-peft
  [[ $ENGINE == llama ]] && base_model=llama-cpp routed_model=llama-cpp-peft weights=$GGUF
  if [[ $which == backbone ]]; then
    set -- --model "$base_model" --model_args "pretrained=$weights" --label "$BASE_LABEL"
  elif [[ $ENGINE == llama ]]; then
    set -- --model "$routed_model" --model_args "pretrained=$weights,adapters=$ZOO" \
      --label "$ZOO_RUN_LABEL"
  else
    set -- --model "$routed_model" --model_args "adapters=$ZOO" --label "$ZOO_RUN_LABEL"
  fi
  [[ $CHAT == yes ]] && set -- "$@" --apply_chat_template
  "$SLMBENCH" lm-eval "$@" --tasks "$tasks" --limit "$limit" --store "$STORE" \
    --batch_size "$BATCH" --device "$DEVICE" --metadata "$metadata" >"$log" 2>&1 \
    || { echo "study: eval $which $tasks failed ($log)" >&2; return 1; }
  echo "study: scored $which on $tasks" >&2
}

eval_category() {  # every table of one category, backbone and zoo
  local c=$1 table spec
  for table in $TABLES; do
    spec=$(table_tasks "$c" "$table")
    [[ -n $spec ]] || continue
    for which in backbone zoo; do wait_for_slot; eval_one "$which" "$spec" & done
  done
}

if [[ $STAGE == train || $STAGE == eval || $STAGE == all ]]; then
  if [[ $JOBS -gt 1 ]]; then
    # A GPU: train every category side by side, then score everything side by side.
    if [[ $STAGE != eval ]]; then
      for c in $CATEGORIES; do wait_for_slot; train_one "$c" & done
      wait_all
    fi
    if [[ $STAGE != train ]]; then
      for c in $CATEGORIES; do eval_category "$c"; done
      wait_all
    fi
  else
    # 2 cores: one category at a time, trained then scored, so each finished one is whole.
    for c in $CATEGORIES; do
      if [[ $STAGE != eval ]]; then train_one "$c" || FAILED=1; fi
      if [[ $STAGE != train ]]; then eval_category "$c"; wait_all; fi
    done
  fi
fi

if [[ $STAGE == render || $STAGE == eval || $STAGE == all ]]; then
  # Each adapter's test metrics come from the zoo runs, which the manifest names.
  mapfile -t zoo_runs < <(grep -l "\"label\": \"$ZOO_RUN_LABEL\"" "$STORE"/eval/*/run.json \
    | xargs -n1 dirname)
  "$SLMBENCH" zoo record "$ZOO" "${zoo_runs[@]}"
  "$SLMBENCH" leaderboard --runs "$STORE" --out "$OUT"
fi
exit "$FAILED"
