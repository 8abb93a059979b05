"""The statistics behind every comparison, checked against scipy and numpy on the same data.

The house keeps its own small implementations (exact integer McNemar, a multinomial
bootstrap, average-rank Spearman) for speed and for reading; these tests pin each one to the
reference library so a refactor cannot drift from it.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from harness.bench.stats import percentile
from harness.significance import mcnemar_exact, paired_bootstrap, paired_ci, spearman

stats = pytest.importorskip("scipy.stats")


def _paired(n: int, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    base = [float(rng.random() < 0.4) for _ in range(n)]
    cand = [b if rng.random() < 0.8 else float(rng.random() < 0.55) for b in base]
    return base, cand


@pytest.mark.parametrize("b,c", [(0, 0), (1, 0), (2, 10), (7, 19), (30, 0), (13, 14), (1, 40),
                                 (120, 95)])
def test_mcnemar_is_scipys_exact_binomial_test(b, c):
    want = 1.0 if b + c == 0 else stats.binomtest(min(b, c), b + c).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(want, rel=1e-9)


def test_paired_bootstrap_ci_matches_scipys_percentile_bootstrap():
    base, cand = _paired(400, seed=3)
    ours = paired_bootstrap(base, cand, n_resamples=20_000, seed=1)
    diffs = np.asarray(cand) - np.asarray(base)
    ref = stats.bootstrap((diffs,), np.mean, n_resamples=20_000, method="percentile",
                          random_state=np.random.default_rng(2)).confidence_interval
    assert ours["delta"] == pytest.approx(diffs.mean(), abs=1e-12)
    # Different random draws: the two Monte-Carlo intervals agree to a few thousandths.
    assert ours["ci_low"] == pytest.approx(ref.low, abs=0.006)
    assert ours["ci_high"] == pytest.approx(ref.high, abs=0.006)


def test_paired_ci_is_the_normal_interval_of_the_mean_difference():
    base, cand = _paired(300, seed=5)
    ours = paired_ci(base, cand)
    diffs = np.asarray(cand) - np.asarray(base)
    se = diffs.std(ddof=0) / np.sqrt(len(diffs))
    low, high = stats.norm.interval(0.95, loc=diffs.mean(), scale=se)
    assert (ours["ci_low"], ours["ci_high"]) == pytest.approx((low, high), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_is_scipys_with_ties(seed):
    rng = random.Random(seed)
    x = [rng.randint(1, 6) for _ in range(40)]
    y = [v + rng.randint(-2, 2) for v in x]
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)


def test_percentile_is_numpys_linear_percentile():
    values = [random.Random(7).lognormvariate(0, 1) for _ in range(101)]
    for q in (0, 5, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-12)

