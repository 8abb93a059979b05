"""slmbench's llama.cpp LoRA patches: told apart from stock llama.cpp, and equal to it in answers.

The patches (``patches/llama.cpp``) change how a LoRA is computed and what a switch
costs, never what the model answers: the slow test builds them and checks the logits against
stock llama.cpp's in one process. The fast tests check that a record can tell a patched library
from a stock one, and that the probe refuses a library it cannot measure in one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.console import wide_console
from harness.models.llama_cpp_patches import llama_cpp_build, llama_cpp_env, patches_on

llama_cpp = pytest.importorskip("llama_cpp")

ROOT = Path(__file__).parents[1]
PROBE = ROOT / "scripts" / "lora_patches_probe.py"
# decode epilogue against the fused node, decode-step logits: summation order alone
EPILOGUE_VS_NODE_TOLERANCE = {"f16": 1e-3, "q4_k_m": 1e-3, "q8_0": 1e-3}


def test_stock_llama_cpp_reports_no_patch_and_says_when_one_is_asked_for(monkeypatch, caplog):
    monkeypatch.delenv("LLAMA_CPP_LIB_PATH", raising=False)
    monkeypatch.setenv("LLAMA_LORA_FUSED", "1")
    assert llama_cpp_build() == {"lib_path": None, "patches": {}}
    assert "LLAMA_LORA_FUSED is set, but the loaded libllama has no lora_fused patch" in caplog.text
    assert "LLAMA_LORA_KEEP_RESERVE" not in caplog.text  # not asked for: nothing to say


def test_a_patched_library_is_told_by_its_symbols_and_says_which_patch_is_on(monkeypatch):
    import llama_cpp.llama_cpp as bindings

    class PatchedLib:  # what ctypes gives for a libllama built with both patches
        @staticmethod
        def llama_lora_fused_enabled() -> bool:
            return False

        @staticmethod
        def llama_lora_keep_reserve_enabled() -> bool:
            return True

    monkeypatch.setattr(bindings, "_lib", PatchedLib())
    monkeypatch.setenv("LLAMA_CPP_LIB_PATH", "/opt/patched")
    build = llama_cpp_build()
    assert build == {"lib_path": "/opt/patched",
                     "patches": {"lora_fused": False, "lora_keep_reserve": True}}
    assert patches_on(build) == ["lora_keep_reserve"]
    assert patches_on(None) == [] and patches_on({"patches": {}}) == []


def test_a_bench_row_is_measured_anew_under_another_library_or_patch(tmp_path, monkeypatch):
    """The variables that pick the library and its patches go into each llama.cpp row's spec,
    so a bench resumed under other ones measures the row again instead of keeping a stock row
    for a patched run (or the reverse); resumed under the same ones, it keeps the row."""
    from harness.bench import runner
    from harness.models import llama_cpp_load

    workers = []

    def worker(argv, **_):
        workers.append(json.loads(Path(argv[-2]).read_text()).get("llama_cpp_env"))
        Path(argv[-1]).write_text(json.dumps({"weight_bytes": 1, "decode_tok_s": {"p50": 1.0}}))
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(runner, "prepare_artifact", lambda *_: tmp_path / "m.gguf")
    monkeypatch.setattr(llama_cpp_load, "extra_bufts_off", lambda: False)  # no host trial
    monkeypatch.setattr(runner, "_describe_artifact", lambda *_: None)
    monkeypatch.setattr(runner.subprocess, "run", worker)
    for name in ("LLAMA_CPP_LIB_PATH", "LLAMA_LORA_FUSED", "LLAMA_LORA_KEEP_RESERVE",
                 "LLAMA_AMX_Q5_0", "LLAMA_AMX_F16", "LLAMA_FA_TILED_SHORT"):
        monkeypatch.delenv(name, raising=False)
    cfg = runner.BenchConfig(formats=["gguf-f16"], task=None, output_dir=str(tmp_path))

    def measure() -> None:
        runner._measure_format("gguf-f16", cfg, tmp_path, ["hi"], tmp_path, "cpu", 2, 1.0,
                               wide_console())

    measure()
    measure()  # the same variables: the finished row is kept
    monkeypatch.setenv("LLAMA_CPP_LIB_PATH", "/opt/patched")
    monkeypatch.setenv("LLAMA_LORA_KEEP_RESERVE", "1")
    measure()
    assert workers == [{}, {"LLAMA_CPP_LIB_PATH": "/opt/patched",
                            "LLAMA_LORA_KEEP_RESERVE": "1"}]
    assert llama_cpp_env() == workers[-1]


def _patched_library() -> str:
    """The folder of the patched libraries: built once (about 5 minutes), cached after."""
    build = subprocess.run(["bash", str(ROOT / "scripts" / "build_llama_cpp_lora_patches.sh")],
                           capture_output=True, text=True, cwd=ROOT, timeout=1800,
                           env={**os.environ, "PYTHON": sys.executable})
    assert build.returncode == 0, build.stderr[-2000:]
    return build.stdout.strip().splitlines()[-1]


def _probe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROBE), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env={**os.environ, **(env or {})})


def test_the_probe_refuses_a_folder_without_libllama_in_one_line(tmp_path):
    proc = _probe("--lib", str(tmp_path), "model.gguf")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.endswith(f"--lib {tmp_path}: no libllama.so there "
                         "(build it with scripts/build_llama_cpp_lora_patches.sh)")


def test_the_probe_refuses_stock_llama_cpp_in_one_line():
    stock = Path(llama_cpp.__file__).parent / "lib"
    proc = _probe("--lib", str(stock), "model.gguf")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "its libllama.so lacks amx_f16, amx_q5_0, fa_tiled_short, lora_fused, lora_keep_reserve "
        "(rebuild it with "
        "scripts/build_llama_cpp_lora_patches.sh)")


@pytest.mark.slow  # builds llama.cpp with the patches once (about 5 minutes; cached after)
# the kernels' blocked shapes (widths of 16, ranks of 4), then their tails everywhere: hidden 40
# gives 40-wide inputs and 20-row k/v outputs, rank 6 no block of four ranks; rank 6 at hidden
# 64 gives each of the two threads three of A's rows at decode, and prompts no block of four
# ranks, so A·x takes the vector loop for rows left over from blocks of four (a thread's share of
# the rank is under four wherever threads outnumber rank / 4); then quantized backbones (hidden
# 256, so q4_K and q8_0 rows), whose matmuls run in a packed layout (ggml-cpu's repack, or on an
# AMX host AMX's) and call the decode epilogue from there; then the kernels of CPUs without
# AVX-512 (AVX2, and plain C), capped by LLAMA_LORA_FUSED_ISA, on those shapes
@pytest.mark.parametrize(("hidden", "rank", "quant", "isa"),
                         [(64, 8, "f16", None), (40, 6, "f16", None), (64, 6, "f16", None),
                          (256, 8, "q4_k_m", None), (256, 8, "q8_0", None),
                          (64, 8, "f16", "avx2"), (40, 6, "f16", "avx2"), (64, 6, "f16", "avx2"),
                          (64, 8, "f16", "scalar")])
def test_the_patches_answer_as_stock_llama_cpp_does(tmp_path, hidden, rank, quant, isa):
    """On a tiny random model with a zoo of two adapters on every projection: the fused paths'
    logits match the stock nodes' (same top-1; at f16 within 0.05, as the adapter's input is
    not rounded to f16 as stock's is), the decode epilogue's match the fused node's (they
    differ only in summation order, so tightly on any backbone), and after a switch that kept
    the reservation every adapter's logits are stock's exactly; both patches were on where the
    record says. Two threads, so the prompt's tokens, the decode step's output rows and A's
    ranks are split."""
    from tiny_models import build_tiny_base, build_tiny_zoo

    from harness.quant.gguf_cache import cached_gguf

    lib = _patched_library()
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    base_dir, config = build_tiny_base(tmp_path / "base", hidden_size=hidden, init_range=0.2)
    zoo = build_tiny_zoo(tmp_path, base_dir, config, modules, rank=rank)
    gguf = cached_gguf(base_dir, quant)
    proc = _probe("--lib", lib, "--zoo", str(zoo), "--adapter", "a", "--pretrained",
                  str(base_dir), "--rounds", "2", "--threads", "2", "--out", str(tmp_path),
                  str(gguf), env={"LLAMA_LORA_FUSED_ISA": isa} if isa else None)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "lora_patches.json").read_text())
    assert report["options"] == ({"LLAMA_LORA_FUSED_ISA": isa} if isa else {})  # the cap, recorded
    result = report["results"][0]
    assert result["llama_cpp"]["lib_path"] == str(Path(lib).resolve())
    assert set(result["llama_cpp"]["patches"]) == {"lora_fused", "lora_keep_reserve", "amx_q5_0",
                                                       "amx_f16", "fa_tiled_short"}
    assert result["adapter_on"]["stock llama.cpp"]["max_abs_logit_diff"] == 0
    for mode in ("fused node", "decode epilogue"):
        fused = result["adapter_on"][mode]
        assert fused["same_top1"], mode
        if quant == "f16":
            assert fused["max_abs_logit_diff"] < 0.05, mode
    assert result["epilogue_vs_node"]["same_top1"]
    assert result["epilogue_vs_node"]["max_abs_logit_diff"] < EPILOGUE_VS_NODE_TOLERANCE[quant]
    assert result["switch_logits"] == {"adapters": 2, "max_abs_logit_diff": 0.0,
                                       "same_top1": True}
    assert set(result["switch"]) == {"stock llama.cpp", "kept reservation"}
    assert all(row["n"] == 4 * 4 for row in result["switch"].values())  # 4 rounds of 2x2


def test_an_evaluation_on_another_library_or_patch_is_another_run(tmp_path, monkeypatch):
    """A stock run is never reused for a patched evaluation (or the reverse); stock runs keep
    the ids they had before the patches existed."""
    from harness.evaluation.identity import id_of, identity
    from harness.evaluation.spec import EvalSpec

    for name in ("LLAMA_CPP_LIB_PATH", "LLAMA_LORA_FUSED", "LLAMA_LORA_KEEP_RESERVE",
                 "LLAMA_AMX_Q5_0", "LLAMA_AMX_F16", "LLAMA_FA_TILED_SHORT"):
        monkeypatch.delenv(name, raising=False)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    spec = EvalSpec(model="llama-cpp-peft", model_args={"pretrained": str(gguf)},
                    tasks=("teleqna",), limit=4)
    stock = identity(spec)
    assert "llama_cpp_env" not in stock
    monkeypatch.setenv("LLAMA_CPP_LIB_PATH", "/opt/patched")
    patched_off = id_of(identity(spec))
    monkeypatch.setenv("LLAMA_LORA_FUSED", "1")
    assert len({id_of(stock), patched_off, id_of(identity(spec))}) == 3
    hf = EvalSpec(model="hf", model_args={"pretrained": "embedded"}, tasks=("teleqna",))
    assert "llama_cpp_env" not in identity(hf)  # other engines do not read the variables


# each GGUF's logits with and without llama.cpp's extra buffers (AMX's among them)
_LOGITS = """
import json, sys
from harness.models.llama_cpp_load import _new_llama
from harness.models.llama_cpp_patches import llama_cpp_build
out = {"build": llama_cpp_build(), "logits": {}}
for path in sys.argv[1:]:
    for extra_bufts in (True, False):
        llm = _new_llama(path, {"n_ctx": 64, "n_threads": 2, "logits_all": True,
                                "verbose": True, "use_extra_bufts": extra_bufts})
        tokens = list(range(3, 35))
        llm.eval(tokens)
        out["logits"][f"{path} {extra_bufts}"] = [[float(v) for v in row]
                                                  for row in llm.scores[:len(tokens)]]
        del llm
print(json.dumps(out))
"""


def _logits_with_switch(lib: str, switch: str, on: bool, *ggufs: Path):
    """Each GGUF's logits, keyed ``(path, extra_bufts)``, in a process of its own (the patch
    reads its switch once), the library's record of its patches, and llama.cpp's load log
    (which says how big AMX's buffer came out)."""
    import numpy as np

    proc = subprocess.run([sys.executable, "-c", _LOGITS, *map(str, ggufs)], capture_output=True,
                          text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "LLAMA_CPP_LIB_PATH": lib, switch: "1" if on else "0"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    logits = {(path, bufts): np.array(out["logits"][f"{path} {bufts}"])
              for path in map(str, ggufs) for bufts in (True, False)}
    return logits, out["build"]["patches"], proc.stderr


def _amx_host() -> bool:
    # the patched library is built for this CPU (GGML_NATIVE) and runs AMX wherever it is there
    return "amx_int8" in Path("/proc/cpuinfo").read_text()


def _widened_to_q8_0(src: Path, dst: Path) -> None:
    """A copy of a GGUF whose Q5_0 tensors are Q8_0 holding the same values, written with
    gguf-py's dequantizer as the reference for what each 5-bit value is."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, reader.fields["general.architecture"].contents())
    for field in reader.fields.values():
        if field.name != "general.architecture" and not field.name.startswith("GGUF."):
            kind = field.types[0]
            writer.add_key_value(field.name, field.contents(), kind,
                                 sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY
                                 else None)
    datas = []
    for tensor in reader.tensors:
        data, kind = tensor.data, tensor.tensor_type
        if kind == gguf.GGMLQuantizationType.Q5_0:
            blocks = np.frombuffer(data.tobytes(), dtype=np.uint8).reshape(-1, 22)
            scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
            values = gguf.quants.dequantize(data, kind).reshape(-1, 32) / scale
            assert np.array_equal(values, np.round(values)) and np.abs(values).max() <= 16
            data = np.empty((len(blocks), 34), dtype=np.uint8)
            data[:, :2] = blocks[:, :2]
            data[:, 2:] = values.astype(np.int8).view(np.uint8)
            data = data.reshape(tensor.data.shape[0], -1)
            kind = gguf.GGMLQuantizationType.Q8_0
        writer.add_tensor_info(tensor.name, data.shape, data.dtype, data.nbytes, kind)
        datas.append(data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for data in datas:
        writer.write_tensor_data(data)
    writer.close()


@pytest.mark.slow  # builds llama.cpp with the patches once (about 5 minutes; cached after)
def test_q5_0_weights_on_amx_answer_as_the_same_values_in_q8_0_do(tmp_path):
    """q4_k_m on a backbone of hidden 160 (not a multiple of 256, so llama.cpp's quantizer falls
    back to Q5_0). With amx_q5_0 on, the Q5_0 weights move into AMX's buffer, which grows by
    their widening (34 bytes per 32 values instead of 22), and the logits are exactly those of
    the same GGUF with its Q5_0 tensors rewritten as Q8_0 (so the widening loses nothing); that
    GGUF answers exactly as the Q5_0 one does on ggml's own kernels. What AMX's int8 tiles add
    is stock llama.cpp's own difference from ggml's kernels. On a host without AMX the patch has
    nothing to move: the logits are the same exactly. A 32-token prompt, so the tiles run."""
    import re

    import numpy as np
    from tiny_models import build_tiny_base

    from harness.quant.gguf_cache import cached_gguf

    lib = _patched_library()
    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=160, init_range=0.2)
    gguf = cached_gguf(base_dir, "q4_k_m")
    widened = tmp_path / "widened.gguf"
    _widened_to_q8_0(gguf, widened)
    runs = {}
    for on in (False, True):
        logits, patches, log = _logits_with_switch(lib, "LLAMA_AMX_Q5_0", on, gguf, widened)
        assert "type q5_0" in log  # the fallback this test is about happened
        assert patches["amx_q5_0"] is on
        # AMX's buffer, where one was made: the Q5_0 GGUF's load, then the widened one's
        amx = [float(size) for size in re.findall(r"AMX model buffer size =\s*([\d.]+) MiB", log)]
        runs[on] = ({name: {bufts: logits[(str(path), bufts)] for bufts in (True, False)}
                     for name, path in (("q5_0", gguf), ("widened", widened))}, amx)
    (off, amx_off), (on, amx_on) = runs[False], runs[True]
    # on ggml's own kernels (no extra buffer) the rewritten GGUF answers as the Q5_0 one does
    assert np.array_equal(off["widened"][False], off["q5_0"][False])
    assert np.array_equal(on["widened"][True], off["widened"][True])  # it has no Q5_0 to move
    assert (on["q5_0"][True].argmax(1) == off["q5_0"][True].argmax(1)).all()
    if _amx_host():
        assert amx_on[0] > amx_off[0] + 0.1, (amx_off, amx_on)  # about 0.4 MiB of Q5_0 moved in
        assert amx_on[0] == amx_on[1]  # as much as the rewritten GGUF puts there
        assert np.array_equal(on["q5_0"][True], on["widened"][True])
    else:
        assert np.array_equal(on["q5_0"][True], off["q5_0"][True])


@pytest.mark.slow  # builds llama.cpp with the patches once (about 5 minutes; cached after)
def test_f16_prompts_on_amx_bf16_tiles_answer_as_the_fp32_kernel_does(tmp_path):
    """An f16 backbone (hidden 64: tile-sized rows) and a 32-token prompt, so its matmuls take
    the tiles with amx_f16 on. AMX's own f16 kernel multiplies in fp32; the tiles carry each
    weight exactly and each activation to 16 bits, so their logits stay closer to the FMA
    kernel's than ggml's own f16 path does (activations rounded to f16), within 2e-3 of a
    logit range (8.5e-4 here; 1.5e-2 with the lo·hi product left out), with the same top-1.
    On an AMX host they differ from it (the tiles ran); on another the patch changes nothing."""
    import numpy as np
    from tiny_models import build_tiny_base

    from harness.quant.gguf_cache import cached_gguf

    lib = _patched_library()
    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=64, init_range=0.2)
    gguf = cached_gguf(base_dir, "f16")
    runs = {}
    for on in (False, True):
        logits, patches, _ = _logits_with_switch(lib, "LLAMA_AMX_F16", on, gguf)
        assert patches["amx_f16"] is on
        runs[on] = {bufts: logits[(str(gguf), bufts)] for bufts in (True, False)}
    fma, tiles, ggml = runs[False][True], runs[True][True], runs[False][False]
    assert np.array_equal(runs[True][False], ggml)  # without AMX's buffer nothing changes
    scale = max(1.0, float(np.abs(fma).max()))
    assert (tiles.argmax(1) == fma.argmax(1)).all()
    if _amx_host():
        assert 0 < np.abs(tiles - fma).max() < 2e-3 * scale
        assert np.abs(tiles - fma).max() < np.abs(ggml - fma).max()
    else:
        assert np.array_equal(tiles, fma)


# one 150-token prompt's logits with llama.cpp's fused attention, on ggml's own matmuls (no
# extra buffers, so a stock and a patched library run the same code but for the attention
# patches), evaluated whole and in the pieces a prompt cache leaves (40, 20 and 7 tokens, then
# the rest), with the switches the parent set
_PROMPT_LOGITS = """
import json, sys
from harness.models.llama_cpp_load import _new_llama
from harness.models.llama_cpp_patches import llama_cpp_build
llm = _new_llama(sys.argv[1], {"n_ctx": 256, "n_threads": 2, "logits_all": True,
                               "verbose": False, "use_extra_bufts": False, "flash_attn": True})
tokens = [3 + (7 * i) % 90 for i in range(150)]
out = {"patches": llama_cpp_build()["patches"]}
for name, cuts in (("whole", [0, 150]), ("split", [0, 40, 60, 67, 150])):
    llm.reset()
    for a, b in zip(cuts, cuts[1:]):
        llm.eval(tokens[a:b])
    out[name] = [[float(v) for v in row] for row in llm.scores[:len(tokens)]]
print(json.dumps(out))
"""


def _prompt_logits(env: dict) -> dict:
    """_PROMPT_LOGITS on the embedded GGUF in a child with ``env`` over this process's variables
    (``LLAMA_CPP_LIB_PATH`` among them only where ``env`` sets it): its patches, and the whole
    and split logits as arrays."""
    import numpy as np

    from harness.artefacts.embedded import gguf_path

    clean = {k: v for k, v in os.environ.items() if k != "LLAMA_CPP_LIB_PATH"}
    proc = subprocess.run([sys.executable, "-c", _PROMPT_LOGITS, str(gguf_path())],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**clean, **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"patches": out["patches"], **{k: np.array(out[k]) for k in ("whole", "split")}}


@pytest.mark.slow  # builds llama.cpp with the patches once (about 5 minutes; cached after)
def test_flash_attention_vectors_change_no_logit():
    """flash-attn-vectors.patch and the always-on half of flash-attn-short-prompts.patch must
    not change a result: a 150-token prompt (three query tiles of 64, the last one partial, so
    the tiled kernel, its causal mask, its skipped tiles and a tile's padding all run) gives the
    patched library exactly stock's logits at every position, whole and in pieces (the
    switch off). The embedded model, as a tiny random one's near-uniform attention hid a wrong
    row maximum."""
    import numpy as np

    stock = _prompt_logits({})
    patched = _prompt_logits({"LLAMA_CPP_LIB_PATH": _patched_library(),
                              "LLAMA_FA_TILED_SHORT": "0"})
    assert stock["whole"].shape[0] == 150 and np.isfinite(stock["whole"]).all()
    for name in ("whole", "split"):
        assert np.array_equal(stock[name], patched[name]), name


@pytest.mark.slow  # builds llama.cpp with the patches once (about 5 minutes; cached after)
def test_short_prompts_on_the_tiled_attention_answer_as_the_whole_prompt_does():
    """With LLAMA_FA_TILED_SHORT=1 a batch of 2 to 63 tokens takes the tiled attention kernel,
    which a prompt of 64 or more takes anyway: so a 150-token prompt evaluated in the pieces a
    prompt cache leaves (40, 20, 7, 83) gives exactly the logits it gives evaluated whole. Off,
    the pieces under 64 take stock's one-row kernel (Q rounded to f16) and the logits differ,
    which is what shows the switch did something; the whole prompt is the same either way.
    (An unused query tile's padding rows, which the always-on half no longer computes, are
    covered by test_flash_attention_vectors_change_no_logit's partial last tile.)"""
    import numpy as np

    lib = _patched_library()
    runs = {}
    for on in (False, True):
        runs[on] = _prompt_logits({"LLAMA_CPP_LIB_PATH": lib,
                                   "LLAMA_FA_TILED_SHORT": "1" if on else "0"})
        assert runs[on]["patches"]["fa_tiled_short"] is on
    assert np.isfinite(runs[True]["whole"]).all()
    assert np.array_equal(runs[False]["whole"], runs[True]["whole"])
    assert np.array_equal(runs[True]["split"], runs[True]["whole"])
    # stock's pieces differ from its whole prompt (here by up to 1.04 on the embedded model's
    # logits, a top-1 in 10 of 150 positions): what the switch takes away
    assert not np.array_equal(runs[False]["split"], runs[False]["whole"])
