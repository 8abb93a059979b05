"""Fixed-format Markdown cells and tables for the leaderboards.

Every number goes through one of these helpers so that the same record always renders to the
same bytes, and a value that was not measured reads "—" rather than a misleading 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

DASH = "—"


def is_num(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def num(value: Any, spec: str = ".3f", suffix: str = "") -> str:
    return f"{value:{spec}}{suffix}" if is_num(value) else DASH


def pm(value: Any, stderr: Any, spec: str = ".3f") -> str:
    """``value ± stderr``; a value whose stderr is unknown is still shown, bare."""
    if not is_num(value):
        return DASH
    return f"{value:{spec}} ± {stderr:{spec}}" if is_num(stderr) else f"{value:{spec}}"


def delta_ci(delta: Any) -> str:
    """``+0.010 [-0.020, +0.040]`` from a paired record, current keys or bench schema 1's."""
    if not isinstance(delta, dict):
        return DASH
    low, high = (delta.get("ci_low", delta.get("ci95_low")),
                 delta.get("ci_high", delta.get("ci95_high")))
    if not all(is_num(v) for v in (delta.get("delta"), low, high)):
        return DASH
    return f"{delta['delta']:+.3f} [{low:+.3f}, {high:+.3f}]"


def ratio(value: Any, baseline: Any) -> str:
    return f"{value / baseline:.2f}×" if is_num(value) and is_num(baseline) and baseline else DASH


def integer(value: Any) -> str:
    return f"{int(value):,}" if is_num(value) else DASH


def esc(text: Any) -> str:
    """A record's free text inside a table cell: pipes would split the cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def code(text: Any) -> str:
    return f"`{esc(text)}`"


def bold(cell: str) -> str:
    return f"**{cell}**" if cell != DASH else cell


def table(headers: list[str], rows: list[list[str]], right: Iterable[int] = ()) -> str:
    """A GitHub-flavoured Markdown table; columns in ``right`` are right-aligned numbers."""
    right = set(right)
    sep = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = [headers, sep, *rows]
    return "".join("| " + " | ".join(line) + " |\n" for line in lines)


def sources(run_ids: Iterable[str]) -> str:
    ids = sorted(set(run_ids))
    return ("Source run" + ("s" if len(ids) != 1 else "") + ": "
            + ", ".join(code(i) for i in ids) + ".\n")
