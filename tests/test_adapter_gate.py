"""``scripts/adapter_gate.sh`` end to end, on a baseline re-exported from a recorded eval run.

The gate reads the baseline's ``config`` (tasks, limit, chat template) to evaluate the
candidate on the same questions, so a baseline whose config is not the run's identity breaks
it; this runs the real script on a tiny backbone and adapter.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from test_cli import slmbench
from test_peft_router import MODULES, _entry
from tiny_models import build_tiny_base, build_tiny_lora

from harness.artefacts.zoo_manifest import upsert_entry

REPO = Path(__file__).resolve().parents[1]


def test_gate_script_on_a_reexported_baseline(data_dir, tmp_path):
    base_dir, config = build_tiny_base(tmp_path / "base")
    build_tiny_lora(base_dir, tmp_path / "tt", seed=3, rank=4, modules=MODULES)
    manifest = tmp_path / "zoo.yaml"
    upsert_entry(manifest, _entry(tmp_path, "tt", "teletables", base_dir, config))

    proc = slmbench("lm-eval", "--model", "hf-peft", "--model_args", f"adapters={manifest}",
                    "--tasks", "teletables", "--limit", "4", "--metadata",
                    f"data_dir={data_dir}", "--label", "baseline")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = re.findall(r"^slmbench: run folder (\S+)", proc.stderr, re.M)[-1]
    baseline = tmp_path / "baseline.json"
    proc = slmbench("regress", "--export", run, "--out", str(baseline))
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = json.loads(baseline.read_text())["config"]
    assert config["tasks"] == ["teletables"] and config["limit"] == 4

    summary = tmp_path / "gate.md"
    env = {**os.environ, "PYTHON": sys.executable, "SLMBENCH_DATA_DIR": str(data_dir),
           "GATE_STORE": str(tmp_path / "gate_store")}
    gate = subprocess.run(["bash", str(REPO / "scripts" / "adapter_gate.sh"), str(manifest),
                           str(baseline), str(summary)], capture_output=True, text=True,
                          env=env, timeout=900)
    assert gate.returncode == 0, (gate.stdout + gate.stderr)[-3000:]
    text = summary.read_text()
    assert "teletables" in text and "4" in text


def test_gate_script_refuses_a_baseline_without_a_run_config(tmp_path):
    baseline = tmp_path / "old.json"
    baseline.write_text(json.dumps({"config": ["exact_match", "pass@1"],
                                    "tasks": {"teleqna": {}}}))
    gate = subprocess.run(["bash", str(REPO / "scripts" / "adapter_gate.sh"), "zoo.yaml",
                           str(baseline)], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable}, timeout=60)
    assert gate.returncode == 2
    assert gate.stderr.strip().splitlines() == [
        f"adapter_gate: {baseline}: no run config or tasks in the baseline (export it again "
        "with `slmbench regress --export RUN --out FILE`)"]
