"""Training's evaluation under a multi-process launch: every rank gets rank 0's scores.

lm-eval gathers the answers on rank 0, and ``run_eval`` records the run there alone and
answers None on the other ranks. ``run_tasks`` used to hand that None to ``EvalResult.of``
and crash every rank but 0 at the end of training.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import SlmbenchError

REPO = Path(__file__).resolve().parents[1]

RANK_SCRIPT = """
import json, os, sys
from pathlib import Path

import torch.distributed as dist

dist.init_process_group("gloo", rank=int(os.environ["RANK"]), world_size=2)
import harness.evaluation.run as run_mod


class RecordedRun:  # what rank 0's run_eval answers: the run it recorded
    run_id = "r0run"

    def json(self, name):
        return {"results": {"teleqna": {"exact_match,pass@1": 0.25,
                                        "exact_match_stderr,pass@1": 0.1}},
                "n-samples": {"teleqna": {"effective": 8}}}

    def tasks(self):
        return {"teleqna": {"value": 0.25, "stderr": 0.1, "n": 8}}


run_mod.run_eval = lambda spec: RecordedRun() if dist.get_rank() == 0 else None
from harness.cli import leave_process_group
from harness.train.evaluate import run_tasks

result = run_tasks(["teleqna"], {"pretrained": "unused"}, Path(sys.argv[1]))
print(json.dumps([dist.get_rank(), result.run_id, result.scores["teleqna"]["value"]]))
leave_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_rank_gets_rank_zeros_result(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "out")],
                              env={**env, "RANK": str(rank)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    answers = sorted(json.loads(out.strip().splitlines()[-1]) for out, _ in outs)
    assert answers == [[0, "r0run", 0.25], [1, "r0run", 0.25]]


def test_a_rank_without_a_process_group_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr("harness.evaluation.run.run_eval", lambda spec: None)
    from harness.train.evaluate import run_tasks

    with pytest.raises(SlmbenchError, match="no run on this process"):
        run_tasks(["teleqna"], {"pretrained": "unused"}, tmp_path)
