"""The run store's durability: atomic writes under a kill, and unfinished runs never listed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from harness.errors import SlmbenchError
from harness.evaluation.identity import id_of, identity
from harness.evaluation.spec import EvalSpec
from harness.runs.store import find_runs, load_run, write_run, write_samples

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from harness.runs.atomic import write_json_atomic
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


def run_id_of(spec: EvalSpec) -> str:
    return id_of(identity(spec))


def test_a_changed_task_definition_is_a_different_run(tmp_path):
    """A run is reused only under the same task YAMLs, prompts and scoring code: an edited
    stop sequence must not be answered from a run made before the edit."""
    include = tmp_path / "my_tasks"
    include.mkdir()
    task = include / "my_task.yaml"
    task.write_text('task: my_task\ngeneration_kwargs:\n  until: ["Customer:"]\n')
    args = EvalSpec(model="hf", tasks=("my_task",), model_args={"pretrained": "x"},
                    include_path=str(include), device="cpu")
    first = run_id_of(args)
    assert run_id_of(args) == first
    task.write_text('task: my_task\ngeneration_kwargs:\n  until: ["\\nCustomer:"]\n')
    assert run_id_of(args) != first


def test_the_same_data_and_weights_copied_again_are_the_same_run(tmp_path, monkeypatch):
    """A data folder or checkpoint copied again (new mtimes, new folder, same bytes) must find
    its finished runs: the shared data is re-copied for every session and fresh clone. An
    edited file, even of the same size, is a different run."""
    import shutil

    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    data, weights = tmp_path / "data", tmp_path / "weights"
    (data / "teleqna").mkdir(parents=True)
    (data / "teleqna" / "TeleQnA.txt").write_text('{"q": 1}')
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"w" * (2 << 20))  # past the digest memo size

    def run_id(data_dir, checkpoint):
        return run_id_of(EvalSpec(model="hf", tasks=("teleqna",), device="cpu",
                                  model_args={"peft": str(checkpoint)},
                                  metadata={"data_dir": str(data_dir)}))

    first = run_id(data, weights)
    assert run_id(data, weights) == first  # second call answers from the digest memo
    shutil.copytree(data, tmp_path / "data_copy")
    shutil.copytree(weights, tmp_path / "weights_copy")
    for path in (tmp_path / "data_copy").rglob("*"):
        os.utime(path, ns=(7, 7))
    # The model argument's path is part of the identity; its files count by content only.
    moved = run_id(tmp_path / "data_copy", weights)
    assert moved == first
    (data / "teleqna" / "TeleQnA.txt").write_text('{"q": 2}')  # same size, new bytes
    assert run_id(data, weights) != first
    (weights / "model.safetensors").write_bytes(b"v" * (2 << 20))
    os.utime(weights / "model.safetensors", ns=(9, 9))
    assert run_id(tmp_path / "data_copy", weights) != first


def test_weights_fingerprint_names_files_relative_to_their_argument(tmp_path):
    """A checkpoint folder copied elsewhere hashes the same: names are relative, bytes count."""
    import shutil

    from harness.hashing import files_digest

    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "a" / "sub" / "adapter_model.safetensors").write_bytes(b"v1")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert files_digest(tmp_path / "a") == files_digest(tmp_path / "b")
    assert files_digest(tmp_path / "a")[0][0] == "sub/adapter_model.safetensors"


def test_a_checkpoints_completion_marker_is_not_part_of_its_weights(tmp_path):
    """The embedded checkpoint, materialized on two machines, holds the same weights but a
    marker with other source paths and mtimes: runs made on one must be found on the other."""
    from harness.artefacts.embedded import MARKER
    from harness.evaluation.identity import model_fingerprint

    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"w")

    def fingerprint(built: str) -> str:
        (folder / MARKER).write_text(built)
        return model_fingerprint("hf", {"pretrained": str(folder)})

    first = fingerprint('{"source": "/home/x/.venv/model.gguf", "mtime_ns": 1}')
    assert fingerprint('{"source": "/srv/y/.venv/model.gguf", "mtime_ns": 2}') == first
    (folder / "model.safetensors").write_bytes(b"v")
    assert fingerprint('{"source": "/srv/y/.venv/model.gguf", "mtime_ns": 2}') != first
