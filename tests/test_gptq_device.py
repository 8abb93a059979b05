"""GPTQ quantizes on CUDA when torch sees a GPU, and its record says which device it used.

GPTQModel itself is not in the default environment; a stand-in records what it was asked.
"""

from __future__ import annotations

import json
import sys
import types

import pytest

from harness.quant import gptq


@pytest.fixture
def fake_gptqmodel(monkeypatch):
    calls = {}

    class Model:
        def quantize(self, texts, batch_size):
            calls["texts"] = list(texts)

        def save(self, folder):
            from pathlib import Path

            Path(folder).mkdir(parents=True)
            (Path(folder) / "model.safetensors").write_bytes(b"q")

    class GPTQModel:
        @staticmethod
        def load(source, config, device):
            calls["device"] = device
            return Model()

    module = types.ModuleType("gptqmodel")
    module.GPTQModel = GPTQModel
    module.QuantizeConfig = lambda bits, group_size: {"bits": bits, "group_size": group_size}
    monkeypatch.setitem(sys.modules, "gptqmodel", module)
    return calls


@pytest.mark.parametrize("cuda, device", [(True, "cuda:0"), (False, "cpu")])
def test_gptq_quantizes_on_the_gpu_when_there_is_one(fake_gptqmodel, tmp_path, monkeypatch,
                                                     cuda, device):
    monkeypatch.setattr("torch.cuda.is_available", lambda: cuda)
    target = tmp_path / "gptq"
    record = gptq.quantize_gptq(tmp_path / "source", target, ["a calibration text"],
                                group_size=32)
    assert fake_gptqmodel["device"] == device
    assert record["device"] == device
    assert json.loads((target / gptq.DONE_FILE).read_text())["device"] == device
