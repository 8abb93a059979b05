"""``slmbench validate``: load every shipped YAML the way lm-eval will, and say what is broken.

lm-eval's own ``validate`` only checks that task names exist. This one resolves every
``!function``, builds each ``TaskConfig``, resolves filter and group members, and, given a
data directory, builds every task on real data and renders its first prompt.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from harness.paths import tasks_dir
from harness.task_loader import load_task, task_manager


def check_yaml(path: Path, known_tasks: set[str]) -> str | None:
    """The problem with one YAML file, or None."""
    from lm_eval.api.registry import get_filter
    from lm_eval.config.task import TaskConfig
    from lm_eval.tasks._yaml_loader import load_yaml

    try:
        cfg = load_yaml(path, resolve_func=True)
        if "group" in cfg:
            missing = [t for t in cfg.get("task", []) if t not in known_tasks]
            return f"group members not found: {missing}" if missing else None
        config = TaskConfig(**{k: v for k, v in cfg.items() if k != "tag"})
        for spec in config.filter_list or []:
            for step in spec["filter"]:
                get_filter(step["function"])
        if not callable(config.custom_dataset):
            return "custom_dataset is not callable"
    except Exception as err:  # noqa: BLE001 - report any failure as a finding
        return f"{type(err).__name__}: {err}"
    return None


def validate_tasks(data_dir: str | None = None) -> int:
    """Exit status 0 when every YAML loads (and, with data, every task builds)."""
    from lm_eval.tasks import TaskManager

    import harness.scoring.filters  # noqa: F401 - registers the filters YAMLs name

    console = Console()
    root = tasks_dir()
    manager = TaskManager(include_path=str(root))
    ours = {
        name for name in manager.all_tasks
        if str(manager.task_index[name].yaml_path or "").startswith(str(root))
    }
    files = sorted(root.rglob("*.yaml"))
    problems = {str(p.relative_to(root)): check_yaml(p, ours) for p in files}
    problems = {k: v for k, v in problems.items() if v}
    console.print(f"checked {len(files)} YAML files, {len(ours)} tasks and groups")
    if data_dir is not None and not problems:
        problems.update(_build_on_data(ours, data_dir))
    for name, problem in problems.items():
        console.print(f"[red]FAIL[/red] {name}: {problem}", highlight=False)
    if not problems:
        console.print("[green]all task YAMLs valid[/green]")
    return 1 if problems else 0


def _build_on_data(names: set[str], data_dir: str) -> dict[str, str]:
    manager = task_manager(data_dir)
    problems = {}
    leaves = sorted(n for n in names if manager.task_index[n].kind.name == "TASK")
    for name in leaves:
        try:
            task = load_task(manager, name)
            doc = next(iter(task.test_docs()))
            task.doc_to_text(doc)
            task.doc_to_target(doc)
        except Exception as err:  # noqa: BLE001
            problems[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return problems

