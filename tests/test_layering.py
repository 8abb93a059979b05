"""The house's floors: no import circles, nothing on the ground floor imports upward, and the
renderers and the gate (``report/``) are read by the commands only.

Lazy imports (inside functions) count: a circle through one still couples two modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1] / "harness"
# The ground floor: errors, paths and hashes, atomic writes and the run store, meters, the
# embedded model, stats. Everything else may stand on it; it stands on nothing above.
GROUND = ("harness.errors", "harness.paths", "harness.hashing", "harness.console",
          "harness.child", "harness.significance", "harness.openai_compat", "harness.runs",
          "harness.meters", "harness.models.embedded", "harness.models.params")
# Who may read the renderers and the regression gate: the commands on top.
REPORT_READERS = ("harness.cli", "harness.reliability", "harness.report")


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports() -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                           else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circles():
    assert _cycles(_imports()) == []


def test_the_cycle_finder_sees_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_ground_floor_imports_nothing_above_it():
    upward = [f"{src} -> {dst}" for src, targets in _imports().items()
              if _within(src, GROUND) for dst in targets if not _within(dst, GROUND)]
    assert upward == []


def test_renderers_and_the_gate_are_read_by_the_commands_only():
    readers = [f"{src} -> {dst}" for src, targets in _imports().items() for dst in targets
               if _within(dst, ("harness.report",)) and not _within(src, REPORT_READERS)]
    assert readers == []
