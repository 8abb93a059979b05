"""Opening GGUFs with llama.cpp: context capped at the trained one, crashes kept out of process.

The first failure on a fresh machine (issue 11) was a bench worker asking llama.cpp for
n_ctx=2048 on a model trained with 512, and a native crash that took pytest down with it.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from tiny_models import build_tiny_base

from harness.child import failure_reason
from harness.errors import SlmbenchError

llama_cpp = pytest.importorskip("llama_cpp")

from harness.models import llama_cpp_load  # noqa: E402 - after the importorskip


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    """A 2-layer Llama exported to GGUF, trained context 512 (max_position_embeddings)."""
    from harness.quant.gguf_export import export_gguf

    root = tmp_path_factory.mktemp("tiny_gguf")
    base, config = build_tiny_base(root / "base", hidden_size=64)
    assert config.max_position_embeddings == 512
    return export_gguf(base, root / "tiny.f32.gguf", dtype="f32")


@pytest.fixture(autouse=True)
def _private_probe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))


def test_trained_context_comes_from_the_gguf(tiny_gguf):
    from harness.artefacts.embedded import gguf_path

    assert llama_cpp_load.trained_context(tiny_gguf) == 512
    assert llama_cpp_load.trained_context(gguf_path()) == 8192  # SmolLM2-135M


def test_context_is_capped_at_the_trained_one_and_said(tiny_gguf, caplog):
    with caplog.at_level(logging.WARNING):
        assert llama_cpp_load.capped_n_ctx(tiny_gguf, 2048) == 512
    assert "n_ctx=2048 is more than tiny.f32.gguf was trained with (512)" in caplog.text
    assert llama_cpp_load.capped_n_ctx(tiny_gguf, 256) == 256
    assert llama_cpp_load.capped_n_ctx(tiny_gguf, 0) == 512


def test_lm_eval_model_and_bench_engine_never_exceed_the_trained_context(tiny_gguf):
    from harness.bench.engines import LlamaCppEngine
    from harness.models.llama_cpp_lm import LlamaCppLM

    lm = LlamaCppLM(pretrained=str(tiny_gguf), n_ctx=2048, n_threads=1)
    assert lm.max_length == 512
    engine = LlamaCppEngine(str(tiny_gguf), n_threads=1, n_ctx=2048)
    engine.load()
    assert engine.llm.n_ctx() == 512
    timing = engine.timed_request(engine.tokenize("The gNB schedules the UE."), 3)
    assert timing.gen_tokens == 3 and timing.total_s > 0


def test_bench_engine_decodes_what_greedy_generation_says():
    """The timed loop feeds back each step's argmax, as llama.cpp's own greedy completion does
    (it once fed token 0: the logits it read were never written with logits_all off)."""
    from harness.artefacts.embedded import gguf_path
    from harness.bench.engines import LlamaCppEngine

    engine = LlamaCppEngine(str(gguf_path()), n_threads=1, n_ctx=512)
    engine.load()
    ids = engine.tokenize("<|im_start|>user\nWhat does a gNB schedule?<|im_end|>\n"
                          "<|im_start|>assistant\n")
    engine.timed_request(ids, 8)
    timed = engine.llm.input_ids[len(ids):len(ids) + 7].tolist()
    engine.llm.reset()
    greedy = engine.llm.create_completion(prompt=ids, max_tokens=7, temperature=0.0,
                                          top_k=1)["choices"][0]["text"]
    assert engine.llm.detokenize(timed).decode("utf-8", "replace") == greedy
    assert len(set(timed)) > 1


def test_a_load_that_crashes_llama_cpp_is_a_one_line_error(tiny_gguf, monkeypatch):
    crash = [sys.executable, "-c",
             "import sys, ctypes; print('llama_context: n_ctx_seq (2048) > n_ctx_train (512)',"
             " file=sys.stderr, flush=True); ctypes.string_at(0)"]
    monkeypatch.setattr(llama_cpp_load, "_probe_argv", lambda path, settings: crash)
    with pytest.raises(SlmbenchError) as err:
        llama_cpp_load.open_llama(tiny_gguf, n_ctx=256, n_threads=1, verbose=False)
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"llama-cpp: cannot load GGUF {tiny_gguf}: llama.cpp crashed "
                              "(SIGSEGV); last output: llama_context: n_ctx_seq")


def test_a_gguf_that_aborts_llama_cpp_is_a_one_line_error(tiny_gguf, tmp_path):
    """A real native crash: zero layers makes llama.cpp's loader abort the process."""
    import shutil

    import gguf

    bad = tmp_path / "zero_layers.gguf"
    shutil.copy(tiny_gguf, bad)
    reader = gguf.GGUFReader(str(bad), "r+")
    field = reader.fields["llama.block_count"]
    field.parts[field.data[0]][0] = 0
    del reader
    with pytest.raises(SlmbenchError) as err:
        llama_cpp_load.open_llama(bad, n_ctx=256, n_threads=1, verbose=False)
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"llama-cpp: cannot load GGUF {bad}: llama.cpp crashed (SIGABRT)")
    assert "GGML_ASSERT(hparams.n_layer_all > 0" in message
    assert not list((tmp_path / "cache").rglob("*.ok"))  # a crash is never cached as good


def test_a_probed_file_is_not_probed_again(tiny_gguf, monkeypatch):
    llama_cpp_load.extra_bufts_off()  # this host's own trial, settled before counting
    calls = []
    real = subprocess.run

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(llama_cpp_load.subprocess, "run", counting)
    for _ in range(2):
        llm = llama_cpp_load.open_llama(tiny_gguf, n_ctx=256, n_threads=1, verbose=False)
        assert llm.n_ctx() == 256
        llm.close()
    assert len(calls) == 1
    # Other settings are another probe (a crash can depend on them).
    llama_cpp_load.open_llama(tiny_gguf, n_ctx=512, n_threads=1, verbose=False).close()
    assert len(calls) == 2


def test_not_a_gguf_never_reaches_llama_cpp(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 32)
    with pytest.raises(SlmbenchError, match="model.gguf is not a readable GGUF"):
        llama_cpp_load.open_llama(fake, n_ctx=128)


def test_failure_reason_names_the_signal_before_the_last_log_line():
    crashed = subprocess.CompletedProcess([], -11, "", "loading\nllama_context: warn\n")
    assert failure_reason(crashed) == "crashed (SIGSEGV); last output: llama_context: warn"
    failed = subprocess.CompletedProcess([], 1, "", "Traceback\nValueError: bad file\n")
    assert failure_reason(failed) == "ValueError: bad file"


_SEGFAULT = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]


@pytest.fixture
def children(monkeypatch):
    """The argv of every child process llama_cpp_load starts."""
    calls, real_run = [], subprocess.run

    def run(argv, **kwargs):
        calls.append(argv)
        return real_run(argv, **kwargs)

    monkeypatch.setattr(llama_cpp_load.subprocess, "run", run)
    return calls


def test_a_host_whose_amx_kernels_crash_loads_without_extra_buffer_types(tiny_gguf, monkeypatch,
                                                                         caplog, children):
    real_argv = llama_cpp_load._probe_argv
    monkeypatch.setattr(llama_cpp_load, "_advertises_amx", lambda: True)
    monkeypatch.setattr(llama_cpp_load, "_probe_argv", lambda path, settings: (
        real_argv(path, settings) if settings.get("use_extra_bufts") is False else _SEGFAULT))
    loaded = []
    real_new = llama_cpp_load._new_llama
    monkeypatch.setattr(llama_cpp_load, "_new_llama",
                        lambda path, settings: loaded.append(settings) or real_new(path, settings))
    with caplog.at_level(logging.WARNING):
        llm = llama_cpp_load.open_llama(tiny_gguf, n_ctx=256, n_threads=1, verbose=False)
    llm.eval(llm.tokenize(b"The gNB"))
    llm.close()
    assert loaded[-1]["use_extra_bufts"] is False
    assert "ggml-org/llama.cpp#20824" in caplog.text and "(SIGSEGV)" in caplog.text
    # the host check (a crash, then a run without them), then the file's own probe without them
    assert len(children) == 3 and children[0] is _SEGFAULT
    # Every later load on this host leaves them off, a worker's unprobed one too, with no
    # further trial.
    llama_cpp_load.open_llama(tiny_gguf, n_ctx=256, isolate=False, n_threads=1,
                              verbose=False).close()
    assert len(children) == 3 and loaded[-1]["use_extra_bufts"] is False


def test_a_host_whose_amx_kernels_run_keeps_them_and_is_checked_once(monkeypatch, children):
    monkeypatch.setattr(llama_cpp_load, "_advertises_amx", lambda: True)
    monkeypatch.setattr(llama_cpp_load, "_probe_argv",
                        lambda path, settings: [sys.executable, "-c", "pass"])
    assert not llama_cpp_load.extra_bufts_off() and not llama_cpp_load.extra_bufts_off()
    assert len(children) == 1  # the embedded model ran with them, so the verdict is kept


def test_no_trial_without_amx_and_no_verdict_from_a_crash_amx_does_not_explain(monkeypatch,
                                                                                children):
    monkeypatch.setattr(llama_cpp_load, "_advertises_amx", lambda: False)
    assert not llama_cpp_load.extra_bufts_off() and children == []
    monkeypatch.setattr(llama_cpp_load, "_advertises_amx", lambda: True)
    monkeypatch.setattr(llama_cpp_load, "_probe_argv", lambda path, settings: _SEGFAULT)
    assert not llama_cpp_load.extra_bufts_off()  # dies either way: not AMX's doing
    assert len(children) == 2 and not list((llama_cpp_load.cache_dir()).rglob("extra_bufts-*"))


def test_model_parameters_llama_takes_no_keyword_for_reach_llama_cpp():
    import llama_cpp.llama_cpp as bindings

    assert bindings.llama_model_default_params().use_extra_bufts is True
    with llama_cpp_load._model_params(use_extra_bufts=False):
        assert bindings.llama_model_default_params().use_extra_bufts is False
    assert bindings.llama_model_default_params().use_extra_bufts is True


def test_a_quantized_gguf_loads_and_decodes_on_this_host(tiny_gguf, tmp_path):
    """Real on a host whose AMX kernels crash (the fallback above runs for real); elsewhere a
    plain quantized load."""
    from harness.quant.quantize import quantize_gguf

    q8 = quantize_gguf(tiny_gguf, tmp_path / "tiny.q8_0.gguf", "q8_0")
    llm = llama_cpp_load.open_llama(q8, n_ctx=256, n_threads=1, verbose=False)
    llm.eval(llm.tokenize(b"The gNB schedules the UE"))
    assert llm.n_tokens > 0
    llm.close()
