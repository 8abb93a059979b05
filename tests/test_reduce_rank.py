"""Adapters cut to a lower rank are the best rank-r approximation of their source's update,
route as their source does, and answer as it does where the update already had that rank."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import build_tiny_base, build_tiny_zoo

from harness.artefacts.zoo_manifest import describe_weights, load_manifest, upsert_entry
from harness.cli import main
from harness.errors import SlmbenchError
from harness.models.peft_router import RoutedPeftLM
from harness.train.reduce_rank import reduce_zoo

MODULES = ["q_proj", "v_proj", "down_proj"]
TOKENS = torch.tensor([[1, 50, 900, 7, 4000, 12]])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("reduce")
    base_dir, config = build_tiny_base(root / "base", hidden_size=32)
    manifest = build_tiny_zoo(root, base_dir, config, MODULES, rank=4)
    _make_rank_two(manifest, "b")
    return root, base_dir, manifest


def _make_rank_two(manifest, name):
    """Zero two of adapter ``name``'s four components, so its every update has rank 2."""
    zoo = load_manifest(manifest)
    entry = next(a for a in zoo.adapters if a.name == name)
    weights_file = manifest.parent / entry.path / "adapter_model.safetensors"
    weights = load_file(weights_file)
    for key, value in weights.items():
        if "lora_A" in key:
            value[2:] = 0
    save_file(weights, weights_file)
    entry.sha256, entry.size_mb = describe_weights(manifest.parent / entry.path)
    entry.train_subset = {"seed": 42, "examples": {"task_b": 10}}
    upsert_entry(manifest, entry)


def _deltas(manifest, name):
    """Each adapted matrix's update, as peft computes it, keyed by module name."""
    from peft.tuners.lora import LoraLayer

    lm = RoutedPeftLM(pretrained=str(load_manifest(manifest).base_model), adapters=str(manifest),
                      device="cpu")
    return {module_name: module.get_delta_weight(name).detach()
            for module_name, module in lm.model.named_modules()
            if isinstance(module, LoraLayer) and name in module.lora_A}


def _logits(manifest, name):
    lm = RoutedPeftLM(pretrained=str(load_manifest(manifest).base_model), adapters=str(manifest),
                      device="cpu")
    with torch.no_grad(), lm.using(name):
        return lm._model_call(TOKENS)


def test_a_cut_is_each_update_truncated_to_its_top_singular_values(tiny):
    root, _, manifest = tiny
    out = root / "cut.yaml"
    (reduced,) = reduce_zoo(manifest, 2, out, ["a"])
    source, cut = _deltas(manifest, "a"), _deltas(out, "a")
    assert source.keys() == cut.keys() and len(cut) == 2 * len(MODULES)
    kept = total = 0.0
    for module_name, delta in source.items():
        u, s, vh = torch.linalg.svd(delta)
        best = u[:, :2] @ torch.diag(s[:2]) @ vh[:2]
        # published in fp16, as every zoo adapter is: within fp16's rounding of the factors
        torch.testing.assert_close(cut[module_name], best, rtol=0,
                                   atol=2e-3 * float(best.abs().max()))
        kept, total = kept + float(s[:2].pow(2).sum()), total + float(s.pow(2).sum())
    assert reduced.source_rank == 4 and reduced.entry.rank == 2
    assert reduced.kept_energy == pytest.approx(kept / total, rel=1e-4)
    assert 0.3 < reduced.kept_energy < 0.95  # a random rank-4 update loses part of itself
    assert f"kept {kept / total:.1%}" in reduced.entry.notes


def test_an_update_that_already_has_the_rank_answers_as_its_source(tiny):
    root, _, manifest = tiny
    out = root / "exact.yaml"
    (reduced,) = reduce_zoo(manifest, 2, out, ["b"])
    assert reduced.kept_energy == pytest.approx(1.0, abs=1e-5)
    # the same update, its factors rounded to fp16 again (as the cat-merge test allows)
    torch.testing.assert_close(_logits(out, "b"), _logits(manifest, "b"), atol=2e-3, rtol=2e-3)
    source = next(a for a in load_manifest(manifest).adapters if a.name == "b")
    entry = load_manifest(out).adapters[0]
    assert (entry.name, entry.task, entry.routes, entry.train_subset) == (
        source.name, source.task, source.routes, source.train_subset)
    assert entry.rank == 2 and entry.alpha == 2 and entry.size_mb < source.size_mb
    assert entry.target_modules == sorted(MODULES)


def test_the_command_cuts_every_adapter_and_refuses_what_it_cannot_cut(tiny, capsys):
    root, _, manifest = tiny
    out = root / "all.yaml"
    assert main(["reduce-rank", "--zoo", str(manifest), "--rank", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "a: rank 4 -> 1" in printed and "b: rank 4 -> 1" in printed
    assert [(a.name, a.rank) for a in load_manifest(out).adapters] == [("a", 1), ("b", 1)]
    with pytest.raises(SlmbenchError, match=r"--rank 4 is not below the rank of \{'a': 4\}"):
        reduce_zoo(manifest, 4, root / "x.yaml", ["a"])
    with pytest.raises(SlmbenchError, match="--rank 0 is not below"):
        reduce_zoo(manifest, 0, root / "x.yaml")
    with pytest.raises(SlmbenchError, match=r"has no adapter \['c'\] \(known: a, b\)"):
        reduce_zoo(manifest, 2, root / "x.yaml", ["a", "c"])
    with pytest.raises(SlmbenchError, match="is the source manifest"):
        reduce_zoo(manifest, 2, manifest)
    assert not (root / "x.yaml").exists()
