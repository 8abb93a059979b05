"""``slmbench sweep --ray``: grid points as Ray tasks on a local cluster, killed and resumed.

Skipped where Ray is not installed (``pip install 'slmbench[ray]'``); ``tox -e ray`` runs it.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import jsonlines
import pytest

ray = pytest.importorskip("ray")
# A cluster start and two SIGKILL detections take minutes on 2 cores: kept out of the
# default suite, run by `tox -e ray`.
pytestmark = pytest.mark.slow

from tiny_models import build_tiny_base, write_tiny_teletables  # noqa: E402

from harness.errors import SlmbenchError  # noqa: E402
from harness.train.config import TrainConfig  # noqa: E402
from harness.train.lora import CHECKPOINT, LoraTrainer  # noqa: E402
from harness.train.sweep import RESULT, RESULTS, run_sweep  # noqa: E402


class KilledOnce(LoraTrainer):
    """Kills its own Ray worker (SIGKILL) at step 3 of rank 4, the first time only."""

    def __init__(self, cfg):
        super().__init__(cfg)
        marker = Path(cfg.output_dir).parent / f"attempts_r{cfg.rank}.txt"
        marker.parent.mkdir(parents=True, exist_ok=True)
        with marker.open("a") as fh:
            fh.write(f"{os.getpid()}\n")
        first = len(marker.read_text().split()) == 1
        if cfg.rank == 4 and first:
            self.on_step = _sigkill_at(3)


class AlwaysKilled(LoraTrainer):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.on_step = _sigkill_at(1)


def _sigkill_at(kill_step: int):
    def on_step(step: int) -> None:
        if step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
    return on_step


@pytest.fixture(scope="module")
def cluster():
    # Workers import the trainers above by module name, so they need the tests folder.
    tests = str(Path(__file__).resolve().parent)
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": tests, "HF_HUB_OFFLINE": "1",
                                       "TOKENIZERS_PARALLELISM": "false"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_ray")
    base_dir, _ = build_tiny_base(root / "base", hidden_size=32)
    write_tiny_teletables(root / "data")
    return TrainConfig(benchmarks=["teletables"], base_model=str(base_dir),
                       data_dir=str(root / "data"), max_steps=4, eval_every=2, batch_size=8,
                       max_val_examples=8, chat_template=False, loss="answer")


def test_killed_worker_is_retried_once_and_resumes(cluster, tiny, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("rank: [2, 4]\nmodules: [attention]\n")
    sweep = tmp_path / "sweep"
    results = run_sweep(tiny, str(grid), sweep, eval_limit=0, trainer_cls=KilledOnce,
                        ray_address="auto")
    assert [r["rank"] for r in results] == [2, 4]
    with jsonlines.open(sweep / RESULTS) as reader:
        assert [r["rank"] for r in reader] == [2, 4]  # each point once, in grid order
    assert len((sweep / "attempts_r4.txt").read_text().split()) == 2  # killed, retried once
    assert len((sweep / "attempts_r2.txt").read_text().split()) == 1
    r4 = next(sweep.glob("r4_*"))
    record = json.loads((r4 / "train_record.json").read_text())
    assert record["train"]["steps"] == 4 and (r4 / CHECKPOINT).is_dir()

    # Re-running finds every point finished: nothing is trained again.
    stamps = {p: (p / RESULT).stat().st_mtime_ns for p in sweep.glob("r*_*")}
    again = run_sweep(tiny, str(grid), sweep, eval_limit=0, trainer_cls=KilledOnce,
                      ray_address="auto")
    assert [r["run_id"] for r in again] == [r["run_id"] for r in results]
    assert {p: (p / RESULT).stat().st_mtime_ns for p in stamps} == stamps
    assert len((sweep / "attempts_r4.txt").read_text().split()) == 2


def test_a_point_that_keeps_dying_is_one_line_and_keeps_the_rest(cluster, tiny, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("rank: [2]\nmodules: [attention]\n")
    with pytest.raises(SlmbenchError, match=r"point r2_a\w+: its Ray worker died twice"):
        run_sweep(tiny, str(grid), tmp_path / "sweep", eval_limit=0, trainer_cls=AlwaysKilled,
                  ray_address="auto")
