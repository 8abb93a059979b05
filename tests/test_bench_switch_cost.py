"""A llama.cpp adapter switch is timed with the graph rebuild that the next token pays.

Setting another adapter returns in microseconds; llama.cpp does the work (rebuilding and
re-reserving its compute graph) at the next decode. A fake context on a fake clock makes that
split exact, so the test checks what is counted, not how fast anything runs.
"""

from __future__ import annotations

import pytest

from harness.bench import engines

CALL, TOKEN, REBUILD = 0.00001, 0.010, 0.006


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeContext:
    """A token takes TOKEN, and REBUILD more right after the adapter changed."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.stale = clock, True

    def reset(self) -> None:
        pass

    def eval(self, tokens: list[int]) -> None:
        self.clock.now += TOKEN + (REBUILD if self.stale else 0.0)
        self.stale = False

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return [1, 2]


@pytest.fixture
def engine(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(engines.time, "perf_counter", clock)
    llm = FakeContext(clock)
    switched: list[str] = []

    def fake_switch(context, handle):
        clock.now += CALL
        if not switched or switched[-1] != handle:
            context.stale = True
        switched.append(handle)

    monkeypatch.setattr("harness.models.llama_cpp_load.switch", fake_switch)
    engine = engines.LlamaCppLoraEngine("backbone.gguf", {"a": "a.gguf", "b": "b.gguf",
                                                          "c": "c.gguf"}, active="a")
    engine.llm, engine.handles = llm, {"a": "a", "b": "b", "c": "c"}
    engine.tokenize = lambda text: [7]
    return engine, switched


def test_each_switch_counts_the_call_and_the_next_tokens_rebuild(engine):
    engine, switched = engine
    times = engine.switch_seconds(4)
    assert times == pytest.approx([CALL + REBUILD] * 4)
    parts = engine.switch_parts
    assert parts["call_s"] == pytest.approx([CALL] * 4)
    assert parts["first_token_s"] == pytest.approx([TOKEN + REBUILD] * 4)
    assert parts["token_without_switch_s"] == pytest.approx([TOKEN] * 4)  # graph already built
    assert switched == ["b", "c", "a", "b", "a"]  # cycles off the active one, ends back on it
