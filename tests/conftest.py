"""Shared fixtures: a data directory in the ot-full schema and a hermetic cache.

The real data is read from ``$SLMBENCH_DATA_DIR``, else ../shared/data beside the checkout.
The real TeleQnA and ORAN-Bench files are linked from it when present; the other six
benchmarks get small files written here in the ``ot-full`` schema. Tests that need the real
files call ``shared_data_or_skip``, which fails instead under ``SLMBENCH_REQUIRE=data``
(tests/require.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from require import required, skip_unless

pytest_plugins = ("pytester",)  # tests of the SLMBENCH_REQUIRE mechanism run pytest itself


def _shared_data() -> Path:
    """``$SLMBENCH_DATA_DIR``, else ``../shared/data`` beside the checkout."""
    given = os.environ.get("SLMBENCH_DATA_DIR")
    if given:
        return Path(given).expanduser().resolve()
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


SHARED_DATA = _shared_data()

WG_LABELS = ["CT1", "CT3", "CT4", "CT6", "RAN1", "RAN2", "RAN3", "RAN4", "RAN5",
             "SA1", "SA2", "SA3", "SA4", "SA5", "SA6", "RAN6"]


def pytest_configure(config) -> None:
    required()  # an unknown SLMBENCH_REQUIRE name stops the run before any test


def shared_data_or_skip(*files: str) -> Path:
    """The real data dir; skips (or fails under SLMBENCH_REQUIRE=data) without ``files``."""
    for name in files or ("teleqna/TeleQnA.txt",):
        skip_unless("data", (SHARED_DATA / name).is_file(), f"{SHARED_DATA / name} is absent")
    return SHARED_DATA


def _mcq_rows(prefix: str, n: int) -> list[dict]:
    return [
        {"question": f"{prefix} question {i}: which value is {i % 4}?",
         "choices": [f"value {k}" for k in range(4)], "answer": i % 4,
         "subject": "fixture"}
        for i in range(n)
    ]


def write_fixture_benchmarks(root: Path, n: int = 20) -> Path:
    """Write the six non-shared benchmarks, in the layouts a user may have, under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    # Canonical JSONL in a benchmark folder.
    for name in ("sixg_bench", "srsranbench"):
        (root / name).mkdir(exist_ok=True)
        with (root / name / "test.jsonl").open("w") as fh:
            for row in _mcq_rows(name, n):
                fh.write(json.dumps(row) + "\n")
    # ot-lite style single JSON arrays named by the Hub config.
    (root / "test_teletables.json").write_text(json.dumps(_mcq_rows("teletables", n)))
    tsg = [{"question": f"Document {i} about {WG_LABELS[i % 16]} matters.",
            "answer": WG_LABELS[i % 16], "file_name": f"doc{i}.docx"} for i in range(max(n, 32))]
    (root / "3gpp_tsg").mkdir(exist_ok=True)
    with (root / "3gpp_tsg" / "test.jsonl").open("w") as fh:
        for row in tsg:
            fh.write(json.dumps(row) + "\n")
    (root / "telemath").mkdir(exist_ok=True)
    with (root / "telemath" / "test.jsonl").open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"question": f"What is {i} times 2.5 in dB?",
                                 "answer": i * 2.5, "category": "fixture"}) + "\n")
    (root / "telelogs").mkdir(exist_ok=True)
    with (root / "telelogs" / "test.jsonl").open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"question": f"Throughput drop in log {i}. Root causes C1..C8.",
                                 "answer": f"C{1 + i % 8}"}) + "\n")
    return root


def write_fixture_mcq(root: Path, name: str, n: int = 20) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    with (root / name / f"{name}.jsonl").open("w") as fh:
        for row in _mcq_rows(name, n):
            fh.write(json.dumps(row) + "\n")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """All eight benchmarks: real TeleQnA/ORAN files when shared data exists, else fixtures."""
    root = write_fixture_benchmarks(tmp_path_factory.mktemp("data"))
    for name in ("teleqna", "oranbench"):
        if (SHARED_DATA / name).is_dir():
            os.symlink(SHARED_DATA / name, root / name)
        else:
            write_fixture_mcq(root, name)
    return root


@pytest.fixture(autouse=True)
def _private_run_store(tmp_path_factory, monkeypatch):
    """Runs recorded by a test go to its own store, never to the checkout's runs/."""
    monkeypatch.setenv("SLMBENCH_RUNS", str(tmp_path_factory.mktemp("runs")))


@pytest.fixture(autouse=True)
def _clean_load_cache():
    """Loads are cached per process; tests that write data must not see another's."""
    from harness.data import source

    source._CACHE.clear()
    yield
