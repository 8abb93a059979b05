#!/usr/bin/env bash
# WordNet 3.0 for METEOR's synonym stage, offline. NLTK downloads WordNet from GitHub, which
# these machines cannot reach; Debian's wordnet-base ships the same database files, but not
# the `lexnames` table NLTK's reader opens first. This copies the database and writes that
# table from the package's own lexnames(5WN) man page, then prints the folder to export:
#
#   apt-get install wordnet-base && export SLMBENCH_WORDNET=$(bash scripts/wordnet_from_debian.sh)
set -euo pipefail
SRC=${SRC:-/usr/share/wordnet}
MAN=${MAN:-/usr/share/man/man5/lexnames.5WN.gz}
OUT=${1:-${SLMBENCH_CACHE:-$HOME/.cache/slmbench}/wordnet}
[[ -f $SRC/data.noun && -f $MAN ]] || { echo "wordnet: $SRC/data.noun or $MAN missing (apt-get install wordnet-base)" >&2; exit 1; }
mkdir -p "$OUT"
# Copies, not links: NLTK refuses to read through a link to a folder outside its data path.
find "$SRC" -maxdepth 1 -type f -exec cp -p {} "$OUT/" \;
zcat "$MAN" | awk -F'\t' '/^[0-9][0-9]\t/ {
    name = $2; gsub(/ /, "", name); split(name, part, ".")
    category = part[1] == "noun" ? 1 : part[1] == "verb" ? 2 : part[1] == "adj" ? 3 : 4
    printf "%s\t%s\t%d\n", $1, name, category }' > "$OUT/lexnames.tmp"
lines=$(wc -l < "$OUT/lexnames.tmp")
[[ $lines -eq 45 ]] || { echo "wordnet: expected 45 lexicographer files in $MAN, found $lines" >&2; exit 1; }
mv "$OUT/lexnames.tmp" "$OUT/lexnames"
echo "$OUT"
