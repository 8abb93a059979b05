# Sourced by quickstart.sh and test.sh: a virtualenv with CPU torch and slmbench installed.
# CPU torch is pinned first (an unpinned torch pulls several GB of CUDA wheels).
# Usage: install_slmbench [EXTRAS]   (sets VENV)
install_slmbench() {
  VENV="${SLMBENCH_VENV:-.venv}"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".${1:+[$1]}"
}
