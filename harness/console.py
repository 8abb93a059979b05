"""The rich console every long command prints its tables to.

Redirected to a log file (CI, queued runs), rich would crop wide tables to 80 columns and
turn every number into "…"; a non-terminal console is therefore made wide enough to keep
whole rows.
"""

from __future__ import annotations

from rich.console import Console

LOG_WIDTH = 240


def wide_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, LOG_WIDTH))
