"""The house's floors: every folder (or top-level module) of ``harness/`` stands on a floor,
and imports only from its own floor or below; no import circles, no two folders importing
each other, and the renderers and the gate (``report/``) are read by the commands only.

Lazy imports (inside functions) count: a circle through one still couples two modules.
``python tests/test_layering.py`` prints the graph's numbers (modules, arrows between folders,
arrows up, folder pairs importing each other, largest modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1] / "harness"
# Floors, bottom up. 0: errors, paths and hashes, the run store, meters, stats, and the shared
# artefacts (embedded model, zoo manifest, GGUF header, LoRA fold); 1: benchmark data, task
# loading, prompts and scoring; 2-5: the features, each on what it uses; 6-7: the pages, the
# gate and the commands.
FLOORS = {
    "harness": 0, "harness.errors": 0, "harness.paths": 0, "harness.hashing": 0,
    "harness.console": 0, "harness.child": 0, "harness.flags": 0, "harness.significance": 0,
    "harness.openai_compat": 0, "harness.runs": 0, "harness.meters": 0,
    "harness.artefacts": 0,
    "harness.data": 1, "harness.task_loader": 1, "harness.scoring": 1, "harness.prompts": 1,
    "harness.zoo": 2, "harness.quant": 2, "harness.validate": 2, "harness.tasks": 2,
    "harness.models": 3,
    "harness.evaluation": 4, "harness.judge": 4,
    "harness.train": 5, "harness.bench": 5, "harness.lm_eval_entry": 5,
    "harness.report": 6, "harness.reliability": 7, "harness.cli": 7,
}
GROUND = tuple(room for room, floor in FLOORS.items() if floor == 0)
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


def _room(module: str) -> str:
    """The folder (or top-level module) of ``harness`` a module belongs to."""
    return ".".join(module.split(".")[:2])


def _room_arrows(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(_room(src), _room(dst)) for src, targets in edges.items() for dst in targets
            if _room(src) != _room(dst)}


def test_every_folder_has_a_floor():
    assert sorted({_room(m) for m in _modules()} - FLOORS.keys()) == []


def test_no_folder_imports_from_a_floor_above_it():
    upward = sorted(f"{a} ({FLOORS[a]}) -> {b} ({FLOORS[b]})"
                    for a, b in _room_arrows(_imports()) if FLOORS[b] > FLOORS[a])
    assert upward == []


def test_no_two_folders_import_each_other():
    arrows = _room_arrows(_imports())
    assert sorted({tuple(sorted(pair)) for pair in arrows if pair[::-1] in arrows}) == []


def test_the_ground_floor_imports_nothing_above_it():
    upward = [f"{src} -> {dst}" for src, targets in _imports().items()
              if _within(src, GROUND) for dst in targets if not _within(dst, GROUND)]
    assert upward == []


def test_renderers_and_the_gate_are_read_by_the_commands_only():
    readers = [f"{src} -> {dst}" for src, targets in _imports().items() for dst in targets
               if _within(dst, ("harness.report",)) and not _within(src, REPORT_READERS)]
    assert readers == []


def main() -> None:
    edges = _imports()
    arrows = _room_arrows(edges)
    up = [(a, b) for a, b in arrows if FLOORS.get(b, 99) > FLOORS.get(a, 99)]
    mutual = {tuple(sorted(pair)) for pair in arrows if pair[::-1] in arrows}
    sizes = sorted(((sum(1 for _ in p.open(encoding="utf-8")), n)
                    for n, p in _modules().items()), reverse=True)[:5]
    print(f"{len(edges)} modules in {len({_room(m) for m in edges})} folders; "
          f"{len(arrows)} arrows between folders, {len(up)} up, "
          f"{len(mutual)} folder pairs importing each other, "
          f"{len(_cycles(edges))} module circles")
    print("largest modules: " + ", ".join(f"{n} ({lines} lines)" for lines, n in sizes))


if __name__ == "__main__":
    main()
