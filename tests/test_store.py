"""The run store's durability: atomic writes under a kill, and unfinished runs never listed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from harness.errors import SlmbenchError
from harness.report.store import find_runs, load_run, write_run, write_samples

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from harness.report.atomic import write_json_atomic
    path = Path(sys.argv[1])
    i = 0
    while True:  # rewrite a large JSON forever; the test kills us mid-write
        i += 1
        write_json_atomic(path, {"version": i, "rows": ["x" * 200] * 20000})
        print(i, flush=True)
""")


def test_atomic_write_survives_a_kill_mid_write(tmp_path):
    target = tmp_path / "results.json"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)],
                            stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(3):  # a few complete rewrites, so the kill lands during a later one
            assert proc.stdout.readline()
        time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    data = json.loads(target.read_text())  # never a half-written file
    assert data["version"] >= 3 and len(data["rows"]) == 20000


def test_a_run_without_its_manifest_is_not_finished(tmp_path):
    folder = tmp_path / "eval" / "abc"
    write_samples(folder / "samples" / "t.jsonl", [{"id": "q1", "score": 1.0}])
    # killed before run.json: not listed, and loading it says why in one line
    runs, problems = find_runs(tmp_path)
    assert runs == [] and problems == []
    with pytest.raises(SlmbenchError, match="no run.json; an interrupted run leaves none"):
        load_run(folder)
    write_run(folder, "eval", "abc", {"model": "m"}, ["samples/t.jsonl"])
    [run], _ = find_runs(tmp_path)
    assert run.run_id == "abc" and run.jsonl("samples/t.jsonl") == [{"id": "q1", "score": 1.0}]


def test_schema_version_and_missing_fields_are_refused(tmp_path):
    folder = tmp_path / "r"
    write_run(folder, "eval", "r1", {}, [])
    manifest = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**manifest, "schema_version": 99}))
    with pytest.raises(SlmbenchError, match="schema version 99"):
        load_run(folder)
    (folder / "run.json").write_text("{truncated")
    with pytest.raises(SlmbenchError, match="unreadable run manifest"):
        load_run(folder)


def test_a_changed_task_definition_is_a_different_run(tmp_path):
    """A run is reused only under the same task YAMLs, prompts and scoring code: an edited
    stop sequence must not be answered from a run made before the edit."""
    from types import SimpleNamespace

    from harness.report.eval_record import run_id_of

    include = tmp_path / "my_tasks"
    include.mkdir()
    task = include / "my_task.yaml"
    task.write_text('task: my_task\ngeneration_kwargs:\n  until: ["Customer:"]\n')
    args = SimpleNamespace(model="hf", tasks=["my_task"], model_args={"pretrained": "x"},
                           include_path=str(include), metadata={}, device="cpu")
    first = run_id_of(args)
    assert run_id_of(args) == first
    task.write_text('task: my_task\ngeneration_kwargs:\n  until: ["\\nCustomer:"]\n')
    assert run_id_of(args) != first
