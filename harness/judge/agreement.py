"""Inter-judge agreement on the same items: Cohen's kappa, quadratic-weighted kappa, Spearman.

With categories k, observed joint shares O and chance shares E (outer product of the two
judges' marginals), kappa = 1 - sum(w * O) / sum(w * E). Unweighted kappa has w = 0 on the
diagonal and 1 elsewhere (1-10 scores are rounded to integers first); the quadratic-weighted
kappa uses w = (i - j)^2 on the score values, so a 7 against an 8 costs far less than a 2
against a 9. When chance disagreement is zero (both judges give one and the same label
throughout) kappa is taken as 1.0; no items give NaN. Spearman is
``harness.significance.spearman`` on the raw overall scores.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

from harness.significance import spearman


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable],
                weights: str | None = None) -> float:
    """Cohen's kappa of two raters' labels; ``weights="quadratic"`` for numeric ordinal labels."""
    if len(a) != len(b):
        raise ValueError(f"kappa of unequal lengths ({len(a)} vs {len(b)})")
    if not a:
        return math.nan
    if weights not in (None, "quadratic"):
        raise ValueError(f"unknown kappa weights {weights!r}")
    n = len(a)
    labels = sorted(set(a) | set(b), key=lambda x: (str(type(x)), x))

    def w(x: Hashable, y: Hashable) -> float:
        if weights == "quadratic":
            return (float(x) - float(y)) ** 2
        return 0.0 if x == y else 1.0

    observed = sum(w(x, y) for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(w(x, y) * ca[x] * cb[y] for x in labels for y in labels) / (n * n)
    if expected == 0:  # both raters constant on one label: they agree, chance cannot differ
        return 1.0
    return 1.0 - observed / expected


def agreement_rate(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Share of items on which both judges gave the same label."""
    if len(a) != len(b):
        raise ValueError(f"agreement of unequal lengths ({len(a)} vs {len(b)})")
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a) if a else math.nan


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


def score_agreement(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Two judges' overall 1-10 scores on the same items."""
    ra, rb = [round(x) for x in a], [round(x) for x in b]
    return {"n": len(a), "cohen_kappa": _finite(cohen_kappa(ra, rb)),
            "weighted_kappa": _finite(cohen_kappa(ra, rb, weights="quadratic")),
            "spearman": _finite(spearman(list(a), list(b))) if len(a) else None,
            "agreement_rate": _finite(agreement_rate(ra, rb))}


def label_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> dict[str, Any]:
    """Two judges' categorical verdicts (pairwise winners) on the same items."""
    return {"n": len(a), "cohen_kappa": _finite(cohen_kappa(a, b)),
            "agreement_rate": _finite(agreement_rate(a, b))}


def judges_agreement(values: dict[str, dict[str, Any]], categorical: bool = False
                     ) -> list[dict[str, Any]]:
    """Per pair of judges: agreement on the items both judged.

    ``values`` maps judge name -> item key -> overall score (or winner label).
    """
    rows = []
    for first, second in itertools.combinations(sorted(values), 2):
        shared = sorted(set(values[first]) & set(values[second]))
        a = [values[first][k] for k in shared]
        b = [values[second][k] for k in shared]
        stats = label_agreement(a, b) if categorical else score_agreement(a, b)
        rows.append({"judges": [first, second], **stats})
    return rows
