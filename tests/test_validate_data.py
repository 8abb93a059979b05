"""``slmbench validate --data-dir``: a benchmark without data is reported, not failed.

TeleLogs is absent from ../shared/data by design (its publishers ask that it not be
redistributed), so the README's own ``slmbench validate --data-dir ../shared/data`` used to
exit 1 with six FAIL lines. Absent data fails only when it is required.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import shared_data_or_skip, write_fixture_mcq

from harness.data.benchmarks import BENCHMARKS
from harness.data.source import looked_for
from harness.validate import _build_on_data, absent_findings, data_required


def test_where_it_looked_names_each_folder_once():
    assert looked_for(BENCHMARKS["telelogs"]).startswith("telelogs/ with TeleQnA.txt, ")
    assert looked_for(BENCHMARKS["three_gpp_tsg"]).startswith("three_gpp_tsg/ or 3gpp_tsg/ with")


def test_tasks_of_an_absent_benchmark_are_set_aside_and_the_others_built(tmp_path):
    write_fixture_mcq(tmp_path, "teleqna")
    absent, broken = _build_on_data({"telelogs", "telelogs_mc", "teleqna"}, str(tmp_path))
    assert absent == {"telelogs": (["telelogs", "telelogs_mc"],
                                   looked_for(BENCHMARKS["telelogs"]))}
    assert broken == {}


def test_absent_data_is_a_skip_unless_required(monkeypatch):
    absent = {"telelogs": (["telelogs", "telelogs_mc"], "telelogs/ with *.jsonl")}
    skipped, problems = absent_findings(absent, required=False)
    assert skipped == ["telelogs: no data here (2 tasks not built; looked for telelogs/ with "
                       "*.jsonl)"] and problems == {}
    skipped, problems = absent_findings(absent, required=True)
    assert skipped == [] and problems == {
        "telelogs": "no data here (2 tasks not built; looked for telelogs/ with *.jsonl); "
                    "data is required"}
    monkeypatch.delenv("SLMBENCH_REQUIRE", raising=False)
    assert not data_required() and data_required(flag=True)
    monkeypatch.setenv("SLMBENCH_REQUIRE", "gpu, data")
    assert data_required()


def test_help_examples_keep_their_line_continuations():
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--model hf-peft \\\n        --model_args adapters=" in proc.stdout
    assert "hf-peft         --model_args" not in proc.stdout


@pytest.mark.slow
def test_validate_on_the_shared_data_passes_and_names_telelogs(monkeypatch):
    """The README's example; minutes on 2 cores (every task is built on the real data)."""
    data = shared_data_or_skip()
    monkeypatch.delenv("SLMBENCH_REQUIRE", raising=False)
    args = [sys.executable, "-m", "harness.cli", "validate", "--data-dir", str(data)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "FAIL" not in proc.stdout
    assert "skip telelogs: no data here (6 tasks not built; looked for telelogs/ with" in \
        proc.stdout
    proc = subprocess.run([*args, "--require-data"], capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 1
    assert [ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL")] == [
        f"FAIL telelogs: no data here (6 tasks not built; looked for "
        f"{looked_for(BENCHMARKS['telelogs'])}); data is required"]
