"""``scripts/study.sh`` end to end on a tiny backbone: its plumbing, not its numbers.

The study's real runs take hours (CPU) or a GPU; what can break cheaply is the script
itself: budgets per category, the zoo it publishes into, the run labels the page pairs, the
tables it scores, the zoo's recorded test metrics and the rendered page. A tiny random Llama
on a learnable TeleTables stand-in takes it through every stage on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_models import build_tiny_base, write_tiny_teletables

ROOT = Path(__file__).parents[1]
MODELS = {"hf": ("hf", "hf-peft"), "llama": ("llama-cpp", "llama-cpp-peft")}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("engine", ["hf", "llama"])
def test_study_script_trains_scores_and_renders_one_category(tmp_path, engine):
    """On transformers, and on llama.cpp (the backbone as one f16 GGUF, the zoo routed)."""
    base, _ = build_tiny_base(tmp_path / "base", hidden_size=64, init_range=0.3)
    data = write_tiny_teletables(tmp_path / "data", rows=60)
    zoo, store, out = tmp_path / "zoo.yaml", tmp_path / "runs", tmp_path / "pages"
    # The script, run from a copy of its folder: its training runs and logs land there.
    work = tmp_path / "work"
    (work / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "study.sh", work / "scripts" / "study.sh")
    env = {**os.environ, "MODEL": str(base), "DATA_DIR": str(data), "ZOO": str(zoo),
           "ZOO_LABEL": "zoo", "STORE": str(store), "OUT": str(out), "ENGINE": engine,
           "CATEGORIES": "teletables", "TABLES": "pass1 cloze", "PROFILE": "cpu",
           "BUDGETS": "teletables:16:128", "BATCH": "4", "EVAL_LIMIT": "6",
           "CLOZE_LIMIT": "6", "SLMBENCH": str(Path(sys.executable).parent / "slmbench"),
           "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(work / "scripts" / "study.sh")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"study: profile cpu, engine {engine}" in done.stderr
    assert "chat template yes" in done.stderr  # the tiny model has the embedded tokenizer's
    for line in ("study: trained teletables", "study: scored backbone on teletables",
                 "study: scored zoo on teletables_cloze"):
        assert line in done.stderr

    entry = yaml.safe_load(zoo.read_text())["adapters"][0]
    assert entry["task"] == "teletables" and entry["permute_options"] is True
    assert entry["train_subset"]["examples"] == {"teletables": 16}
    assert set(entry["test_metrics"]) == {"teletables", "teletables_cloze"}
    base_label = "base" if engine == "hf" else "base@llama.cpp-f16"
    runs = [json.loads(p.read_text()) for p in (store / "eval").glob("*/run.json")]
    assert sorted((r["label"], r["config"]["model"], r["config"]["apply_chat_template"])
                  for r in runs) == sorted(
        [(base_label, MODELS[engine][0], True)] * 2
        + [(f"{base_label}+zoo", MODELS[engine][1], True)] * 2)  # Pass@1 and cloze each
    page = (out / "study.md").read_text()
    assert f"## {base_label}+zoo vs {base_label}" in page and "| teletables |" in page
    assert (work / "runs" / "study_logs" / "train_teletables.log").is_file()


def _study_calls(tmp_path: Path, **env: str) -> list[str]:
    """The slmbench command lines study.sh would run (train stage, then one Pass@1 table)."""
    work = tmp_path / "work"
    (work / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "scripts" / "study.sh", work / "scripts" / "study.sh")
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "slmbench"
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    base = {**os.environ, "SLMBENCH": str(fake), "PROFILE": "cpu", "ENGINE": "hf",
            "CHAT": "no", "CATEGORIES": "teletables", "TABLES": "pass1",
            "STORE": str(tmp_path / "runs"), "OUT": str(tmp_path / "pages")}
    for name in ("ZOO", "ZOO_LABEL", "PERMUTE"):
        base.pop(name, None)
    for stage in ("train", "eval"):
        done = subprocess.run(["bash", str(work / "scripts" / "study.sh"), stage],
                              env={**base, **env}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
    return calls.read_text().splitlines()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_default_study_is_the_shuffled_zoo_and_never_writes_into_the_first(tmp_path):
    calls = _study_calls(tmp_path / "default")
    train = next(c for c in calls if c.startswith("train teletables"))
    assert "--zoo adapters_zoo/embedded_shuffled.yaml" in train
    assert "permute-options" not in train  # slmbench train's default: shuffled
    assert any("--label embedded+shuffled " in c for c in calls if c.startswith("lm-eval"))
    assert not any("adapters_zoo/embedded.yaml" in c for c in calls)

    first = _study_calls(tmp_path / "first", ZOO="adapters_zoo/embedded.yaml", ZOO_LABEL="zoo",
                         PERMUTE="no")
    train = next(c for c in first if c.startswith("train teletables"))
    assert "--zoo adapters_zoo/embedded.yaml" in train and "--no-permute-options" in train
    assert any("--label embedded+zoo " in c for c in first if c.startswith("lm-eval"))
