"""Repetition policy and summary statistics for timed runs.

Timings are repeated until *both* a minimum count and a minimum duration are reached: a fast
format then gets many samples (tight percentiles) and a slow one still gets at least N.
Percentiles use linear interpolation between order statistics (numpy's default), and the
spread is reported with them so a reader can judge noise.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    stdev: float
    p50: float
    p95: float
    min: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return self.__dict__.copy()


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(values: list[float]) -> Summary:
    return Summary(n=len(values), mean=statistics.fmean(values),
                   stdev=statistics.stdev(values) if len(values) > 1 else 0.0,
                   p50=percentile(values, 50), p95=percentile(values, 95),
                   min=min(values), max=max(values))


def repeat_until(run_once: Callable[[], float], min_runs: int, min_seconds: float,
                 max_runs: int = 10_000, clock: Callable[[], float] = time.perf_counter
                 ) -> list[float]:
    """Call ``run_once`` (returning one measurement) until min_runs AND min_seconds are met."""
    samples: list[float] = []
    start = clock()
    while len(samples) < max_runs and (len(samples) < min_runs or clock() - start < min_seconds):
        samples.append(run_once())
    return samples
