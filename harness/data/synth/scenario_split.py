"""Split examples 60/20/20 by scenario, so that no scenario appears in two splits.

Scenario ids (not examples) go through the reference split (``harness.data.splits``):
ranked by a seeded hash and cut at 60% and 80%. Every example then follows its scenario.
The result depends only on the set of scenario ids and the seed, never on input order;
each split is sorted by example id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.data.splits import DEFAULT_SEED, SPLITS, split_records


def assign_scenarios(scenario_ids: Iterable[str], seed: int = DEFAULT_SEED) -> dict[str, str]:
    """Scenario id -> "train" | "validation" | "test"."""
    parts = split_records([{"id": sid} for sid in sorted(set(scenario_ids))], seed)
    return {row["id"]: name for name, rows in parts.items() for row in rows}


def split_by_scenario(
    records: list[dict[str, Any]],
    seed: int = DEFAULT_SEED,
    key: str = "scenario",
    scenario_ids: Iterable[str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Records grouped into train/validation/test by their ``key`` field.

    ``scenario_ids`` (default: those the records carry) is the full scenario list to cut;
    passing it keeps a scenario's split fixed even when deduplication empties another one.
    """
    ids = list(scenario_ids) if scenario_ids is not None else [r[key] for r in records]
    where = assign_scenarios(ids, seed)
    missing = {r[key] for r in records} - where.keys()
    if missing:
        raise ValueError(f"records carry scenario ids not in scenario_ids: {sorted(missing)[:3]}")
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    for record in records:
        out[where[record[key]]].append(record)
    for name in SPLITS:
        out[name].sort(key=lambda r: (str(r["id"]), str(r[key])))
    return out
