"""Adapters published side by side into one manifest all land in it (study.sh's gpu profile)."""

from __future__ import annotations

import dataclasses
import multiprocessing
from pathlib import Path

from harness.artefacts.zoo_manifest import load_manifest, upsert_entry

ZOO = Path(__file__).resolve().parents[1] / "adapters_zoo" / "embedded.yaml"


def _publish(args: tuple[str, int]) -> None:
    path, i = args
    entry = load_manifest(ZOO).adapters[0]
    for _ in range(5):  # several rounds widen the window a lost update needs
        upsert_entry(path, dataclasses.replace(entry, name=f"cat{i}", routes=[f"cat{i}"]))


def test_concurrent_publishes_keep_every_entry(tmp_path):
    path = str(tmp_path / "zoo.yaml")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_publish, [(path, i) for i in range(8)])
    assert sorted(e.name for e in load_manifest(path).adapters) == [f"cat{i}" for i in range(8)]
