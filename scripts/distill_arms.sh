#!/usr/bin/env bash
# The distillation study's four arms on one task (issue 14): should the teacher, the student or
# both be fine-tuned (SFT) before distillation? Teacher: the embedded SmolLM2-135M. Student: the
# same model pruned to $STUDENT_LAYERS of its 30 decoder layers (same vocabulary; initialised
# from the teacher's own weights). Task: TeleQnA as free-form QA (answer text + explanation),
# trained and scored on teleqna_freeform with every free-form metric.
#
#   bash scripts/distill_arms.sh            # SFT, distil, score (each step resumes), render
#   bash scripts/distill_arms.sh render     # publish + render only
#
# Arms (eval labels distill:<arm>): no_sft, sft_teacher, sft_student, sft_both; plus reference
# rows distill:student_before (the pruned student, no KD) and distill:teacher(_sft).
# Every step writes to $WORK and resumes; eval runs are copied to $STORE and the page
# leaderboards/distill/distill.md compares the arms with paired tests against no_sft.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-../shared/data}
PY=${PY:-.venv/bin}
BENCH=teleqna
TRAIN=${TRAIN:-400}          # train examples (seeded draw), for SFT and distillation alike
STEPS=${STEPS:-50}           # optimizer steps per training run (batch 8)
VAL=${VAL:-50}               # validation examples (early stopping, KL to the teacher)
EVAL_EVERY=${EVAL_EVERY:-25}
EVAL_LIMIT=${EVAL_LIMIT:-100}
STUDENT_LAYERS=${STUDENT_LAYERS:-15}
KD=(--kd-loss "${KD_LOSS:-forward}" --kd-weight "${KD_WEIGHT:-0.5}" --temperature "${KD_T:-2.0}")
WORK=${WORK:-runs/distill_arms}
STORE=${STORE:-leaderboards/distill/runs}
OUT=${OUT:-leaderboards/distill}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 SLMBENCH_RUNS=${SLMBENCH_RUNS:-runs}
budget=(--answer-format freeform --loss answer --max-train-examples "$TRAIN" --max-steps "$STEPS"
        --max-val-examples "$VAL" --eval-every "$EVAL_EVERY" --patience 3 --data-dir "$DATA_DIR")

label_done() {  # label -> 0 when an eval run with that label is in the store
  grep -rqs "\"label\": \"$1\"" "$STORE"/eval/*/run.json
}

score() {  # label pretrained [peft] -> an eval run in $SLMBENCH_RUNS, copied to $STORE
  local label=$1 pretrained=$2 peft=${3:-} args
  if label_done "$label"; then echo "$label: scored earlier, skipped"; return; fi
  args="pretrained=$pretrained${peft:+,peft=$peft}"
  folder=$("$PY/slmbench" lm-eval --model hf --model_args "$args" --tasks teleqna_freeform \
    --limit "$EVAL_LIMIT" --batch_size 8 --label "$label" --metadata "data_dir=$DATA_DIR" \
    2>&1 | tee -a /dev/stderr | sed -n 's/^slmbench: run folder \([^ ]*\).*/\1/p' | tail -1)
  mkdir -p "$STORE/eval"
  cp -r "$folder" "$STORE/eval/"
}

if [[ ${1:-all} != render ]]; then
  student=$("$PY/python" -c "
from harness.artefacts.embedded import resolve_pretrained
from harness.paths import cache_dir
from harness.train.student import build_pruned_student
src = resolve_pretrained('embedded')
print(build_pruned_student(src, cache_dir() / 'students' / 'embedded-${STUDENT_LAYERS}layers',
                           $STUDENT_LAYERS))")
  # SFT of each model on the task (the study's "fine-tuned before distillation").
  "$PY/slmbench" train "$BENCH" "${budget[@]}" --output-dir "$WORK/sft/teacher"
  "$PY/slmbench" train "$BENCH" "${budget[@]}" --base-model "$student" \
    --output-dir "$WORK/sft/student"
  sft_student=$("$PY/python" -c "
from harness.train.student import fold_student_adapter
print(fold_student_adapter('$student', '$WORK/sft/student/adapter'))")
  # The four arms: same data, steps and KD settings; only the SFT of each side differs.
  for arm in no_sft sft_teacher sft_student sft_both; do
    extra=()
    [[ $arm == sft_teacher || $arm == sft_both ]] && extra+=(--teacher-adapter "$WORK/sft/teacher/adapter")
    base=$student
    [[ $arm == sft_student || $arm == sft_both ]] && base=$sft_student
    "$PY/slmbench" distill "$BENCH" "${budget[@]}" "${KD[@]}" --base-model "$base" \
      --teacher embedded "${extra[@]}" --name "kd_$arm" --output-dir "$WORK/arms/$arm"
  done
  for arm in no_sft sft_teacher sft_student sft_both; do
    base=$student
    [[ $arm == sft_student || $arm == sft_both ]] && base=$sft_student
    score "distill:$arm" "$base" "$WORK/arms/$arm/adapter"
  done
  score distill:student_before "$student"
  score distill:teacher embedded
  score distill:teacher_sft embedded "$WORK/sft/teacher/adapter"
  # Training records (curves, KL to the teacher, wall times) beside the eval runs.
  for run in sft/teacher sft/student arms/no_sft arms/sft_teacher arms/sft_student arms/sft_both
  do
    mkdir -p "$OUT/train/$run"
    cp "$WORK/$run/train_record.json" "$OUT/train/$run/"
  done
fi

"$PY/slmbench" leaderboard --runs "$STORE" --out "$OUT"
