"""``accelerate launch`` data-parallel evaluation through ``slmbench lm-eval`` on 2 CPU processes.

lm-eval splits the requests over the ranks and gathers them on rank 0; slmbench records the
run once (rank 0), and the per-question answers equal a single-process run's.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tiny_models import build_tiny_base

from harness.runs.store import find_runs


def _lm_eval(prefix: list[str], base, data_dir, store, *extra: str):
    # accelerate's CPU data parallelism: a torchrun launch with ACCELERATE_USE_CPU (gloo);
    # `--cpu` alone would start a single process.
    env = {**os.environ, "ACCELERATE_USE_CPU": "1"}
    return subprocess.run(
        [*prefix, "lm-eval", "--model", "slm-hf", "--model_args", f"pretrained={base}",
         "--tasks", "teletables_mc_seen", "--limit", "8", "--batch_size", "2",
         "--metadata", f"data_dir={data_dir}", "--store", str(store), "--no_chat_template",
         *extra], capture_output=True, text=True, timeout=900, env=env)


def test_two_cpu_processes_record_one_run_with_single_process_answers(data_dir, tmp_path):
    base, _ = build_tiny_base(tmp_path / "base", hidden_size=32)
    store = tmp_path / "runs"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
              "--num_processes", "2", "-m", "harness.cli"]
    proc = _lm_eval(launch, base, data_dir, store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on rank 1" in proc.stderr  # lm-eval built rank 1's share of the requests
    runs, problems = find_runs(store, kind="eval")
    assert not problems and len(runs) == 1  # rank 1 recorded nothing
    parallel = runs[0].per_doc("teletables_mc_seen")
    assert len(parallel) == 8  # both halves gathered

    proc = _lm_eval([sys.executable, "-m", "harness.cli"], base, data_dir, store, "--force")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = find_runs(store, kind="eval")[0]
    assert run.per_doc("teletables_mc_seen") == parallel
