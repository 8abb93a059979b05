"""Sweeps resume without losing or repeating runs; merged adapters equal their sources' sum."""

from __future__ import annotations

import dataclasses
import json
import shutil

import jsonlines
import pytest
import torch
from peft import PeftModel
from tiny_models import build_tiny_base, build_tiny_zoo, write_tiny_teletables
from transformers import AutoModelForCausalLM

from harness.errors import SlmbenchError
from harness.models.peft_router import RoutedPeftLM
from harness.train.config import TrainConfig
from harness.train.lora import BEST, LoraTrainer
from harness.train.merge import merge_adapters
from harness.train.sweep import RESULT, RESULTS, expand, load_grid, run_sweep

MODULES = ["q_proj", "v_proj", "down_proj"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    base_dir, config = build_tiny_base(root / "base", hidden_size=32)
    write_tiny_teletables(root / "data")
    return root, base_dir, config


def test_named_grids_have_the_promised_shape():
    assert len(expand(load_grid("lora16"))) == 16
    ranks = expand(load_grid("rank"))
    assert [p["rank"] for p in ranks] == [4, 8, 16, 32]
    assert all(p["alpha"] == 2 * p["rank"] for p in ranks)
    modules = expand(load_grid("modules"))
    assert [p["target_modules"] for p in modules] == [
        ["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj"],
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]]
    assert {(p["rank"], p["alpha"]) for p in modules} == {(16, 32)}
    with pytest.raises(SlmbenchError, match="unknown grid field 'colour'"):
        expand({"colour": ["red"]})


def _tiny_sweep(tiny, tmp_path, ranks: str, max_steps: int):
    """A rank grid over the tiny TeleTables set, and a trainer class that records each rank
    it trains, so a test can tell a point trained again from one only scored again."""
    root, base_dir, _ = tiny
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"rank: [{ranks}]\nmodules: [attention]\n")
    base = TrainConfig(benchmarks=["teletables"], base_model=str(base_dir),
                       data_dir=str(root / "data"), max_steps=max_steps, eval_every=2,
                       batch_size=8, max_val_examples=8, chat_template=False, loss="answer")
    trained: list[int] = []

    class Recording(LoraTrainer):
        def __init__(self, cfg):
            super().__init__(cfg)
            trained.append(cfg.rank)

    return grid, base, trained, Recording


def test_killed_sweep_resumes_without_losing_or_repeating_runs(tiny, tmp_path, monkeypatch):
    grid, base, trained, Recording = _tiny_sweep(tiny, tmp_path, "2, 4", max_steps=4)

    class KilledInSecondRun(Recording):
        def __init__(self, cfg):
            super().__init__(cfg)
            if cfg.rank == 4:
                self.on_step = _kill_at(3)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(base, str(grid), tmp_path / "sweep", eval_limit=4,
                  trainer_cls=KilledInSecondRun)
    with jsonlines.open(tmp_path / "sweep" / RESULTS) as reader:
        assert [r["rank"] for r in reader] == [2]
    first = next((tmp_path / "sweep").glob("r2_*")) / RESULT
    stamp = first.stat().st_mtime_ns

    trained.clear()
    results = run_sweep(base, str(grid), tmp_path / "sweep", eval_limit=4, trainer_cls=Recording)
    assert trained == [4]  # the finished run was skipped, the killed one resumed
    assert first.stat().st_mtime_ns == stamp
    with jsonlines.open(tmp_path / "sweep" / RESULTS) as reader:
        rows = list(reader)
    assert [r["rank"] for r in rows] == [2, 4] == [r["rank"] for r in results]
    assert rows[1]["adapter_mb"] > rows[0]["adapter_mb"] > 0
    assert 0 <= rows[1]["scores"]["teletables"]["value"] <= 1
    assert rows[1]["trainable_params"] == 2 * rows[0]["trainable_params"]

    # A task edited after the sweep: no point is retrained, every point is scored anew.
    from harness.evaluation import identity as eval_identity

    monkeypatch.setattr(eval_identity, "task_definitions", lambda spec: "edited since")
    trained.clear()
    rescored = run_sweep(base, str(grid), tmp_path / "sweep", eval_limit=4,
                         trainer_cls=Recording)
    assert trained == [] and first.stat().st_mtime_ns != stamp
    old_ids = [r["eval_run_id"] for r in rows]
    new_ids = [r["eval_run_id"] for r in rescored]
    assert all(a != b for a, b in zip(old_ids, new_ids, strict=True))
    assert all(not k.startswith("_") for r in rescored for k in r["scores"])


def test_circular_scoring_added_to_a_finished_sweep_scores_without_retraining(tiny, tmp_path):
    grid, base, trained, Recording = _tiny_sweep(tiny, tmp_path, "2", max_steps=2)
    plain = run_sweep(base, str(grid), tmp_path / "sweep", eval_limit=3, trainer_cls=Recording)
    assert trained == [2] and "teletables_circular" not in plain[0]["scores"]
    circled = run_sweep(base, str(grid), tmp_path / "sweep", eval_limit=3,
                        trainer_cls=Recording, circular=True)
    assert trained == [2]  # the same point, scored again, not trained again
    row = circled[0]
    assert row["eval_run_id"] == plain[0]["eval_run_id"]
    assert row["scores"]["teletables"] == plain[0]["scores"]["teletables"]
    circular = row["scores"]["teletables_circular"]
    assert circular["metric"].startswith("circular_strict")
    # Counted in whole questions: 3, asked in 4 rotations of their four options each.
    assert circular["n"] == 3
    assert 0 <= circular["value"] <= circular["circular_mean"]["value"] <= 1
    assert row["circular_eval_run_id"] not in (None, row["eval_run_id"])
    with jsonlines.open(tmp_path / "sweep" / RESULTS) as reader:
        assert list(reader)[0]["circular_eval_run_id"] == row["circular_eval_run_id"]
    with pytest.raises(SlmbenchError, match="telemath has no _circular task"):
        run_sweep(dataclasses.replace(base, benchmarks=["telemath"]), str(grid),
                  tmp_path / "other", eval_limit=3, circular=True)


def test_a_published_point_without_its_adapter_is_kept_not_trained_again(tiny, tmp_path):
    """A long sweep moves machines as records (adapters stay behind): its finished points
    are kept as scored, and a score that would need the missing adapter is refused."""
    grid, base, trained, Recording = _tiny_sweep(tiny, tmp_path, "2", max_steps=2)
    [first] = run_sweep(base, str(grid), tmp_path / "sweep", eval_limit=3, trainer_cls=Recording,
                        circular=True)
    point = next((tmp_path / "sweep").glob("r2_*"))
    moved = tmp_path / "moved" / point.name
    moved.mkdir(parents=True)
    shutil.copy2(point / RESULT, moved / RESULT)  # the published record, no adapter
    trained.clear()
    [kept] = run_sweep(base, str(grid), tmp_path / "moved", eval_limit=3, trainer_cls=Recording,
                       circular=True)
    assert trained == [] and kept == first and not (moved / BEST).exists()
    with jsonlines.open(tmp_path / "moved" / RESULTS) as reader:
        assert list(reader) == [first]

    plain_only = {k: v for k, v in first.items() if k != "circular_eval_run_id"}
    (moved / RESULT).write_text(json.dumps(plain_only))
    with pytest.raises(SlmbenchError, match="has no circular run and its adapter"):
        run_sweep(base, str(grid), tmp_path / "moved", eval_limit=3, trainer_cls=Recording,
                  circular=True)
    assert trained == []


def test_a_point_finished_by_a_sibling_sweep_is_linked_not_trained_again(tiny, tmp_path):
    """The rank sweep's r16 point is the module sweep's "all" point: same config, same name."""
    grid, base, trained, Recording = _tiny_sweep(tiny, tmp_path, "2", max_steps=2)
    [first] = run_sweep(base, str(grid), tmp_path / "sweeps" / "rank", eval_limit=3,
                        trainer_cls=Recording)
    wider = tmp_path / "wider.yaml"
    wider.write_text("rank: [2, 4]\nmodules: [attention]\n")
    trained.clear()
    linked, new = run_sweep(base, str(wider), tmp_path / "sweeps" / "modules", eval_limit=3,
                            trainer_cls=Recording)
    assert trained == [4] and linked == first and new["rank"] == 4
    point = tmp_path / "sweeps" / "modules" / first["run_id"]
    assert point.is_symlink() and (point / BEST).is_dir()

    # A sibling's record without its adapter (published from elsewhere) is not borrowed.
    shutil.rmtree(tmp_path / "sweeps" / "modules")
    shutil.rmtree(tmp_path / "sweeps" / "rank" / first["run_id"] / BEST)
    trained.clear()
    run_sweep(base, str(wider), tmp_path / "sweeps" / "modules", eval_limit=3,
              trainer_cls=Recording)
    assert trained == [2, 4]
    assert not (tmp_path / "sweeps" / "modules" / first["run_id"]).is_symlink()


def _kill_at(kill_step: int):
    def on_step(step: int) -> None:
        if step == kill_step:
            raise KeyboardInterrupt

    return on_step


def _zoo(root, base_dir, config):
    return build_tiny_zoo(root, base_dir, config, MODULES)


def test_cat_merge_equals_the_sum_of_both_adapters(tiny):
    root, base_dir, config = tiny
    manifest = _zoo(root, base_dir, config)
    entry = merge_adapters(manifest, ["a", "b"], "cat", root / "merged.yaml", "ab")
    assert entry.rank == 8 and entry.routes == ["task_a", "task_a_*", "task_b", "task_b_*"]

    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir),
                                          str(root / "a")).merge_and_unload()
    reference = PeftModel.from_pretrained(reference, str(root / "b")).merge_and_unload()
    tokens = torch.tensor([[1, 50, 900, 7, 4000]])
    merged = RoutedPeftLM(pretrained=str(base_dir), adapters=str(root / "merged.yaml"),
                          device="cpu")
    with torch.no_grad(), merged.using("ab"):
        got = merged._model_call(tokens)
        want = reference(tokens).logits
    torch.testing.assert_close(got, want, atol=2e-3, rtol=2e-3)


def test_ties_merge_is_published_and_bad_requests_are_refused(tiny):
    root, base_dir, config = tiny
    manifest = _zoo(root, base_dir, config)
    entry = merge_adapters(manifest, ["a", "b"], "ties", root / "ties.yaml", "ab_ties",
                           density=0.5)
    assert entry.rank == 4 and "ties" in entry.notes
    with pytest.raises(SlmbenchError, match="unknown --method 'average'"):
        merge_adapters(manifest, ["a", "b"], "average", root / "x.yaml", "x")
    with pytest.raises(SlmbenchError, match="unknown: \\['c'\\]"):
        merge_adapters(manifest, ["a", "c"], "ties", root / "x.yaml", "x")


def test_run_ids_change_with_the_training_budget_not_only_the_grid_point():
    from harness.train.sweep import run_id

    point = expand(load_grid("rank"))[0]
    base = TrainConfig(benchmarks=["teleqna"], **{k: v for k, v in point.items()
                                                   if k != "module_set"})
    other = TrainConfig(benchmarks=["teleqna"], max_train_examples=96,
                        **{k: v for k, v in point.items() if k != "module_set"})
    assert run_id(point, base, 100) == run_id(point, base, 100)
    assert run_id(point, base, 100) != run_id(point, other, 100)
    assert run_id(point, base, 100) != run_id(point, base, 200)


def test_maj4_scoring_names_its_own_points_and_scores_the_maj4_task(tmp_path, monkeypatch):
    """Maj@4 is part of what a point's result means, so it names other folders; points of
    sweeps made without it keep their names (the committed sweeps stay valid)."""
    from harness.hashing import sha256_json
    from harness.train import sweep as sweep_module
    from harness.train.lora import config_hash

    base = TrainConfig(benchmarks=["oranbench"], output_dir=str(tmp_path))
    plain = sweep_module.plan(base, "rank", tmp_path, 500)
    voted = sweep_module.plan(base, "rank", tmp_path, 500, maj4=True)
    assert {p.folder for p in plain}.isdisjoint({p.folder for p in voted})
    first = plain[0]
    assert first.run_id.endswith(sha256_json([config_hash(first.cfg), 500])[:8])
    asked = {}

    def fake_run_tasks(tasks, model_args, output_path, **kwargs):
        asked["tasks"] = tasks
        return {}

    monkeypatch.setattr("harness.train.evaluate.run_tasks", fake_run_tasks)
    sweep_module._score(voted[0])
    assert asked["tasks"] == ["oranbench", "oranbench_maj4"]
    sweep_module._score(first)
    assert asked["tasks"] == ["oranbench"]


def test_an_unreachable_ray_address_is_one_line_in_seconds():
    """Ray itself retries a dead cluster address for minutes; the sweep says so at once."""
    import socket

    from harness.train.sweep_ray import _check_reachable

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(SlmbenchError, match=f"sweep --ray {address}: cannot reach"):
            _check_reachable(address, timeout_s=2)
    with pytest.raises(SlmbenchError, match="expected HOST:PORT, ray://HOST:PORT or auto"):
        _check_reachable("headnode")
    _check_reachable("auto")  # left to Ray
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        _check_reachable(f"127.0.0.1:{server.getsockname()[1]}")
