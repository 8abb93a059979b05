"""The reliability campaign's short version: every bad input handled, and the campaign can fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_data_or_skip

from harness.reliability.campaign import QUICK_KILL_JOBS, failures, run_campaign

ROOT = Path(__file__).parents[1]
RUN = next((p.parent for p in sorted((ROOT / "leaderboards").rglob("eval/*/run.json"))), None)


def test_quick_campaign_mishandles_nothing_and_writes_its_page(tmp_path):
    data = shared_data_or_skip()
    results = run_campaign(data, ROOT / "adapters_zoo" / "embedded.yaml", RUN, tmp_path / "w",
                           tmp_path / "out", fuzz_rows=900, kills=2, kill_jobs=QUICK_KILL_JOBS)
    assert results["failures"] == []
    kills = results["killed"]["kills"]
    assert [k["job"] for k in kills] == ["lm-eval", "judge"]
    assert all(k["rerun_rc"] == 0 and not k["differs"] and not k["corrupt"] for k in kills)
    rows = results["fuzz"]["rows"]
    assert sum(r["injected"] for r in rows) == 900 and len(rows) == 9
    assert all(c["outcome"] == "refused" for c in results["tamper"]["cases"])
    assert len(results["tamper"]["cases"]) >= 30
    assert all(c["passed"] for c in results["secrets"]["checks"])
    page = (tmp_path / "out" / "reliability.md").read_text()
    assert "## Fuzzed data (900 bad rows" in page and "(reliability.png)" in page
    assert "## Killed runs (2 kills, 2 recovered exactly" in page
    assert json.loads((tmp_path / "out" / "reliability.json").read_text())["failures"] == []


def test_the_campaign_catches_a_loader_that_keeps_bad_rows(tmp_path, monkeypatch):
    """With the NUL and length checks switched off, the fuzz part must report it."""
    data = shared_data_or_skip()
    monkeypatch.setattr("harness.data.records._check_unicode", lambda *values: None)
    results = run_campaign(data, ROOT / "adapters_zoo" / "embedded.yaml", RUN, tmp_path / "w",
                           tmp_path / "out", parts=("fuzz",), fuzz_rows=300)
    found = failures(results)
    assert any("wrongly_kept" in line and "nul_escaped" in line for line in found)
    assert "## Failures" in (tmp_path / "out" / "reliability.md").read_text()


def test_a_key_echoed_by_the_server_is_redacted_and_a_leak_would_be_seen(tmp_path, monkeypatch):
    from harness.reliability.secrets import canary_check

    assert canary_check(tmp_path / "ok").passed
    monkeypatch.setattr("harness.openai_compat.transport.redact", lambda text, env, mask="": text)
    leaked = canary_check(tmp_path / "leak")
    assert not leaked.passed and "key found in" in leaked.detail


def test_plain_http_to_another_host_is_refused_in_one_line(monkeypatch):
    from harness.errors import SlmbenchError
    from harness.openai_compat.transport import ChatEndpoint

    monkeypatch.delenv("SLMBENCH_ALLOW_HTTP", raising=False)
    with pytest.raises(SlmbenchError, match=r"^endpoint http://llm.example.com: plain HTTP"):
        ChatEndpoint("http://llm.example.com/v1")
    ChatEndpoint("http://127.0.0.1:9/v1")
    monkeypatch.setenv("SLMBENCH_ALLOW_HTTP", "1")
    ChatEndpoint("http://llm.example.com/v1")


def _eval_run(root: Path, run_id: str, rows: list[dict]) -> Path:
    from harness.runs.store import write_run, write_samples

    folder = root / "runs" / "eval" / run_id
    write_samples(folder / "samples" / "t.jsonl", rows)
    write_run(folder, "eval", run_id, {"model": "fixture"}, ["samples/t.jsonl"],
              extra={"tasks": {"t": {"metric": "acc,none", "samples": "samples/t.jsonl"}}})
    return folder


def test_killed_runs_inspection_sees_corrupt_duplicated_and_differing_runs(tmp_path):
    """The counts the killed-runs part reports can each be non-zero."""
    from harness.reliability.killed_runs import _differences, inspect

    row = {"doc_id": 0, "id": "q0", "resps": [["A"]], "parsed": ["A"], "score": 1.0}
    ref = tmp_path / "ref"
    _eval_run(ref, "e1", [row])
    want, want_kinds, corrupt = inspect(ref)
    assert corrupt == [] and want_kinds == {("eval", "e1"): 1}

    got_dir = tmp_path / "got"
    _eval_run(got_dir, "e1", [{**row, "score": 0.0, "parsed": ["B"]}])
    _eval_run(got_dir / "again", "e1", [row])  # the same run recorded twice
    (got_dir / "results.json").write_text('{"half": ')  # a torn write
    got, kinds, corrupt = inspect(got_dir)
    assert kinds[("eval", "e1")] == 2
    assert corrupt == ["results.json: JSONDecodeError"]
    assert _differences(got, want) == ["eval:e1: differs from the uninterrupted run"]
