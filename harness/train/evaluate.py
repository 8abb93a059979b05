"""Score adapters through ``slmbench lm-eval`` itself.

Training, sweeps and the zoo then report the very numbers a user's own run would give
(same tasks, chat template and response cache).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness.evaluation.record import headline


def run_tasks(tasks: list[str], model_args: str, output_path: Path, limit: int | None = None,
              data_dir: str | None = None, batch_size: int = 8, model: str = "hf",
              label: str | None = None, metadata: dict[str, Any] | None = None) -> dict:
    """Run lm-eval on ``tasks`` and return ``{task: {"metric", "value", "stderr", "n"}}``."""
    from harness.lm_eval_entry import evaluate

    started = time.time()
    argv = ["--model", model, "--model_args", model_args, "--tasks", ",".join(tasks),
            "--batch_size", str(batch_size), "--output_path", str(output_path)]
    if limit:
        argv += ["--limit", str(limit)]
    metadata = {**({"data_dir": str(data_dir)} if data_dir else {}), **(metadata or {})}
    if metadata:
        argv += ["--metadata", json.dumps(metadata, sort_keys=True)]
    if label:
        argv += ["--label", label]
    folder = evaluate(argv)
    results = json.loads((folder / "results.json").read_text())
    scores = {}
    for task in tasks:
        found = headline(results["results"].get(task, {}))
        if found:
            metric, value, stderr = found
            scores[task] = {"metric": metric, "value": value, "stderr": stderr,
                            "n": results.get("n-samples", {}).get(task, {}).get("effective")}
    scores["_wall_s"] = round(time.time() - started, 1)
    scores["_run_id"] = folder.name  # the run-store eval run, e.g. for judges to target
    return scores
