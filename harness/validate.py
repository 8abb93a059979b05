"""``slmbench validate``: load every shipped YAML the way lm-eval will, and say what is broken.

lm-eval's own ``validate`` only checks that task names exist. This one resolves every
``!function``, builds each ``TaskConfig``, resolves filter and group members, and, given a
data directory, builds every task on real data and renders its first prompt.

A benchmark whose files are not in the data directory is reported as "no data here", not as
broken: some benchmarks are absent by design (TeleLogs may not be redistributed). A run that
must cover them all says so (``--require-data``, or ``data`` in ``SLMBENCH_REQUIRE``).
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from harness.paths import tasks_dir
from harness.task_loader import load_task, task_manager

REQUIRE_ENV = "SLMBENCH_REQUIRE"


def data_required(flag: bool = False) -> bool:
    """``--require-data``, or ``data`` among the comma-separated ``SLMBENCH_REQUIRE``."""
    wanted = {p.strip().lower() for p in os.environ.get(REQUIRE_ENV, "").split(",")}
    return flag or "data" in wanted


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


def validate_tasks(data_dir: str | None = None, require_data: bool = False) -> int:
    """Exit status 0 when every YAML loads (and, with data, every task builds).

    A benchmark without files in ``data_dir`` fails only when data is required.
    """
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
        absent, broken = _build_on_data(ours, data_dir)
        skipped, missing = absent_findings(absent, data_required(require_data))
        for line in skipped:
            console.print(f"[yellow]skip[/yellow] {line}", highlight=False, soft_wrap=True)
        problems.update({**missing, **broken})
    for name, problem in problems.items():
        console.print(f"[red]FAIL[/red] {name}: {problem}", highlight=False, soft_wrap=True)
    if not problems:
        console.print("[green]all task YAMLs valid[/green]")
    return 1 if problems else 0


def absent_findings(absent: dict[str, tuple[list[str], str]], required: bool
                    ) -> tuple[list[str], dict[str, str]]:
    """The benchmarks without data: lines to report as skipped, or problems when required."""
    skipped, problems = [], {}
    for bench, (tasks, where) in sorted(absent.items()):
        what = f"no data here ({len(tasks)} tasks not built; looked for {where})"
        if required:
            problems[bench] = f"{what}; data is required"
        else:
            skipped.append(f"{bench}: {what}")
    return skipped, problems


def benchmark_of(yaml_path: str | Path) -> str | None:
    """The benchmark a task YAML reads (its ``dataset_kwargs.benchmark``, includes resolved)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    kwargs = load_yaml(Path(yaml_path), resolve_func=False).get("dataset_kwargs") or {}
    return kwargs.get("benchmark")


def _build_on_data(names: set[str], data_dir: str
                   ) -> tuple[dict[str, tuple[list[str], str]], dict[str, str]]:
    """Build every leaf task on ``data_dir``.

    Returns the benchmarks with no files there (their tasks and where they were looked for),
    and the tasks that failed to build on data that is there.
    """
    from harness.data.benchmarks import BENCHMARKS
    from harness.data.source import local_files, looked_for, resolve_data_dir

    folder = resolve_data_dir(data_dir)
    manager = task_manager(data_dir)
    absent: dict[str, tuple[list[str], str]] = {}
    problems = {}
    leaves = sorted(n for n in names if manager.task_index[n].kind.name == "TASK")
    for name in leaves:
        bench = BENCHMARKS.get(benchmark_of(manager.task_index[name].yaml_path) or "")
        if bench and folder and not bench.synthetic and not local_files(bench, folder):
            absent.setdefault(bench.name, ([], looked_for(bench)))[0].append(name)
            continue
        try:
            task = load_task(manager, name)
            doc = next(iter(task.test_docs()))
            task.doc_to_text(doc)
            task.doc_to_target(doc)
        except Exception as err:  # noqa: BLE001
            problems[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return absent, problems
