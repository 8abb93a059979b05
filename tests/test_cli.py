"""``slmbench lm-eval`` end to end on the embedded model, and its one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

SIX = ["teleqna", "sixg_bench", "three_gpp_tsg", "oranbench", "srsranbench", "teletables"]


def slmbench(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def _error_line(proc):
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("slmbench: error:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def test_telecom_all_end_to_end_on_the_embedded_model(data_dir, tmp_path):
    out = tmp_path / "out"
    proc = slmbench("lm-eval", "--tasks", "telecom_all", "--limit", "3",
                    "--metadata", f"data_dir={data_dir}", "--log_samples",
                    "--output_path", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "telecom_all" in proc.stdout and "exact_match" in proc.stdout
    [results_file] = list(out.rglob("results_*.json"))
    results = json.loads(results_file.read_text())
    for task in SIX:
        scores = results["results"][task]
        assert 0.0 <= scores["exact_match,pass@1"] <= 1.0
        assert "unparsed,pass@1" in scores
        assert results["n-samples"][task]["effective"] == 3
    assert "exact_match,pass@1" in results["groups"]["telecom_all"]
    assert results["config"]["model_args"]["pretrained"].endswith("SmolLM2-135M-Instruct-Q4_1-v1")
    # per-sample logs keep the raw generation and the parsed answer or the unparsed reason
    samples = [json.loads(line) for f in out.rglob("samples_teleqna_*.jsonl")
               for line in f.read_text().splitlines()]
    assert len(samples) == 3
    for sample in samples:
        filtered = sample["filtered_resps"][0]
        assert filtered in "ABCDE" or filtered.startswith("[unparsed] ")
    # the data report travels with the results
    report = results["slmbench_data_report"]
    assert report["oranbench"]["kept"] > 0 and (out / "slmbench_data_report.json").is_file()
    # ... and the run store holds the same run: results, per-question records, manifest.
    from harness.runs.store import find_runs, store_root

    [run], problems = find_runs(store_root(), kind="eval")
    assert not problems
    info = run.tasks()["teleqna"]
    assert info["value"] == scores_of(results, "teleqna") and info["data_sha256"]
    rows = run.samples("teleqna")
    assert [r["doc_id"] for r in rows] == [0, 1, 2]
    assert all(r["id"] and r["resps"] and r["correct"] in (True, False) for r in rows)
    assert "sha" in run.manifest["environment"]["git"] and run.manifest["model"]["pretrained"]
    # run.json's config is the run's identity: it hashes to the run id and names the tasks.
    from harness.evaluation.identity import id_of

    config = run.manifest["config"]
    assert isinstance(config, dict) and id_of(config) == run.run_id
    assert config["tasks"] == ["telecom_all"] and config["limit"] == 3


def scores_of(results, task):
    return results["results"][task]["exact_match,pass@1"]


def test_unknown_task_is_a_one_line_error():
    line = _error_line(slmbench("lm-eval", "--tasks", "telecom_al", "--limit", "1"))
    assert "unknown task 'telecom_al'" in line and "telecom_all" in line


def test_bad_data_dir_metadata_is_a_one_line_error(tmp_path):
    line = _error_line(slmbench("lm-eval", "--tasks", "teleqna", "--limit", "1",
                                "--metadata", f"data_dir={tmp_path}/missing"))
    assert f"data_dir={tmp_path}/missing: directory not found" in line


def test_missing_benchmark_file_names_the_data_dir(tmp_path):
    (tmp_path / "teleqna").mkdir()
    line = _error_line(slmbench("lm-eval", "--tasks", "teleqna", "--limit", "1",
                                "--metadata", f"data_dir={tmp_path}"))
    assert f"data dir {tmp_path} has no files for teleqna" in line


@pytest.mark.parametrize("sub", ["ls", "validate"])
def test_lm_eval_subcommands_see_slmbench_tasks(sub):
    args = ["lm-eval", "ls", "tasks"] if sub == "ls" else ["lm-eval", "validate", "--tasks",
                                                           "telecom_all,teleqna_maj4"]
    proc = slmbench(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("telecom_all" in proc.stdout) if sub == "ls" else ("valid" in proc.stdout)


def test_response_cache_is_keyed_by_the_weights(tmp_path):
    import os

    from harness.evaluation.identity import model_fingerprint

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"v1")
    first = model_fingerprint("hf", {"pretrained": "x", "peft": str(adapter)})
    assert first == model_fingerprint("hf", {"pretrained": "x", "peft": str(adapter)})
    assert first != model_fingerprint("hf", {"pretrained": "y", "peft": str(adapter)})
    (adapter / "adapter_model.safetensors").write_bytes(b"v2")  # retrained in place
    os.utime(adapter / "adapter_model.safetensors", ns=(5, 5))
    assert first != model_fingerprint("hf", {"pretrained": "x", "peft": str(adapter)})


def test_rerun_reuses_the_response_cache(data_dir, tmp_path):
    out = tmp_path / "out"
    args = ["lm-eval", "--tasks", "teleqna_mc", "--limit", "4", "--metadata",
            f"data_dir={data_dir}", "--output_path", str(out)]
    first = slmbench(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    [cache] = list((out / ".slmbench_cache").glob("*.db"))
    assert cache.stat().st_size > 0
    again = slmbench(*args, "--force")  # re-evaluate: every response comes from the cache
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Requests remaining: 0" in again.stderr
    assert json.loads(max(out.rglob("results_*.json")).read_text())["results"]["teleqna_mc"]
    # Without --force the finished run is recognised in the run store and not re-run.
    reused = slmbench(*args)
    assert reused.returncode == 0 and "reused run" in reused.stdout, reused.stderr[-2000:]
    assert "Requests remaining" not in reused.stderr
    # --fresh runs the model again: every request answered anew (a timing needs that), and
    # the cache filled again for the next resume.
    fresh = slmbench(*args, "--fresh")
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    remaining = re.findall(r"Requests remaining: (\d+)", fresh.stderr)
    assert remaining and int(remaining[0]) > 0, fresh.stderr[-2000:]
    assert cache.stat().st_size > 0
