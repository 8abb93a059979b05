"""``scripts/fetch_data.sh``: the pinned real data, checked file by file against its sha256.

The download needs the network and is not run here; the verification, and the link from the
pinned hashes to the committed baseline's ``data_sha256``, are.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import shared_data_or_skip

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "fetch_data.sh"


def _pins() -> list[list[str]]:
    lines = (REPO / "scripts" / "data_pins.tsv").read_text().splitlines()
    return [ln.split("\t") for ln in lines if ln.strip() and not ln.startswith("#")]


def _verify(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), "--verify", str(folder)], capture_output=True,
                          text=True, timeout=300)


def _linked_copy(source: Path, target: Path) -> Path:
    for path, *_ in _pins():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(source / path, target / path)
    return target


def test_the_shared_data_matches_every_pin():
    data = shared_data_or_skip(*(path for path, *_ in _pins()))
    proc = _verify(data)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (f"fetch_data: all {len(_pins())} pinned files in {data} "
                                   "match their sha256")


def test_a_modified_file_is_one_line_naming_it(tmp_path):
    data = shared_data_or_skip(*(path for path, *_ in _pins()))
    copy = _linked_copy(data, tmp_path / "data")
    edited = copy / "srsranbench" / "srsRANBench.json"
    edited.unlink()
    shutil.copyfile(data / "srsranbench" / "srsRANBench.json", edited)
    with edited.open("r+b") as fh:  # one byte of one answer key
        fh.seek(-3, os.SEEK_END)
        fh.write(b"2")
    proc = _verify(copy)
    assert proc.returncode == 1 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"fetch_data: {edited}: sha256 ")
    assert line.endswith("is not the pinned 360d5e32f06395375e97d5d6dd5340f89eaa738e6ecd2f"
                         "736e80794278e4d5b4 (prnshv/srsRANBench@da01522 "
                         "Benchmark/srsRANBench.json)")
    (copy / "telemath" / "telemath.jsonl.gz").unlink()
    proc = _verify(copy)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and lines[0] == line
    assert lines[1:] == [f"fetch_data: {copy}/telemath/telemath.jsonl.gz is missing (pinned: "
                         "open-experiments/Telco-AIX@8ea91e2 telco-sme/benchmarks/open-telco/"
                         "datasets/full/telemath.jsonl.gz)"]


def test_the_pinned_files_give_the_committed_baselines_data_hashes():
    """What the adapter gate scores on in CI: the baseline's data_sha256, so it is not refused."""
    from harness.data.source import load_splits_and_report

    data = shared_data_or_skip(*(path for path, *_ in _pins()))
    assert _verify(data).returncode == 0
    baseline = json.loads((REPO / "baselines" / "embedded.json").read_text())
    for task, entry in baseline["tasks"].items():
        _, report = load_splits_and_report(entry["benchmark"], data_dir=str(data))
        assert report.sha256 == entry["data_sha256"], task


def test_telelogs_is_never_fetched():
    assert not [p for p in _pins() if "telelogs" in "\t".join(p).lower()]


def test_every_workflow_job_fetches_the_pinned_data_first_and_requires_it():
    import yaml

    for path in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        for name, job in workflow["jobs"].items():
            env = {**workflow.get("env", {}), **job.get("env", {})}
            where = f"{path.name} job {name}"
            assert "data" in env.get("SLMBENCH_REQUIRE", "").split(","), where
            assert env.get("SLMBENCH_DATA_DIR"), where
            assert env.get("HF_HUB_OFFLINE") == "1" and "HF_TOKEN" not in env, where
            runs = [step.get("run", "") for step in job["steps"]]
            fetch = next(i for i, run in enumerate(runs) if "scripts/fetch_data.sh" in run)
            uses_data = [i for i, run in enumerate(runs)
                         if any(k in run for k in (".ci/run", "tox -e", "adapter_gate.sh"))]
            assert uses_data and fetch < min(uses_data), where
