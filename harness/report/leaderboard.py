"""``slmbench leaderboard``: Markdown leaderboards (and PNG figures) from the run store.

The leaderboards are a pure function of the run records: no clock, no environment, sorted
iteration and fixed number formats, so the same records always give the same bytes and a
rendered folder can be committed and diffed. Every table names the run ids it came from, and
every record that could not be read is listed in the index rather than silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from harness.report import (
    distill_section,
    edge_section,
    module_section,
    quant_section,
    sections,
    study_section,
    sweep_sections,
)
from harness.report.leaderboard_data import Records, collect
from harness.report.sections import Section
from harness.runs.atomic import write_text_atomic

log = logging.getLogger(__name__)

BUILDERS: tuple[Callable[[Records, Path], Section | None], ...] = (
    sections.accuracy, sections.seen_unseen, study_section.study, sweep_sections.rank_ablation,
    module_section.module_ablation, sweep_sections.sweep, quant_section.quantization,
    distill_section.distill_arms, edge_section.edge)
SECTION_NAMES = ("accuracy", "seen_unseen", "study", "rank_ablation", "module_ablation", "sweep",
                 "quantization", "distill", "edge")
# Figures this module owns in the output folder (stale ones are removed on re-render).
IMAGE_PREFIXES = ("rank_ablation", "sweep_", "quantization_")


def _index(records: Records, built: list[Section]) -> str:
    counts = ", ".join(f"{n} {kind}" for kind, n in records.counts.items())
    total = sum(records.counts.values())
    lines = ["# slmbench leaderboards\n\n",
             f"Rendered from the run store ({counts or 'no'} run{'s' if total != 1 else ''}). "
             "Every table names the run "
             "ids its numbers came from; `slmbench leaderboard` re-renders this folder from "
             "the records, byte for byte.\n\n", "## Sections\n\n"]
    lines += [f"- [{s.title}]({s.name}.md)\n" for s in built] or ["No section has data yet.\n"]
    lines.append("\n## Problems\n\n")
    if records.problems:
        lines.append("Records that could not be read and were left out (paths relative to the "
                     "runs folder):\n\n")
        lines += [f"- {line}\n" for line in records.problems]
    else:
        lines.append("None: every record passed its checks.\n")
    return "".join(lines)


def _remove_stale(out: Path, written: list[Path]) -> None:
    """Drop this module's outputs left from an earlier render whose data is gone."""
    keep = {p.name for p in written}
    stale = [out / f"{name}.md" for name in SECTION_NAMES]
    stale += [p for p in out.glob("*.png") if p.name.startswith(IMAGE_PREFIXES)]
    for path in stale:
        if path.name not in keep and path.is_file():
            path.unlink()


def render_leaderboards(runs_root: str | Path, out_dir: str | Path) -> list[Path]:
    """Write ``<section>.md`` for each section with data, its figures and ``README.md``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = collect(runs_root)
    for line in records.problems:  # on the console too, not only in the index's Problems
        log.warning("leaderboard: left out %s/%s", Path(runs_root).as_posix(), line)
    built, written = [], []
    for build in BUILDERS:
        section = build(records, out)
        if section is None:
            continue
        path = out / f"{section.name}.md"
        write_text_atomic(path, section.text)
        built.append(section)
        written += [path, *section.images]
    index = out / "README.md"
    write_text_atomic(index, _index(records, built))
    written.append(index)
    _remove_stale(out, written)
    return written
