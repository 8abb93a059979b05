"""Sweep grid points as Ray tasks: a local cluster by default, any cluster by address.

Each point is one task holding its own CPUs (and GPU, when asked), so Ray packs as many
points side by side as the cluster has room for. The guarantees of a sequential sweep carry
over because they live in the point, not the scheduler: a point's folder is named by its
config hash and its ``result.json`` is written last, so a task whose worker was killed is
retried once (``max_retries=1``) and resumes from the point's checkpoint, and a point already
finished is returned as it is, never trained again. The folders must be on storage every
node sees (one machine, or a shared filesystem).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from harness.errors import SlmbenchError


def _init(address: str) -> bool:
    """Connect to (or start) a cluster; True when this call started it."""
    try:
        import ray
    except ImportError:
        raise SlmbenchError("sweep --ray needs Ray: pip install 'slmbench[ray]'") from None
    if ray.is_initialized():
        return False
    if address == "local":
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=True,
                 configure_logging=False)
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=True, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise SlmbenchError(
                f"sweep --ray {address}: cannot reach the cluster ({err})") from None
    return True


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, in one line, on a cluster address nothing listens at.

    Ray itself retries an unreachable GCS for minutes before it gives up. ``auto`` (the
    cluster this machine belongs to) is left to Ray.
    """
    import socket

    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SlmbenchError(f"sweep --ray {address}: expected HOST:PORT, ray://HOST:PORT or "
                            "auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise SlmbenchError(f"sweep --ray {address}: cannot reach the cluster ({err})") from None


def _train_point(point, trainer_cls, run_point: Callable):
    return run_point(point, trainer_cls)


def run_on_ray(points: list, address: str, collect: Callable[[object, dict], None],
               run_point: Callable, trainer_cls, cpus_per_point: float = 1.0,
               gpus_per_point: float = 0.0) -> None:
    """Run every point on the cluster at ``address``; ``collect`` each result as it lands.

    ``run_point(point, trainer_cls)`` is the sweep's own (passed in, so this module needs
    nothing from the sweep's: Ray ships the function by reference to its workers).
    """
    import ray

    started = _init(address)
    try:
        task = ray.remote(num_cpus=cpus_per_point, num_gpus=gpus_per_point,
                          max_retries=1)(_train_point)
        pending = {task.remote(p, trainer_cls, run_point): p for p in points}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            point = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayError as err:
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise SlmbenchError(f"sweep: point {point.run_id}: {_why(err)}; finished "
                                    "points are kept, re-run to resume") from None
            collect(point, result)
    finally:
        if started:
            ray.shutdown()


def _why(err) -> str:
    """One line: a worker that died (and died again on its retry), or the task's own error."""
    import ray

    if isinstance(err, ray.exceptions.RayTaskError):
        cause = err.as_instanceof_cause()
        lines = str(getattr(cause, "cause", None) or cause).strip().splitlines()
        return f"failed ({lines[-1] if lines else type(cause).__name__})"
    if isinstance(err, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError):
        return "its Ray worker died twice (killed, or out of memory); retried once"
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__} ({lines[-1] if lines else ''})"
