#!/usr/bin/env bash
# Evaluate one adapter-zoo manifest on exactly the baseline's tasks, limit and questions, then
# gate it with `slmbench regress`. Exit 0: no task regressed; 1: a task regressed; 2: refused.
#
#   bash scripts/adapter_gate.sh adapters_zoo/embedded.yaml baselines/embedded.json [summary.md]
#
# GATE_TOLERANCE (default 0.02) and GATE_ALPHA (default 0.05) set the gate; SLMBENCH_DATA_DIR
# points at local data (else the Hub). Runs are kept under GATE_STORE (default runs/gate), so
# re-running on an unchanged adapter reuses its evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=${1:?usage: adapter_gate.sh MANIFEST BASELINE_JSON [SUMMARY_MD]}
baseline=${2:?usage: adapter_gate.sh MANIFEST BASELINE_JSON [SUMMARY_MD]}
summary=${3:-runs/gate/summary.md}
store=${GATE_STORE:-runs/gate}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}

# Tasks, limit and chat-template setting of the baseline run, so the questions are the same.
meta=$("$PY" - "$baseline" <<'PYEOF'
import json, sys
data = json.load(open(sys.argv[1]))
config = data.get("config")
if not isinstance(config, dict) or not data.get("tasks"):
    sys.exit(f"adapter_gate: {sys.argv[1]}: no run config or tasks in the baseline "
             "(export it again with `slmbench regress --export RUN --out FILE`)")
print(",".join(sorted(data["tasks"])), config.get("limit") or 0,
      int(bool(config.get("apply_chat_template"))))
PYEOF
) || exit 2
read -r tasks limit chat <<< "$meta"
args=(--tasks "$tasks" --model hf-peft --model_args "adapters=$manifest" --batch_size 8
      --store "$store" --label "candidate:$(basename "$manifest" .yaml)")
[ "$limit" != "0" ] && args+=(--limit "$limit")
[ "$chat" = "0" ] && args+=(--no_chat_template)
log=$(mktemp)
"$PY" -m harness.cli lm-eval "${args[@]}" 2>&1 | tee "$log"
run=$(sed -n 's/^slmbench: run folder \([^ ]*\).*/\1/p' "$log" | tail -1)
rm -f "$log"
[ -n "$run" ] || { echo "adapter_gate: could not find the recorded run" >&2; exit 2; }
exec "$PY" -m harness.cli regress --baseline "$baseline" --candidate "$run" \
    --tolerance "${GATE_TOLERANCE:-0.02}" --alpha "${GATE_ALPHA:-0.05}" --summary "$summary"
