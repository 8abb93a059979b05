"""Benchmark (prints numbers): adapter switch time and routed vs merged throughput.

Run: ``pytest -m benchmark -s tests/test_bench_routing.py``. Uses the committed zoo of the
embedded model and real TeleQnA / ORANBench prompts; skipped when either is absent.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch
from conftest import shared_data_or_skip
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from harness.paths import REPO_ROOT

pytestmark = pytest.mark.benchmark
ZOO = REPO_ROOT / "adapters_zoo" / "embedded.yaml"
PER_TASK = 48


def _requests(lm, data_dir) -> list[Instance]:
    from harness.task_loader import load_task, task_manager

    manager = task_manager(data_dir)
    out = []
    for task_name in ("teleqna", "oranbench"):
        task = load_task(manager, task_name)
        for i, doc in enumerate(list(task.test_docs())[:PER_TASK]):
            prompt = lm.apply_chat_template([{"role": "user", "content": task.doc_to_text(doc)}])
            out.append(Instance("loglikelihood", doc, (prompt, task.doc_to_target(doc)), i,
                                (task_name, i, 1)))
    return out


def test_switch_time_and_routed_vs_merged_throughput():
    data_dir = shared_data_or_skip()
    if not ZOO.is_file():
        pytest.skip("no committed zoo")
    from harness.models.peft_router import RoutedPeftLM

    torch.manual_seed(0)
    start = time.perf_counter()
    routed = RoutedPeftLM(adapters=str(ZOO), device="cpu", batch_size=8)
    load_s = time.perf_counter() - start
    names = [a.name for a in routed.manifest.adapters]
    switches = []
    for i in range(400):
        t0 = time.perf_counter()
        routed._model.set_adapter(names[i % len(names)], inference_mode=True)
        switches.append(time.perf_counter() - t0)
    requests = _requests(routed, data_dir)

    t0 = time.perf_counter()
    routed_out = routed.loglikelihood(requests, disable_tqdm=True)
    routed_s = time.perf_counter() - t0

    merged_s, merged_out = 0.0, []
    for name in names:
        serving = [r for r in requests if routed.adapter_for(r.task_name) == name]
        if not serving:
            continue
        merged = HFLM(pretrained=_merged_copy(routed, name), tokenizer=routed.tokenizer,
                      device="cpu", batch_size=8)
        t0 = time.perf_counter()
        merged_out += merged.loglikelihood(serving, disable_tqdm=True)
        merged_s += time.perf_counter() - t0
    n = len(requests)
    print(f"\nadapters loaded over one backbone: {len(names)} in {load_s:.2f} s")
    print(f"set_adapter switch: median {statistics.median(switches) * 1e6:.1f} us, "
          f"max {max(switches) * 1e6:.1f} us over {len(switches)} switches")
    print(f"routed hf-peft loglikelihood: {n} requests in {routed_s:.2f} s "
          f"({n / routed_s:.2f} req/s)")
    print(f"merged hf per adapter:        {n} requests in {merged_s:.2f} s "
          f"({n / merged_s:.2f} req/s); routed/merged time {routed_s / merged_s:.2f}x")
    # merged_out is in adapter order; pair it with the routed results in that same order
    served = [i for name in names for i, r in enumerate(requests)
              if routed.adapter_for(r.task_name) == name]
    diffs = [abs(routed_out[i][0] - m[0]) for i, m in zip(served, merged_out, strict=True)]
    print(f"max |loglikelihood routed - merged| = {max(diffs):.2e}")
    assert max(diffs) < 1e-2


def _merged_copy(routed, name: str):
    """A plain model with adapter ``name`` merged in, leaving the routed model untouched."""
    import copy

    clone = copy.deepcopy(routed._model)
    clone.set_adapter(name)
    return clone.merge_and_unload(adapter_names=[name])
