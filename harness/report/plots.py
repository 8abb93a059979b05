"""Leaderboard figures, rendered headless and byte-stable.

Figures are built on a bare ``Figure`` with the Agg canvas (no pyplot state, no display
needed) under matplotlib's default style, so a user's matplotlibrc does not change the
bytes; PNGs are saved without the Software stamp or any date, so rendering the same records
twice gives identical files and a leaderboard folder diffs cleanly in version control.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.report.mdtable import is_num

FIGSIZE, DPI = (6.4, 4.4), 100


def pareto_front(points: Sequence[tuple[float, float, Any]]) -> list[tuple[float, float, Any]]:
    """Points no other point beats on both axes (higher x and higher y are better), by x."""
    front, best_y = [], None
    for point in sorted(points, key=lambda p: (-p[0], -p[1])):
        if best_y is None or point[1] > best_y:
            front.append(point)
            best_y = point[1]
    return sorted(front, key=lambda p: (p[0], p[1]))


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _render(path: Path, draw) -> Path:
    from matplotlib import style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with style.context("default"):
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        FigureCanvasAgg(fig)
        draw(fig.add_subplot())
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    _write_bytes_atomic(path, buffer.getvalue())
    return path


def _annotate(ax, x: float, y: float, text: str) -> None:
    ax.margins(x=0.12, y=0.12)  # room for the labels of points at the edges
    ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)


def rank_ablation_plot(series: list[tuple[str, list[tuple[Any, Any, Any, str]]]],
                       path: Path) -> Path | None:
    """Accuracy vs adapter MB, one line per sweep and benchmark, each point named by rank."""
    clean = [(name, [p for p in pts if is_num(p[0]) and is_num(p[1])]) for name, pts in series]
    clean = [(name, pts) for name, pts in clean if pts]
    if not clean:
        return None

    def draw(ax) -> None:
        for name, pts in clean:
            errs = [p[2] if is_num(p[2]) else 0.0 for p in pts]
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=errs, marker="o",
                        capsize=3, label=name)
            for x, y, _, text in pts:
                _annotate(ax, x, y, text)
        ax.set_xscale("log", base=2)
        ticks = sorted({p[0] for _, pts in clean for p in pts})
        ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("adapter size (MB, log scale)")
        ax.set_ylabel("accuracy (± stderr)")
        ax.set_title("Rank ablation")
        ax.legend(fontsize=8)

    return _render(path, draw)


def loss_quality_plot(title: str, points: list[tuple[Any, Any, str]], quality: str,
                      path: Path) -> Path | None:
    """One sweep's configurations by validation loss and quality, to see if lower loss wins."""
    pts = [p for p in points if is_num(p[0]) and is_num(p[1])]
    if not pts:
        return None

    def draw(ax) -> None:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts])
        for x, y, text in pts:
            _annotate(ax, x, y, text)
        ax.set_xlabel("best validation loss (lower is better)")
        ax.set_ylabel(f"{quality} (higher is better)")
        ax.set_title(title, fontsize=10)

    return _render(path, draw)


def pareto_plot(groups: list[tuple[str, list[tuple[float, float, str]]]],
                path: Path) -> Path | None:
    """Accuracy vs decode throughput per bench run, with that run's Pareto front joined."""
    if not groups:
        return None

    def draw(ax) -> None:
        for index, (name, pts) in enumerate(groups):
            color = f"C{index % 10}"
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=color, label=name)
            front = pareto_front(pts)
            ax.plot([p[0] for p in front], [p[1] for p in front], color=color)
            for x, y, text in pts:
                _annotate(ax, x, y, text)
        ax.set_xlabel("decode tokens/s (p50)")
        ax.set_ylabel("accuracy")
        ax.set_title("Accuracy vs decode throughput")
        ax.legend(fontsize=8)

    return _render(path, draw)
