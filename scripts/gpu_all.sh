#!/usr/bin/env bash
# Every GPU path in one go on one CUDA GPU, in under 10 minutes (issue 13): the GPU column of
# the product filled the next time a GPU is lent.
#
#   PY=/path/to/python bash scripts/gpu_all.sh [OUT_DIR]
#
# PY is a python with CUDA torch and slmbench[test,gpu] installed (vLLM and GPTQModel may
# also live in their own environments: VLLM_PY, GPTQ_PY). What runs, each under its own
# time limit so one hang cannot eat the others' time:
#   1. pytest -m gpu                  QLoRA (bitsandbytes NF4) training, NVML energy   2 min
#   2. the bench's gptq and vllm rows on a tiny model, on CUDA kernels               3 min
#   3. slmbench bench on the embedded model: bf16, fp16, gptq (GPTQModel CUDA kernel) and
#      vllm (CUDA), each timed, energy from NVML, accuracy on 100 TeleQnA questions  4 min
# Logs and the bench table land in OUT_DIR (default runs/gpu); the exit code is the first
# failure's, after everything has run.
#
# Nothing here passes by skipping: SLMBENCH_REQUIRE (default gpu,vllm,gptq,data) turns the
# tests' skips for a missing GPU, vLLM, GPTQModel or real data into failures, and the bench
# exits non-zero when a requested format produced no result. Without CUDA the script stops at
# once, non-zero, saying so.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu}
PY=${PY:-python3}
VLLM_PY=${VLLM_PY:-$PY}
GPTQ_PY=${GPTQ_PY:-$PY}
DATA_DIR=${DATA_DIR:-../shared/data}
export SLMBENCH_REQUIRE=${SLMBENCH_REQUIRE:-gpu,vllm,gptq,data}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 SLMBENCH_DATA_DIR=$DATA_DIR
mkdir -p "$OUT"
"$PY" - <<'PYEOF' || exit 2
import sys

try:
    import torch
except ImportError as err:
    sys.exit(f"gpu_all: {sys.executable} cannot import torch ({err}); set PY to a python with "
             "CUDA torch and slmbench[test,gpu]")
if not torch.cuda.is_available():
    built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    sys.exit(f"gpu_all: no CUDA GPU visible to {sys.executable} (torch {torch.__version__}, "
             f"{built}): no GPU path can run here, so nothing was run")
print("gpu:", torch.cuda.get_device_name(0), "torch", torch.__version__)
PYEOF
if [[ ,$SLMBENCH_REQUIRE, == *,data,* && ! -f $DATA_DIR/teleqna/TeleQnA.txt ]]; then
  echo "gpu_all: no real data in $DATA_DIR (TeleQnA.txt missing; SLMBENCH_REQUIRE has data):" \
       "set DATA_DIR, or fetch it with scripts/fetch_data.sh" >&2
  exit 2
fi

status=0
step() {  # name seconds command...
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - start)) s (log $OUT/$name.log)"
  tail -3 "$OUT/$name.log"
  [[ $status -eq 0 && $rc -ne 0 ]] && status=$rc
}

step gpu_tests 120 "$PY" -m pytest -m gpu -s -p no:cacheprovider tests/test_gpu_qlora.py \
  tests/test_gpu_energy.py tests/test_bandwidth.py
step gptq_tiny 90 "$GPTQ_PY" -m pytest -s -p no:cacheprovider \
  tests/test_bench_separate_engines.py -k gptq
step vllm_tiny 90 "$VLLM_PY" -m pytest -s -p no:cacheprovider \
  tests/test_bench_separate_engines.py -k vllm
step bench 240 "$PY" -m harness.cli bench --formats bf16,fp16,gptq,vllm --task teleqna \
  --limit 100 --data-dir "$DATA_DIR" --min-runs 10 --min-seconds 5 \
  --gptq-python "$GPTQ_PY" --vllm-python "$VLLM_PY" --output-dir "$OUT/bench"
exit $status
