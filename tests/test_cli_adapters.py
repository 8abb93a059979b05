"""The user's adapter path end to end: ``slmbench train`` -> zoo -> ``lm-eval --model hf-peft``."""

from __future__ import annotations

import json

import yaml
from test_cli import _error_line, slmbench
from tiny_models import build_tiny_base


def test_train_publish_and_route_through_lm_eval(data_dir, tmp_path):
    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=32)
    zoo = tmp_path / "zoo" / "tiny.yaml"
    proc = slmbench("train", "teletables", "--base-model", str(base_dir), "--data-dir",
                    str(data_dir), "--max-steps", "2", "--eval-every", "1", "--batch-size", "4",
                    "--max-val-examples", "4", "--max-train-examples", "9",
                    "--no-chat-template", "--output-dir",
                    str(tmp_path / "run"), "--zoo", str(zoo))
    assert proc.returncode == 0, proc.stderr[-3000:]
    entry = yaml.safe_load(zoo.read_text())["adapters"][0]
    assert entry["name"] == "teletables" and entry["rank"] == 16 and entry["alpha"] == 32
    assert len(entry["sha256"]) == 64 and entry["val_loss"] is not None
    assert entry["train_subset"] == {"seed": 42, "split_seed": 42, "examples": {"teletables": 9}}
    assert (zoo.parent / entry["path"] / "adapter_model.safetensors").is_file()
    record = json.loads((zoo.parent / entry["path"] / "train_record.json").read_text())
    assert record["run"]["config"]["max_train_examples"] == 9  # a retrain starts from this
    assert slmbench("zoo", "verify", str(zoo)).returncode == 0

    out = tmp_path / "out"
    proc = slmbench("lm-eval", "--model", "hf-peft", "--model_args",
                    f"pretrained={base_dir},adapters={zoo}", "--tasks",
                    "teletables,srsranbench,teletables_seen", "--limit", "10",
                    "--metadata", f"data_dir={data_dir}",
                    "--output_path", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [results_file] = list(out.rglob("results_*.json"))
    results = json.loads(results_file.read_text())
    assert set(results["results"]) >= {"teletables", "srsranbench", "teletables_seen"}
    # seen = the 9 questions the adapter trained on (adapters= implies seen_from=), not the
    # 12 of the fixture's train split
    assert results["n-samples"]["teletables_seen"]["effective"] == 9
    assert results["config"]["adapters"][0]["name"] == "teletables"


def test_training_errors_are_one_line(tmp_path):
    line = _error_line(slmbench("train", "teleqna", "--rank", "0"))
    assert "--rank must be > 0" in line
    line = _error_line(slmbench("lm-eval", "--model", "hf-peft", "--model_args",
                                f"adapters={tmp_path / 'missing.yaml'}", "--tasks", "teleqna"))
    assert "missing.yaml does not exist" in line
