"""Score adapters through the same evaluation path as ``slmbench lm-eval``.

Training, sweeps and the zoo then report the very numbers a user's own run would give
(same tasks, chat template and response cache).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.evaluation.result import EvalResult
from harness.evaluation.spec import EvalSpec


def run_tasks(tasks: list[str], model_args: dict[str, Any], output_path: Path,
              limit: int | None = None, data_dir: str | None = None, batch_size: int = 8,
              model: str = "hf", label: str | None = None,
              metadata: dict[str, Any] | None = None) -> EvalResult:
    """Run lm-eval on ``tasks``: each task's headline score, the run, the wall time.

    Under ``accelerate launch`` every rank gets rank 0's result: only rank 0 records the run
    (``run_eval`` answers None elsewhere), but every rank goes on to report and compare it.
    """
    from harness.evaluation.run import run_eval

    started = time.time()
    metadata = {**({"data_dir": str(data_dir)} if data_dir else {}), **(metadata or {})}
    run = run_eval(EvalSpec(model=model, model_args=model_args, tasks=tuple(tasks),
                            batch_size=str(batch_size), output_path=str(output_path),
                            limit=limit or None, metadata=metadata, label=label))
    result = EvalResult.of(run, tasks, time.time() - started) if run is not None else None
    return _from_rank0(result)


def _from_rank0(result: EvalResult | None) -> EvalResult:
    """Rank 0's result on every rank of the process group lm-eval evaluated in.

    Rank 0 alone holds the gathered answers; the others wait here for its scores rather than
    read its run folder, which may still be being written.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [result]
        dist.broadcast_object_list(box, src=0)
        result = box[0]
    if result is None:
        raise SlmbenchError("evaluation returned no run on this process and no process group "
                            "to ask rank 0 for it (RANK is set without a distributed launch?)")
    return result
