"""``scripts/split_overlap.py``: near-copies of trained questions are found, templates are not."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "scripts" / "split_overlap.py"
INSTRUCTION = "Classify the following excerpt into one working group of the list below please. "


def _script():
    spec = importlib.util.spec_from_file_location("split_overlap", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_copy_overlaps_fully_and_a_shared_instruction_does_not_count():
    script = _script()
    trained = [INSTRUCTION + f"excerpt {i} about the radio link control of cell {i} and its "
               f"timers number {i} in release {i}" for i in range(4)]
    test = {"copy": trained[2],
            "new": INSTRUCTION + "a wholly different text on charging records for billing "
                                 "systems in the core network domain"}
    overlap, dropped = script.overlaps(trained, test)
    assert dropped > 0  # the instruction's 8-grams appear in every trained text
    assert overlap["copy"] == 1.0
    assert overlap["new"] == 0.0  # only the instruction was shared, and it is dropped
