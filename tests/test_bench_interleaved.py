"""The adapter's decode cost from token blocks interleaved in one request, on a fake llama.cpp.

A fake clock advances by what each evaluated token costs: more with the adapter on, and more
again for the first token after a switch (llama.cpp rebuilds its graph then), so the exact
ratio the measurement must return is known.
"""

from __future__ import annotations

import pytest

from harness.bench import engines
from harness.bench.engines import LlamaCppLoraEngine
from harness.bench.worker import _interleaved, adapter_decode_measures

PLAIN_S, ADAPTER_S, REBUILD_S = 0.010, 0.0004, 0.006


class FakeLlama:
    def __init__(self, clock: list[float]) -> None:
        self.clock, self.n_tokens, self.active = clock, 0, None
        self.rebuild, self.prompts, self.positions = False, 0, []

    def reset(self) -> None:
        self.n_tokens = 0

    def eval(self, tokens: list[int]) -> None:
        if len(tokens) > 1:
            self.prompts += 1
        for _ in tokens:
            self.positions.append(self.n_tokens)
            self.clock[0] += PLAIN_S + (ADAPTER_S if self.active else 0.0)
            if self.rebuild:
                self.clock[0] += REBUILD_S
                self.rebuild = False
            self.n_tokens += 1


@pytest.fixture
def engine(monkeypatch):
    clock = [0.0]
    llm = FakeLlama(clock)

    def activate(target, handle, scale=1.0):
        assert target is llm
        target.active, target.rebuild = handle, True

    monkeypatch.setattr(engines.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr("harness.models.llama_cpp_load.activate", activate)
    eng = LlamaCppLoraEngine("backbone.gguf", {"a": "a.gguf", "b": "b.gguf"}, "a")
    eng.llm, eng.handles, eng.n_ctx = llm, {"a": "handle-a", "b": "handle-b"}, 64
    monkeypatch.setattr(eng, "_last_logits", lambda: [0.0, 1.0])
    monkeypatch.setattr(eng, "tokenize", lambda prompt: list(range(10)))
    return eng


def test_each_block_times_its_tokens_after_the_switch_settled(engine):
    on, off = engine.interleaved_decode(list(range(10)), pairs=5, block_tokens=8,
                                        settle_tokens=2)
    assert on == pytest.approx([PLAIN_S + ADAPTER_S] * 5)
    assert off == pytest.approx([PLAIN_S] * 5)
    # counting a block's first token would add the rebuild to every block
    with_rebuild = engine.interleaved_decode(list(range(10)), 5, 8, 0)
    assert with_rebuild[1][0] == pytest.approx(PLAIN_S + REBUILD_S / 8)


def test_a_context_that_would_overflow_starts_a_new_request(engine):
    engine.interleaved_decode(list(range(10)), pairs=5, block_tokens=8, settle_tokens=2)
    llm = engine.llm
    # 10 prompt tokens, then 20 a pair: a 64-token context holds two pairs per request
    assert llm.prompts == 3 and max(llm.positions) == 49
    assert llm.active == "handle-a" and llm.n_tokens == 0  # left on the task's adapter


def test_the_ratio_is_on_tok_s_over_off_tok_s_with_its_interval(engine):
    record = _interleaved(engine, ["prompt"], {"interleaved_pairs": 6})
    expected = PLAIN_S / (PLAIN_S + ADAPTER_S)
    assert record["pairs"] == 6 and record["ratios"] == pytest.approx([expected] * 6)
    assert record["ratio_p50"] == pytest.approx(expected)
    assert record["ratio_ci95"] == pytest.approx([expected, expected])
    assert record["on_ms_per_token"]["p50"] == pytest.approx((PLAIN_S + ADAPTER_S) * 1e3)
    few = _interleaved(engine, ["prompt"], {"interleaved_pairs": 5})
    assert few["ratio_ci95"] is None  # five pairs cannot reach 95%


def test_a_measure_the_spec_turns_off_is_neither_timed_nor_recorded(engine):
    spec = {"gen_tokens": 4, "alternating_rounds": 6, "interleaved_pairs": 6}
    expected = PLAIN_S / (PLAIN_S + ADAPTER_S)
    both = adapter_decode_measures(engine, ["prompt"], spec)
    assert both["alternating_decode"]["rounds"] == 6
    assert both["alternating_decode"]["ratio_p50"] == pytest.approx(expected)
    assert both["interleaved_decode"]["pairs"] == 6
    requests = engine.llm.prompts
    no_blocks = adapter_decode_measures(engine, ["prompt"], {**spec, "interleaved_pairs": 0})
    assert list(no_blocks) == ["alternating_decode"]
    assert engine.llm.prompts == requests + 12  # the six alternating rounds, and no block
    one_token = {**spec, "gen_tokens": 1, "interleaved_pairs": 0}
    assert adapter_decode_measures(engine, ["prompt"], one_token) == {}
    assert engine.llm.prompts == requests + 12  # nothing timed at all
