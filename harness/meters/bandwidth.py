"""Measured memory read bandwidth: the physical bound for decode throughput.

Decoding one token reads (about) every weight once, so tokens/s can never exceed
bandwidth / bytes-per-token; the ratio of the two is the utilisation the bench reports.
"""

from __future__ import annotations

import time


def read_bandwidth_gbs(megabytes: int = 512, repeats: int = 5, threads: int | None = None
                       ) -> float:
    """Best of ``repeats`` multi-threaded sums over a buffer much larger than the caches."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    buffer = torch.ones(megabytes * 2**20 // 4, dtype=torch.float32)
    buffer.sum()  # fault the pages in before timing
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        buffer.sum()
        elapsed = time.perf_counter() - start
        best = max(best, buffer.numel() * 4 / elapsed / 1e9)
    return best


def bandwidth_utilisation(bytes_per_token: float, tokens_per_s: float,
                          bandwidth_gbs: float) -> float:
    return bytes_per_token * tokens_per_s / (bandwidth_gbs * 1e9)
