"""``scripts/routed_decode_scaling.py``: the backbones and zoos it times must be real ones.

Its bench rows stand beside the embedded model's on the edge page, so a zoo whose adapters
are all the same file (one GGUF shared N times), fp32 where the zoo is fp16, or refused by the
zoo checks would time something other than what users ship.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from safetensors import safe_open
from transformers import AutoConfig

from harness.artefacts.zoo_manifest import WEIGHTS_FILE, load_manifest, verify_entry
from harness.bench.runner import BenchConfig, _label

SCRIPT = Path(__file__).parents[1] / "scripts" / "routed_decode_scaling.py"
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2)


def _script():
    spec = importlib.util.spec_from_file_location("routed_decode_scaling", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_zoo_is_n_distinct_fp16_adapters_that_pass_the_zoo_checks(tmp_path, monkeypatch):
    script = _script()
    monkeypatch.setattr(script, "N_ADAPTERS", 3)
    backbone, manifest = tmp_path / "tiny-shape-random-weights", tmp_path / "zoo.yaml"
    script.build_backbone(backbone, TINY)
    script.build_zoo(backbone, manifest)
    zoo = load_manifest(manifest)
    config = AutoConfig.from_pretrained(backbone)
    assert config.hidden_size == 64 and config.num_hidden_layers == 2
    assert len({e.sha256 for e in zoo.adapters}) == 3
    for entry in zoo.adapters:
        folder = verify_entry(zoo, entry, str(backbone), config)
        with safe_open(str(folder / WEIGHTS_FILE), "pt") as weights:
            keys = list(weights.keys())
            assert {str(weights.get_tensor(k).dtype) for k in keys} == {"torch.float16"}
        assert len(keys) == 2 * 7 * 2  # A and B, 7 projections, 2 layers
    script.build_zoo(backbone, manifest)  # resumed: nothing rebuilt
    assert [e.sha256 for e in load_manifest(manifest).adapters] == [
        e.sha256 for e in zoo.adapters]


def test_a_local_backbone_is_labelled_by_its_folder_name(tmp_path):
    folder = tmp_path / "smollm2-360m-shape-random-weights"
    folder.mkdir()
    assert _label(BenchConfig(model=str(folder))) == "smollm2-360m-shape-random-weights"
    assert _label(BenchConfig(model="embedded")) == "embedded"


def test_a_module_subset_gets_its_own_zoo_adapting_only_those(tmp_path, monkeypatch):
    """Adapting fewer matrices is the lever on the adapter's decode cost; its zoo must not
    overwrite (or be mistaken for) the all-projections one, which keeps its first name."""
    script = _script()
    monkeypatch.setattr(script, "N_ADAPTERS", 2)
    assert script.zoo_manifest_path("m", script.ALL_MODULES).name == "m-zoo.yaml"
    manifest = tmp_path / script.zoo_manifest_path("m", ["q_proj", "v_proj"]).name
    assert manifest.name == "m-q-v-zoo.yaml"
    backbone = tmp_path / "tiny-shape-random-weights"
    script.build_backbone(backbone, TINY)
    script.build_zoo(backbone, manifest, ["q_proj", "v_proj"])
    zoo = load_manifest(manifest)
    assert [e.target_modules for e in zoo.adapters] == [["q_proj", "v_proj"]] * 2
    folder = verify_entry(zoo, zoo.adapters[0], str(backbone), AutoConfig.from_pretrained(backbone))
    with safe_open(str(folder / WEIGHTS_FILE), "pt") as weights:
        keys = list(weights.keys())
    assert len(keys) == 2 * 2 * 2 and all("q_proj" in k or "v_proj" in k for k in keys)


def test_unknown_modules_are_refused_in_one_line_before_any_work(monkeypatch):
    script = _script()
    monkeypatch.chdir(Path.cwd())  # main() moves to the repository root; put it back after
    monkeypatch.setenv("MODULES", "q_proj qkv_proj")
    monkeypatch.setattr(script, "build_backbone", lambda *a: pytest.fail("built a backbone"))
    with pytest.raises(SystemExit, match=r"MODULES \['q_proj', 'qkv_proj'\]: pick from"):
        script.main()


def test_a_finished_bench_is_kept_unless_remeasure_is_asked(tmp_path, monkeypatch, capsys):
    """Re-timing is a choice (e.g. once the bench records something new), never a surprise."""
    script = _script()
    monkeypatch.chdir(Path.cwd())
    monkeypatch.setenv("SHAPES", "smollm2-135m")
    monkeypatch.setenv("MODULES", "q_proj v_proj")
    monkeypatch.setattr(script, "WORK", tmp_path / "work")
    monkeypatch.setattr(script, "finished_bench", lambda *a: tmp_path / "old-run")
    monkeypatch.setattr(script, "build_backbone", lambda *a: None)
    monkeypatch.setattr(script, "build_zoo", lambda *a: None)
    benched: list[list[str]] = []
    monkeypatch.setattr(script.subprocess, "run", lambda argv, check: benched.append(argv))
    monkeypatch.delenv("REMEASURE", raising=False)
    assert script.main() == 0
    assert benched == []
    assert "smollm2-135m-q-v-zoo.yaml: measured before in" in capsys.readouterr().out
    monkeypatch.setenv("REMEASURE", "1")
    assert script.main() == 0
    assert len(benched) == 1
    argv = benched[0]
    assert argv[argv.index("--zoo") + 1] == str(tmp_path / "work" / "smollm2-135m-q-v-zoo.yaml")
    assert argv[argv.index("--formats") + 1] == ("gguf-f16,gguf-f16+lora,gguf-q4_k_m,"
                                                 "gguf-q4_k_m+lora")


def test_a_finished_bench_stands_only_for_the_llama_cpp_it_was_timed_on(tmp_path, monkeypatch):
    """The patched library is another measurement: a stock bench of the same size and zoo must
    not be kept in its place (nor a patched one in stock's)."""
    import json

    from harness.models.llama_cpp_patches import FUSED_OPTIONS, PATCHES

    script = _script()
    for name in ("LLAMA_CPP_LIB_PATH", *(env for _, env in PATCHES.values()), *FUSED_OPTIONS):
        monkeypatch.delenv(name, raising=False)
    backbone, zoo = Path("runs/b"), Path("runs/b-zoo.yaml")
    run = tmp_path / "20260101T000000_stock"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"config": {"model": str(backbone), "zoo": str(zoo)}}))
    for fmt in ("gguf-f16", "gguf-f16+lora"):
        (run / f"spec_{fmt}.json").write_text(json.dumps({"format": fmt, "llama_cpp_env": {}}))
    assert script.finished_bench(backbone, zoo, tmp_path) == run
    assert script.finished_bench(backbone, Path("runs/other-zoo.yaml"), tmp_path) is None
    monkeypatch.setenv("LLAMA_CPP_LIB_PATH", "/lib/patched")
    monkeypatch.setenv("LLAMA_LORA_FUSED", "1")
    assert script.finished_bench(backbone, zoo, tmp_path) is None
    for fmt in ("gguf-f16", "gguf-f16+lora"):
        (run / f"spec_{fmt}.json").write_text(json.dumps({"format": fmt, "llama_cpp_env": {
            "LLAMA_CPP_LIB_PATH": "/lib/patched", "LLAMA_LORA_FUSED": "1"}}))
    assert script.finished_bench(backbone, zoo, tmp_path) == run
    monkeypatch.delenv("LLAMA_CPP_LIB_PATH")
    monkeypatch.delenv("LLAMA_LORA_FUSED")
    assert script.finished_bench(backbone, zoo, tmp_path) is None
