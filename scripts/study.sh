#!/usr/bin/env bash
# The reference study on every category with data here (issue 12): one adapter per category
# with the study's recipe, then the category tables from the run store.
#
#   bash scripts/study.sh train     # train + publish the missing category adapters
#   bash scripts/study.sh eval      # telecom_all + TeleMath, base vs zoo: unseen, seen, Maj@4
#   bash scripts/study.sh render    # zoo metrics and leaderboards/study/ from the stored runs
#   bash scripts/study.sh           # both
#
# Budgets are CPU budgets (2 cores): a seeded subset of each train split, sequences cut to
# MAX_SEQ_LEN tokens from the left (the answer is always kept). Re-running resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-../shared/data}
ZOO=${ZOO:-adapters_zoo/embedded.yaml}
PY=${PY:-.venv/bin}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
STAGE=${1:-all}

# category:train examples:max tokens per example. 3GPP-TSG's excerpts run to ~2,000 tokens;
# 256 keeps the end of each excerpt (cut from the left) and fits the 2-core budget.
BUDGETS=${BUDGETS:-"three_gpp_tsg:400:256 sixg_bench:200:512 srsranbench:400:512 teletables:300:512 telemath:300:512"}
EVAL_LIMIT=${EVAL_LIMIT:-100}
SEEN_LIMIT=${SEEN_LIMIT:-50}
MAJ_LIMIT=${MAJ_LIMIT:-50}
BATCH=${BATCH:-8}

if [[ $STAGE == train || $STAGE == all ]]; then
  for item in $BUDGETS; do
    IFS=: read -r task n seq <<<"$item"
    "$PY/slmbench" train "$task" --data-dir "$DATA_DIR" --loss answer --rank 16 --alpha 32 \
      --max-train-examples "$n" --max-val-examples 100 --max-seq-len "$seq" \
      --eval-every 25 --patience 3 --zoo "$ZOO"
  done
fi

STORE=${STORE:-leaderboards/study/runs}
if [[ $STAGE == eval || $STAGE == all ]]; then
  # One run per table and model; seen questions are the zoo's training draws (seen_from).
  for spec in "telecom_all,telemath:$EVAL_LIMIT" "telecom_all_seen,telemath_seen:$SEEN_LIMIT" \
              "telecom_all_maj4:$MAJ_LIMIT"; do
    tasks=${spec%%:*} limit=${spec##*:}
    common=(--tasks "$tasks" --limit "$limit" --store "$STORE" --batch_size "$BATCH"
            --metadata "{\"data_dir\": \"$DATA_DIR\", \"seen_from\": \"$ZOO\"}")
    "$PY/slmbench" lm-eval --model hf --model_args pretrained=embedded --label embedded \
      "${common[@]}"
    "$PY/slmbench" lm-eval --model hf-peft --model_args "adapters=$ZOO" --label embedded+zoo \
      "${common[@]}"
  done
fi

if [[ $STAGE == render || $STAGE == eval || $STAGE == all ]]; then
  # Each adapter's test metrics come from the zoo runs, which the manifest names.
  mapfile -t zoo_runs < <(grep -l '"label": "embedded+zoo"' "$STORE"/eval/*/run.json | xargs -n1 dirname)
  "$PY/slmbench" zoo record "$ZOO" "${zoo_runs[@]}"
  "$PY/slmbench" leaderboard --runs "$STORE" --out leaderboards/study
fi
