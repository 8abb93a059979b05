# Sourced by quickstart.sh and test.sh: a virtualenv with CPU torch and slmbench installed,
# at exactly the versions of constraints.txt (the lock the test suite passed on).
# CPU torch is pinned first (an unpinned torch pulls several GB of CUDA wheels).
# Usage: install_slmbench [EXTRAS]   (sets VENV)
#   SLMBENCH_VENV=DIR       the virtualenv (default .venv)
#   SLMBENCH_UNLOCKED=1     newest versions instead of the lock (the drift check, tox -e latest)
install_slmbench() {
  VENV="${SLMBENCH_VENV:-.venv}"
  local lock=(-c constraints.txt)
  [ "${SLMBENCH_UNLOCKED:-0}" = "1" ] && lock=()
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "${lock[@]}" --upgrade pip setuptools
  "$VENV/bin/python" -m pip install -q "${lock[@]}" "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q "${lock[@]}" -e ".${1:+[$1]}"
}
