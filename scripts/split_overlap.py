"""Whether an adapter's gain comes from test questions that repeat what it trained on.

The splits are by row, so one source document (a 3GPP tdoc series, a spec table) can put
near-copies of a text on both sides. This script measures, for each test question of two
committed runs (adapter and backbone, same task), its largest overlap with the questions the
adapter actually trained on (the zoo entry's recorded draw), as the Jaccard similarity of
word 8-gram sets. Shingles present in over half the trained questions are dropped first: they
are the task's shared instruction, not content. It then prints both runs' accuracy and the
paired McNemar test on the questions with (almost) no overlap: a gain that survives there is
not recall of near-duplicates.

    python scripts/split_overlap.py three_gpp_tsg adapters_zoo/embedded_shuffled.yaml \
        leaderboards/study/runs/eval/c04e615f2ae14ec4 leaderboards/study/runs/eval/8ec21c7cf38201e6
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from harness.data.seen import seen_docs
from harness.data.source import load_splits
from harness.significance import mcnemar_exact

SHINGLE = 8
BINS = (0.1, 0.3, 0.5)


def shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i:i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}


def overlaps(trained: list[str], test: dict[str, str]) -> tuple[dict[str, float], int]:
    """Each test text's largest shingle Jaccard with a trained text; shingles dropped.

    Shingles in over half the trained texts are the task's template, not content.
    """
    sets = [shingles(t) for t in trained]
    common = Counter(s for doc in sets for s in doc)
    template = {s for s, n in common.items() if n > len(sets) / 2}
    sets = [doc - template for doc in sets]
    out = {}
    for key, text in test.items():
        mine = shingles(text) - template
        out[key] = max((len(mine & doc) / len(mine | doc) for doc in sets if doc | mine),
                       default=0.0)
    return out, len(template)


def samples(run: Path) -> dict[str, bool]:
    """Per question id, whether the run answered it right (its one task's samples)."""
    files = sorted((run / "samples").glob("*.jsonl"))
    if len(files) != 1:
        raise SystemExit(f"split_overlap: {run}/samples must hold one task's samples, "
                         f"found {[f.name for f in files]}")
    rows = [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]
    return {r["id"]: bool(r["correct"]) for r in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark")
    parser.add_argument("zoo", help="the manifest whose entry recorded the training draw")
    parser.add_argument("adapter_run", type=Path)
    parser.add_argument("backbone_run", type=Path)
    parser.add_argument("--split-seed", type=int, default=42)
    parser.add_argument("--data-dir", default="../shared/data")
    args = parser.parse_args()
    splits = load_splits(args.benchmark, args.data_dir, args.split_seed)
    trained = [r["question"] for r in
               seen_docs(args.benchmark, splits["train"], args.zoo, args.split_seed)]
    adapter, backbone = samples(args.adapter_run), samples(args.backbone_run)
    ids = [i for i in adapter if i in backbone]
    overlap, dropped = overlaps(trained, {r["id"]: r["question"] for r in splits["test"]
                                          if r["id"] in set(ids)})
    print(f"{args.benchmark}: {len(ids)} test questions scored by both runs; {len(trained)} "
          f"trained questions; {dropped} template shingles dropped")
    for cut in BINS:
        low = [i for i in ids if overlap[i] < cut]
        lost = sum(backbone[i] and not adapter[i] for i in low)
        gained = sum(adapter[i] and not backbone[i] for i in low)
        right = {name: sum(run[i] for i in low) / len(low)
                 for name, run in (("adapter", adapter), ("backbone", backbone))}
        print(f"  overlap < {cut}: n={len(low)}  adapter {right['adapter']:.3f}"
              f"  backbone {right['backbone']:.3f}"
              f"  (-{lost}/+{gained}, McNemar p={mcnemar_exact(lost, gained):.2g})")
    high = [i for i in ids if overlap[i] >= BINS[0]]
    print(f"  overlap >= {BINS[0]}: n={len(high)}  adapter right on {sum(adapter[i] for i in high)}"
          f", backbone on {sum(backbone[i] for i in high)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
