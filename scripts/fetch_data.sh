#!/usr/bin/env bash
# The real benchmark data at the upstream commits pinned in scripts/data_pins.tsv, each file
# checked against its sha256 there. CI fetches it so that the real-data tests run (under
# SLMBENCH_REQUIRE=data) and the adapter gate scores the same questions as its baselines.
#
#   bash scripts/fetch_data.sh DATA_DIR            download what is missing or differs, verify
#   bash scripts/fetch_data.sh --verify DATA_DIR   verify only (no network)
#
# Exit 0: every pinned file is in DATA_DIR with its pinned hash; 1: one line per file that is
# not. FETCH_DATA_BASE_URL replaces https://raw.githubusercontent.com (a mirror laid out as
# <base>/<owner>/<repo>/<commit>/<path>). TeleQnA ships as an AES-encrypted ZIP whose password
# its README publishes; 7z (p7zip-full) or python's pyzipper opens it.
set -euo pipefail
PINS="$(cd "$(dirname "$0")" && pwd)/data_pins.tsv"
BASE=${FETCH_DATA_BASE_URL:-https://raw.githubusercontent.com}
TELEQNA_PASSWORD=teleqnadataset

verify_only=0
if [[ ${1:-} == --verify ]]; then verify_only=1; shift; fi
dir=${1:?usage: fetch_data.sh [--verify] DATA_DIR}

pins() { grep -v '^#' "$PINS" | grep -v '^[[:space:]]*$'; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

unzip_member() {  # zip member out_dir
  if command -v 7z >/dev/null 2>&1; then
    7z x -y -p"$TELEQNA_PASSWORD" -o"$3" "$1" "$2" >/dev/null
  elif python3 -c "import pyzipper" 2>/dev/null; then
    python3 -c "import pyzipper, sys
z = pyzipper.AESZipFile(sys.argv[1]); z.setpassword(sys.argv[4].encode())
z.extract(sys.argv[2], sys.argv[3])" "$1" "$2" "$3" "$TELEQNA_PASSWORD"
  else
    echo "fetch_data: $1 is an AES-encrypted ZIP: install 7z (p7zip-full) or pyzipper" >&2
    return 1
  fi
}

fetch() {  # path repo commit upstream
  local path=$1 repo=$2 commit=$3 upstream=$4 work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  mkdir -p "$dir/$(dirname "$path")"
  if [[ $upstream == *:* ]]; then
    local zip=${upstream%%:*} member=${upstream#*:}
    curl -fsSL --retry 3 -o "$work/archive.zip" "$BASE/$repo/$commit/$zip"
    unzip_member "$work/archive.zip" "$member" "$work/out"
    mv "$work/out/$member" "$dir/$path"
  else
    curl -fsSL --retry 3 -o "$work/file" "$BASE/$repo/$commit/$upstream"
    mv "$work/file" "$dir/$path"
  fi
}

if [[ $verify_only == 0 ]]; then
  mkdir -p "$dir"
  while IFS=$'\t' read -r path sha repo commit upstream; do
    if [[ -f $dir/$path && $(sha_of "$dir/$path") == "$sha" ]]; then continue; fi
    echo "fetch_data: $path from $repo@${commit:0:7} ($upstream)"
    fetch "$path" "$repo" "$commit" "$upstream"
  done < <(pins)
fi

bad=0 total=0
while IFS=$'\t' read -r path sha repo commit upstream; do
  total=$((total + 1))
  if [[ ! -f $dir/$path ]]; then
    echo "fetch_data: $dir/$path is missing (pinned: $repo@${commit:0:7} $upstream)" >&2
    bad=$((bad + 1))
  elif [[ $(sha_of "$dir/$path") != "$sha" ]]; then
    echo "fetch_data: $dir/$path: sha256 $(sha_of "$dir/$path") is not the pinned $sha" \
         "($repo@${commit:0:7} $upstream)" >&2
    bad=$((bad + 1))
  fi
done < <(pins)
if [[ $bad -gt 0 ]]; then exit 1; fi
echo "fetch_data: all $total pinned files in $dir match their sha256"
