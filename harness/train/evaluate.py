"""Score adapters through the same evaluation path as ``slmbench lm-eval``.

Training, sweeps and the zoo then report the very numbers a user's own run would give
(same tasks, chat template and response cache).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.evaluation.result import EvalResult
from harness.evaluation.spec import EvalSpec


def run_tasks(tasks: list[str], model_args: dict[str, Any], output_path: Path,
              limit: int | None = None, data_dir: str | None = None, batch_size: int = 8,
              model: str = "hf", label: str | None = None,
              metadata: dict[str, Any] | None = None) -> EvalResult:
    """Run lm-eval on ``tasks``: each task's headline score, the run, the wall time."""
    from harness.evaluation.run import run_eval

    started = time.time()
    metadata = {**({"data_dir": str(data_dir)} if data_dir else {}), **(metadata or {})}
    run = run_eval(EvalSpec(model=model, model_args=model_args, tasks=tuple(tasks),
                            batch_size=str(batch_size), output_path=str(output_path),
                            limit=limit or None, metadata=metadata, label=label))
    return EvalResult.of(run, tasks, time.time() - started)
