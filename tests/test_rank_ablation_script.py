"""``scripts/rank_ablation.sh``'s plumbing across machines, with a stand-in ``slmbench``.

The ablation takes longer than a session's machine lives: each finished point is published
as records (no adapter), and the next machine must keep those points and train only the
rest. Its real runs take hours; what can break cheaply is the seeding and publishing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
SWEEP = "rank_oranbench_800_shuffled"

# Asserts the published point came back as a record, then "finishes" the new point: its
# adapter-free result, training record and eval run, and results.jsonl over both.
STAND_IN = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    from pathlib import Path

    runs = Path(os.environ["SLMBENCH_RUNS"])
    with open(os.environ["CALLS"], "a") as calls:
        calls.write(" ".join(sys.argv[1:]) + "\\n")
    if sys.argv[1] == "sweep":
        sweep = Path(sys.argv[sys.argv.index("--sweep-dir") + 1])
        kept = json.loads((sweep / "r4_old" / "result.json").read_text())
        new = {{"run_id": "r8_new", "rank": 8, "best_val_loss": 0.5, "eval_run_id": "ev8",
                "circular_eval_run_id": "circ8", "scores": {{}}}}
        (sweep / "r8_new").mkdir(parents=True)
        (sweep / "r8_new" / "train_record.json").write_text(
            json.dumps({{"data": {{"train_sha256": "zoo-draw"}}}}))
        for run_id in ("ev8", "circ8"):
            (runs / "eval" / run_id).mkdir(parents=True)
            (runs / "eval" / run_id / "run.json").write_text("{{}}")
        (sweep / "results.jsonl").write_text(json.dumps(kept) + "\\n" + json.dumps(new) + "\\n")
        (sweep / "run.json").write_text("{{}}")
    """)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_published_points_are_kept_and_new_ones_published_with_their_records(tmp_path):
    work = tmp_path / "work"
    (work / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "rank_ablation.sh", work / "scripts")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    stand_in = bin_dir / "slmbench"
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(0o755)

    store, runs = tmp_path / "store", tmp_path / "runs"
    published = store / "sweeps" / SWEEP
    (published / "r4_old").mkdir(parents=True)
    old = {"run_id": "r4_old", "rank": 4, "best_val_loss": 0.6, "eval_run_id": "ev4",
           "circular_eval_run_id": "circ4", "scores": {}}
    (published / "results.jsonl").write_text(json.dumps(old) + "\n")
    (published / "r4_old" / "train_record.json").write_text(
        json.dumps({"data": {"train_sha256": "zoo-draw"}}))
    for run_id in ("ev4", "circ4"):  # published with the point; not on this machine
        (store / "eval" / run_id).mkdir(parents=True)
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(yaml.safe_dump({"adapters": [{"name": "oranbench",
                                                 "train_data_sha256": "zoo-draw"}]}))
    env = {**os.environ, "PY": str(bin_dir), "STORE": str(store), "OUT": str(tmp_path / "out"),
           "ZOO": str(zoo), "SLMBENCH_RUNS": str(runs), "CALLS": str(tmp_path / "calls"),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", str(work / "scripts" / "rank_ablation.sh")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "r4_old: published earlier, kept as recorded" in done.stdout
    assert "r4_old: rank 4, val loss 0.6, same draw as the zoo adapter" in done.stdout
    assert "r8_new: rank 8, val loss 0.5, same draw as the zoo adapter" in done.stdout

    rows = [json.loads(line) for line in (published / "results.jsonl").read_text().splitlines()]
    assert [r["run_id"] for r in rows] == ["r4_old", "r8_new"]
    assert (published / "r8_new" / "train_record.json").is_file()
    assert {p.name for p in (store / "eval").iterdir()} == {"ev4", "circ4", "ev8", "circ8"}
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith("sweep oranbench --grid rank") and "--circular" in calls[0]
    assert calls[1] == f"leaderboard --runs {store} --out {tmp_path / 'out'}"
