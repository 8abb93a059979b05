"""The reliability campaign's short version: every bad input handled, and the campaign can fail."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.reliability.campaign import failures, run_campaign

DATA = Path(os.environ.get("SLMBENCH_DATA_DIR", Path(__file__).parents[1].parent / "shared"
                           / "data"))
ROOT = Path(__file__).parents[1]
RUN = next((p.parent for p in sorted((ROOT / "leaderboards").rglob("eval/*/run.json"))), None)
needs_data = pytest.mark.skipif(not (DATA / "teleqna").is_dir(), reason="no ../shared/data")


@needs_data
def test_quick_campaign_mishandles_nothing_and_writes_its_page(tmp_path):
    results = run_campaign(DATA, ROOT / "adapters_zoo" / "embedded.yaml", RUN, tmp_path / "w",
                           tmp_path / "out", fuzz_rows=900)
    assert results["failures"] == []
    rows = results["fuzz"]["rows"]
    assert sum(r["injected"] for r in rows) == 900 and len(rows) == 9
    assert all(c["outcome"] == "refused" for c in results["tamper"]["cases"])
    assert len(results["tamper"]["cases"]) >= 30
    assert all(c["passed"] for c in results["secrets"]["checks"])
    page = (tmp_path / "out" / "reliability.md").read_text()
    assert "## Fuzzed data (900 bad rows" in page and "(reliability.png)" in page
    assert json.loads((tmp_path / "out" / "reliability.json").read_text())["failures"] == []


@needs_data
def test_the_campaign_catches_a_loader_that_keeps_bad_rows(tmp_path, monkeypatch):
    """With the NUL and length checks switched off, the fuzz part must report it."""
    monkeypatch.setattr("harness.data.records._check_unicode", lambda *values: None)
    results = run_campaign(DATA, ROOT / "adapters_zoo" / "embedded.yaml", RUN, tmp_path / "w",
                           tmp_path / "out", parts=("fuzz",), fuzz_rows=300)
    found = failures(results)
    assert any("wrongly_kept" in line and "nul_escaped" in line for line in found)
    assert "## Failures" in (tmp_path / "out" / "reliability.md").read_text()


def test_a_key_echoed_by_the_server_is_redacted_and_a_leak_would_be_seen(tmp_path, monkeypatch):
    from harness.reliability.secrets import canary_check

    assert canary_check(tmp_path / "ok").passed
    monkeypatch.setattr("harness.openai_http.redact", lambda text, env, mask="": text)
    leaked = canary_check(tmp_path / "leak")
    assert not leaked.passed and "key found in" in leaked.detail


def test_plain_http_to_another_host_is_refused_in_one_line(monkeypatch):
    from harness.errors import SlmbenchError
    from harness.openai_http import ChatEndpoint

    monkeypatch.delenv("SLMBENCH_ALLOW_HTTP", raising=False)
    with pytest.raises(SlmbenchError, match=r"^endpoint http://llm.example.com: plain HTTP"):
        ChatEndpoint("http://llm.example.com/v1")
    ChatEndpoint("http://127.0.0.1:9/v1")
    monkeypatch.setenv("SLMBENCH_ALLOW_HTTP", "1")
    ChatEndpoint("http://llm.example.com/v1")
