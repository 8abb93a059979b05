"""``llama-cpp``: the in-process GGUF model, checked against llama.cpp and transformers directly.

Everything runs on the embedded SmolLM2-135M GGUF with short prompts and one thread, so the
module stays within a couple of minutes on a busy 2-core machine.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from lm_eval.api.instance import Instance

from harness.artefacts.embedded import gguf_path
from harness.errors import SlmbenchError
from harness.models.llama_cpp_lm import LlamaCppLM

N_CTX = 256


def _req(kind: str, args: tuple) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=args, idx=0)


@pytest.fixture(scope="module")
def lm() -> LlamaCppLM:
    return LlamaCppLM(pretrained="embedded", n_ctx=str(N_CTX), n_threads="1", seed="7")


@pytest.fixture(scope="module")
def ref():
    """A second, independent llama.cpp instance: the reference for the scores."""
    from harness.models.llama_cpp_load import open_llama

    return open_llama(gguf_path(), n_ctx=N_CTX, isolate=False, n_threads=1, logits_all=True,
                      verbose=False)


def _direct_loglikelihood(ref, context: str, continuation: str) -> tuple[float, bool]:
    def encode(text: str) -> list[int]:
        return ref.tokenize(text.encode(), add_bos=False, special=True)

    ctx = encode(context)
    cont = encode(context + continuation)[len(ctx):]
    tokens = ctx + cont
    ref.reset()
    ref.eval(tokens[:-1])
    logits = np.array(ref.scores[len(ctx) - 1:len(tokens) - 1], dtype=np.float64)
    total, greedy = 0.0, True
    for row, target in zip(logits, cont, strict=True):
        norm = np.log(np.exp(row - row.max()).sum()) + row.max()
        total += row[target] - norm
        greedy &= int(row.argmax()) == target
    return total, greedy


def test_loglikelihood_matches_a_direct_llama_cpp_computation(lm, ref):
    pairs = [
        ("The capital of France is", " Paris"),
        ("The capital of France is", " Berlin, of course"),  # shares the prefix above
        ("Question: 2 + 2 = ?\nAnswer:", " 4"),
        ("The capital of France is", " Paris"),  # a repeat, served from the prefix cache
    ]
    got = lm.loglikelihood([_req("loglikelihood", p) for p in pairs], disable_tqdm=True)
    for pair, (logprob, greedy) in zip(pairs, got, strict=True):
        want, want_greedy = _direct_loglikelihood(ref, *pair)
        assert logprob == pytest.approx(want, abs=1e-4), pair
        assert greedy == want_greedy
    assert got[0] == got[3]
    assert got[0][0] > got[1][0]


def test_a_longer_earlier_request_is_never_taken_for_the_prefix(lm, ref):
    """Requests in the order scoring sorts them: the first leaves tokens past the second's
    end in llama-cpp-python's array, and the third matches the second and then those stale
    tokens. Each must score as a fresh llama.cpp evaluation does; the stale match read the
    first request's logits (or left a hole in the cache that llama_decode refused)."""
    p = [lm.prefix_token_id, 504, 3458, 314, 1695]
    requests = [(None, p + [260, 2451, 3123], [4567, 30]),  # inp: p + 260 2451 3123 4567
                (None, p + [315], [312]),  # inp: p + 315; 2451 3123 4567 stay past its end
                (None, p + [315, 2451, 3123], [701])]  # inp: p + 315 2451 3123
    got = lm._loglikelihood_tokens(requests, disable_tqdm=True)
    for (_, ctx, cont), (logprob, _) in zip(requests, got, strict=True):
        tokens = ctx + cont
        ref.reset()
        ref.eval(tokens[:-1])
        rows = np.array(ref.scores[len(ctx) - 1:len(tokens) - 1], dtype=np.float64)
        norm = np.log(np.exp(rows - rows.max(axis=1, keepdims=True)).sum(axis=1)) \
            + rows.max(axis=1)
        want = float((rows[np.arange(len(cont)), cont] - norm).sum())
        assert logprob == pytest.approx(want, abs=1e-4), cont


def test_is_greedy_on_the_argmax_token(lm, ref):
    context = ref.tokenize(b"One, two, three, four,", add_bos=False, special=True)
    ref.reset()
    ref.eval(context)
    row = np.array(ref.scores[len(context) - 1])
    best, other = int(row.argmax()), int(row.argmin())
    (lp_best, greedy_best), (lp_other, greedy_other) = lm._loglikelihood_tokens(
        [(None, context, [best]), (None, context, [other])], disable_tqdm=True
    )
    assert greedy_best and not greedy_other
    assert lp_best > lp_other and lp_best <= 0.0


def test_loglikelihood_rolling_sums_disjoint_windows(lm):
    text = "Radio access networks schedule resources every slot."
    (total,) = lm.loglikelihood_rolling([_req("loglikelihood_rolling", (text,))],
                                        disable_tqdm=True)
    # One window here: the whole text conditioned on the prefix token.
    tokens = lm.tok_encode(text)
    ((manual, _),) = lm._loglikelihood_tokens([(None, [lm.prefix_token_id], tokens)],
                                              disable_tqdm=True)
    assert total == pytest.approx(manual, abs=1e-9) and total < 0


def _gen(lm, context: str, **kwargs) -> str:
    (text,) = lm.generate_until([_req("generate_until", (context, kwargs))], disable_tqdm=True)
    return text


def test_greedy_generation_is_deterministic_stops_and_respects_max_gen_toks(lm):
    prompt = "The three largest cities in Germany are"
    long = _gen(lm, prompt, until=[], max_gen_toks=10, do_sample=False)
    _gen(lm, "Unrelated text in between.", until=[], max_gen_toks=2, do_sample=False)
    assert _gen(lm, prompt, until=[], max_gen_toks=10, do_sample=False) == long

    short = _gen(lm, prompt, until=[], max_gen_toks=3, do_sample=False)
    assert long.startswith(short) and len(lm.tok_encode(short)) <= 3 < len(lm.tok_encode(long))

    words = long.split()
    assert len(words) >= 3, long
    stop = words[2]  # a stop string that occurs in the middle of the greedy text
    stopped = _gen(lm, prompt, until=[stop], max_gen_toks=10, do_sample=False)
    assert stopped == long.split(stop)[0] and stop not in stopped


def test_a_batch_reusing_cached_prefixes_answers_as_prompts_one_by_one(lm, ref):
    """Sorting and the kept prefix are a speed-up only: each answer is a fresh evaluation's."""
    shared = "Question: which layer schedules radio resources?\nA. PHY\nB. MAC\nAnswer:"
    prompts = [shared, "The capital of France is", shared + " The answer is", shared]
    kwargs = {"until": [], "max_gen_toks": 6, "do_sample": False}
    alone = [_gen(lm, p, **kwargs) for p in prompts]  # each call starts from an empty cache
    batch = lm.generate_until([_req("generate_until", (p, kwargs)) for p in prompts],
                              disable_tqdm=True)
    assert batch == alone and batch[0] == batch[3]
    # Generation keeps last-position logits only: scoring afterwards must not reuse its cache.
    pair = (shared, " B")
    (got,) = lm.loglikelihood([_req("loglikelihood", pair)], disable_tqdm=True)
    assert got[0] == pytest.approx(_direct_loglikelihood(ref, *pair)[0], abs=1e-4)
    assert lm.llm._logits_all  # restored for scoring


def test_sampling_is_seeded_per_request(lm):
    import random

    reqs = [_req("generate_until", ("Once upon a time",
                                    {"until": [], "max_gen_toks": 4, "do_sample": True,
                                     "temperature": 1.0}))] * 3
    lm._rng = random.Random(lm.seed)
    first = lm.generate_until(reqs, disable_tqdm=True)
    lm._rng = random.Random(lm.seed)
    assert lm.generate_until(reqs, disable_tqdm=True) == first
    assert len(set(first)) > 1  # Maj@k needs k different samples of one prompt

    assert lm._sampling_args({"do_sample": False, "temperature": 0.7}) == {"temperature": 0.0}
    assert lm._sampling_args({"do_sample": True, "temperature": 0.0}) == {"temperature": 0.0}
    hf_like = lm._sampling_args({"do_sample": True, "top_p": 0.9})
    assert hf_like["temperature"] == 1.0 and hf_like["top_p"] == 0.9
    assert hf_like["top_k"] == 0 and hf_like["min_p"] == 0.0  # llama.cpp's filters off


def test_chat_template_and_tokens_match_transformers(lm):
    from transformers import AutoTokenizer

    from harness.artefacts.embedded import ensure_checkpoint

    tok = AutoTokenizer.from_pretrained(ensure_checkpoint())
    chat = [{"role": "user", "content": "Which 3GPP group owns the RRC protocol?"}]
    rendered = lm.apply_chat_template(chat, add_generation_prompt=True)
    assert rendered == tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert lm.tok_encode(rendered) == tok(rendered, add_special_tokens=False)["input_ids"]

    prefilled = [*chat, {"role": "assistant", "content": "The answer is"}]
    assert lm.apply_chat_template(prefilled, add_generation_prompt=False) == (
        tok.apply_chat_template(prefilled, tokenize=False, continue_final_message=True)
    )
    assert lm.chat_template(True) == tok.chat_template
    assert lm.chat_template(False) is None and lm.tokenizer_name


def test_missing_and_corrupt_gguf_are_one_line_errors(tmp_path):
    with pytest.raises(SlmbenchError, match="not found: .*absent.gguf"):
        LlamaCppLM(pretrained=str(tmp_path / "absent.gguf"))

    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"\x00\x13garbage" * 100)
    with pytest.raises(SlmbenchError, match="garbage.gguf") as err:
        LlamaCppLM(pretrained=str(garbage))
    assert "\n" not in str(err.value)

    # A real header with the body cut off passes the magic check; it is refused from its
    # metadata (tensors past the end of the file) before llama.cpp ever sees it.
    truncated = tmp_path / "truncated.gguf"
    with Path(gguf_path()).open("rb") as fh:
        truncated.write_bytes(fh.read(1_000_000))
    with pytest.raises(SlmbenchError, match="truncated.gguf (is not a readable GGUF|is trunc)") \
            as err:
        LlamaCppLM(pretrained=str(truncated))
    assert "\n" not in str(err.value)


def test_registered_under_llama_cpp_and_built_from_an_arg_string():
    from lm_eval.api.registry import get_model

    from harness.evaluation.run import register_components

    register_components()
    cls = get_model("llama-cpp")
    assert cls is LlamaCppLM
    built = cls.create_from_arg_string("pretrained=embedded,n_ctx=512,n_threads=1",
                                       {"batch_size": 8, "device": "cpu"})
    assert built.max_length == 512
    assert built.get_model_info()["flash_attn"] is False
    fused = cls.create_from_arg_string("pretrained=embedded,n_ctx=512,n_threads=1,"
                                       "flash_attn=true")
    assert fused.get_model_info()["flash_attn"] is True
    import llama_cpp

    assert fused.llm.context_params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
    assert built.llm.model_params.load_mode == llama_cpp.LLAMA_LOAD_MODE_MMAP
    assert built.get_model_info()["use_mmap"] is True
    read = cls.create_from_arg_string("pretrained=embedded,n_ctx=512,n_threads=1,use_mmap=false")
    assert read.llm.model_params.load_mode == llama_cpp.LLAMA_LOAD_MODE_NONE
    assert read.get_model_info()["use_mmap"] is False
    with pytest.raises(SlmbenchError, match=r"flash_attn='ture' is not a boolean"):
        cls.create_from_arg_string("pretrained=embedded,flash_attn=ture")
    with pytest.raises(SlmbenchError, match="n_ctxx"):
        cls.create_from_arg_string("n_ctxx=128")


def test_simple_evaluate_end_to_end_on_teleqna_mc(data_dir):
    """On the suite's data dir (conftest): the real TeleQnA where it is, a fixture elsewhere."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from harness.evaluation.run import register_components
    from harness.paths import tasks_dir

    register_components()
    big = LlamaCppLM(pretrained="embedded", n_ctx=1024, n_threads=1)
    manager = TaskManager(include_path=str(tasks_dir()), metadata={"data_dir": str(data_dir)})
    out = lm_eval.simple_evaluate(model=big, tasks=["teleqna_mc"], limit=5,
                                  apply_chat_template=True, task_manager=manager,
                                  log_samples=True, bootstrap_iters=0)
    acc = out["results"]["teleqna_mc"]["acc,none"]
    assert 0.0 <= acc <= 1.0
    samples = out["samples"]["teleqna_mc"]
    assert len(samples) == 5
    for sample in samples:
        assert sample["arguments"][0][0].startswith("<|im_start|>")  # the chat template ran
        scores = [resp[0][0] for resp in sample["resps"]]
        assert all(math.isfinite(s) and s < 0 for s in scores)
        assert len(set(scores)) > 1  # not the constant scores of a chance-level client
