"""Paired significance tests for comparing two runs scored on the same questions.

Two runs of one task answer the same questions, so their scores are compared question by
question: pairing removes the between-question variance that dominates an unpaired test,
which is what lets a 200-question task tell a real regression from noise. The functions are
pure and dependency-light (``math`` plus numpy for resampling) so a reviewer can check them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts.

    ``b`` questions only the baseline got right, ``c`` only the candidate. Under "no
    difference" each discordant pair is a fair coin, so p = min(1, 2 * P(X <= min(b, c)))
    with X ~ Binomial(b + c, 1/2). Exact integer sums keep it right for small counts, where
    the chi-square approximation is not.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def median_ci(values: Sequence[float], confidence: float = 0.95
              ) -> tuple[float, float] | None:
    """Distribution-free interval for the median: the order statistics x_(k) and x_(n+1-k).

    Why not a t-interval on the mean: timings on a shared VM have heavy tails (a request the
    hypervisor preempted), which drag a mean and its standard error; this interval assumes only
    independent draws. k is the largest with 2 P(Binomial(n, 1/2) < k) <= 1 - confidence, so
    the coverage is at least ``confidence``. None where n is too small for any pair of order
    statistics to reach it (n < 6 at 95%).
    """
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie between 0 and 1")
    n = len(values)
    ordered = sorted(values)
    chosen, below = None, 0  # below: the number of outcomes with fewer than k draws under it
    for k in range(1, (n + 1) // 2 + 1):
        below += math.comb(n, k - 1)
        if 2 * below > (1 - confidence) * 2**n:
            break
        chosen = k
    return None if chosen is None else (ordered[chosen - 1], ordered[n - chosen])


def _differences(baseline: Sequence[float], candidate: Sequence[float]) -> list[float]:
    if len(baseline) != len(candidate):
        raise ValueError(f"paired data of unequal length ({len(baseline)} vs {len(candidate)})")
    if not baseline:
        raise ValueError("paired test of no data")
    return [float(c) - float(b) for b, c in zip(baseline, candidate, strict=True)]


def paired_bootstrap(baseline: Sequence[float], candidate: Sequence[float],
                     n_resamples: int = 10000, seed: int = 0,
                     confidence: float = 0.95) -> dict[str, float]:
    """Mean paired delta (candidate - baseline), percentile CI and bootstrap p-value.

    Questions are resampled with replacement, keeping each question's pair together. The CI
    is the (1-confidence)/2 and (1+confidence)/2 quantiles of the resampled mean deltas
    (linear interpolation). The two-sided p-value is

        p = min(1, 2 * min((#{delta* <= 0} + 1) / (R + 1), (#{delta* >= 0} + 1) / (R + 1)))

    over R resamples: the add-one keeps a finite resample count from claiming p = 0, so
    the smallest reportable p is 2 / (R + 1). Identical inputs give delta 0 and p = 1.
    Resampling the counts of each distinct difference (multinomial) is the same
    distribution as resampling indices, and fast for the few distinct values scores take.
    Deterministic for a given seed and numpy version.
    """
    import numpy as np

    diffs = _differences(baseline, candidate)
    n = len(diffs)
    values, counts = np.unique(np.asarray(diffs, dtype=float), return_counts=True)
    rng = np.random.Generator(np.random.PCG64(seed))
    chunk = max(1, min(n_resamples, 2_000_000 // max(1, len(values))))
    means = []
    for start in range(0, n_resamples, chunk):
        draws = rng.multinomial(n, counts / n, size=min(chunk, n_resamples - start))
        means.append(draws @ values / n)
    deltas = np.concatenate(means)
    low, high = np.quantile(deltas, [(1 - confidence) / 2, (1 + confidence) / 2])
    below = (int(np.sum(deltas <= 0)) + 1) / (n_resamples + 1)
    above = (int(np.sum(deltas >= 0)) + 1) / (n_resamples + 1)
    return {"delta": statistics.fmean(diffs), "ci_low": float(low), "ci_high": float(high),
            "p_value": min(1.0, 2 * min(below, above)), "n": n, "n_resamples": n_resamples}


def paired_ci(baseline: Sequence[float], candidate: Sequence[float],
              confidence: float = 0.95) -> dict[str, float]:
    """Delta and Wald (normal-approximation) CI of the paired difference of two proportions.

    With d_i = candidate_i - baseline_i, delta = mean(d) and se = pstdev(d) / sqrt(n); for
    0/1 scores this is the classical McNemar-pair interval
    (c - b)/n +- z * sqrt(b + c - (c - b)^2 / n) / n. It pairs with the exact McNemar p:
    the p-value decides, the CI shows the size; it is too narrow when b + c is tiny.
    """
    diffs = _differences(baseline, candidate)
    n = len(diffs)
    delta = statistics.fmean(diffs)
    se = statistics.pstdev(diffs, mu=delta) / math.sqrt(n)
    z = statistics.NormalDist().inv_cdf((1 + confidence) / 2)
    return {"delta": delta, "ci_low": delta - z * se, "ci_high": delta + z * se, "se": se,
            "n": n}


def compare_paired(baseline: Sequence[float], candidate: Sequence[float],
                   n_resamples: int = 10000, seed: int = 0) -> dict[str, Any]:
    """The paired comparison every gate and page uses, on scores already paired.

    0/1 scores: the exact McNemar p on the discordant questions (no resampling noise) with
    :func:`paired_ci`'s interval and the questions lost and gained; other scores: the paired
    bootstrap. Keys: delta, ci_low, ci_high, p_value, n, test, and lost/gained (None when
    the scores are not 0/1).
    """
    if all(s in (0.0, 1.0) for s in (*baseline, *candidate)):
        lost = sum(1 for b, c in zip(baseline, candidate, strict=True) if b > c)
        gained = sum(1 for b, c in zip(baseline, candidate, strict=True) if c > b)
        stats: dict[str, Any] = paired_ci(baseline, candidate)
        stats.update(p_value=mcnemar_exact(lost, gained), test="mcnemar-exact", lost=lost,
                     gained=gained)
        return stats
    stats = paired_bootstrap(baseline, candidate, n_resamples=n_resamples, seed=seed)
    stats.update(test="paired-bootstrap", lost=None, gained=None)
    return stats


def pair_by_id(baseline: Mapping[str, float], candidate: Mapping[str, float]
               ) -> tuple[list[float], list[float]]:
    """Both runs' scores on the questions both answered, in one (sorted id) order."""
    ids = sorted(baseline.keys() & candidate.keys())
    return [float(baseline[i]) for i in ids], [float(candidate[i]) for i in ids]


def _average_ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1  # tied values share their mean rank
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation with average ranks for ties (Pearson on the ranks).

    NaN when fewer than two points or either side is constant: no ranking to agree with.
    """
    if len(x) != len(y):
        raise ValueError(f"spearman of unequal lengths ({len(x)} vs {len(y)})")
    if len(x) < 2:
        return math.nan
    rx, ry = _average_ranks(x), _average_ranks(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return math.nan
    return sxy / math.sqrt(sxx * syy)
