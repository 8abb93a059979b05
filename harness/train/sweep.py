"""LoRA configuration sweeps and rank ablations, resumable and idempotent.

Each grid point is one run folder named by its configuration hash under the sweep folder.
A finished run leaves ``result.json`` (written atomically, last); a re-run skips it. A run
killed mid-training resumes from its checkpoint, and a killed evaluation resumes from
lm-eval's response cache. ``results.jsonl`` is rewritten atomically after each run with every
finished result in grid order, so it never holds a partial or duplicated line.

``circular`` also scores each benchmark's ``_circular`` variant (MMBench's CircularEval) in a
run of its own, because its ``--limit`` counts prompts (one per rotation) rather than
questions. It is not part of a point's folder name: turning it on for a finished sweep scores
the trained points again instead of training them again.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path
from typing import Any

import jsonlines
import yaml
from rich.table import Table

from harness.artefacts.zoo_manifest import WEIGHTS_FILE
from harness.console import wide_console
from harness.errors import SlmbenchError
from harness.evaluation.result import EvalResult
from harness.hashing import sha256_json
from harness.runs.atomic import write_json_atomic, write_text_atomic
from harness.runs.records import eval_run_of, task_scores
from harness.train.config import ALL_LINEAR, ATTENTION_ONLY, TrainConfig
from harness.train.lora import BEST, LoraTrainer, config_hash

MODULE_SETS = {
    # q and v only: the cheapest set to run routed on llama.cpp, which adds two small
    # matmuls per adapted projection to every decoded token (leaderboards/edge).
    "qv": ["q_proj", "v_proj"],
    "attention": ATTENTION_ONLY,
    "mlp": ["gate_proj", "up_proj", "down_proj"],
    "all": ALL_LINEAR,
}
# The reference study's 16-configuration grid shape: rank x alpha x target-module set.
GRIDS: dict[str, dict[str, list]] = {
    "lora16": {"rank": [4, 8, 16, 32], "alpha_ratio": [1, 2], "modules": ["attention", "all"]},
    "rank": {"rank": [4, 8, 16, 32], "alpha_ratio": [2], "modules": ["all"]},
    # What the adapter adapts, at the zoo's rank: accuracy against routed decode cost.
    "modules": {"rank": [16], "alpha_ratio": [2], "modules": ["qv", "attention", "all"]},
}
RESULT, RESULTS = "result.json", "results.jsonl"
# Prompts per question of a circular run: one per rotation of four options (or of the
# four label shifts). A question whose rotations --limit cuts short is dropped, so five-option
# benchmarks score four fifths as many questions.
CIRCULAR_PROMPTS_PER_QUESTION = 4


def load_grid(spec: str) -> dict[str, list]:
    """A named grid (``lora16``, ``rank``) or a YAML file of ``field: [values]``."""
    if spec in GRIDS:
        return GRIDS[spec]
    path = Path(spec)
    if not path.is_file():
        raise SlmbenchError(f"sweep: --grid {spec!r} is neither a known grid "
                            f"({', '.join(GRIDS)}) nor a YAML file")
    grid = yaml.safe_load(path.read_text()) or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise SlmbenchError(f"sweep: {path} must map field names to non-empty lists")
    return grid


def expand(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Cartesian product of a grid as TrainConfig overrides.

    ``alpha_ratio`` sets alpha = ratio x rank; ``modules`` names a module set.
    """
    known = {f.name for f in dataclasses.fields(TrainConfig)} | {"alpha_ratio", "modules"}
    unknown = sorted(set(grid) - known)
    if unknown:
        raise SlmbenchError(f"sweep: unknown grid field {unknown[0]!r}")
    points = []
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values, strict=True))
        if "alpha_ratio" in point:
            point["alpha"] = int(point.pop("alpha_ratio") * point.get("rank", 16))
        if "modules" in point:
            name = point.pop("modules")
            if name not in MODULE_SETS:
                raise SlmbenchError(f"sweep: unknown module set {name!r} "
                                    f"(one of {', '.join(MODULE_SETS)})")
            point["target_modules"] = MODULE_SETS[name]
            point["module_set"] = name
        points.append(point)
    return points


def run_id(point: dict[str, Any], cfg: TrainConfig, eval_limit: int | None,
           maj4: bool = False) -> str:
    """Folder name of a grid point: readable prefix + hash of everything that shapes its result.

    The whole training config is hashed, not only the grid point, so re-running a sweep with
    another budget (examples, steps, data) starts new runs instead of reusing stale ones.
    """
    short = f"r{point.get('rank', 'd')}_a{point.get('alpha', 'd')}_{point.get('module_set', 'd')}"
    scoring = [eval_limit, "maj4"] if maj4 else [eval_limit]  # no Maj@4: the names of old
    return f"{short}_{sha256_json([config_hash(cfg), *scoring])[:8]}"  # sweeps stay valid


def _adapter_size(folder: Path) -> tuple[float, int]:
    from harness.artefacts.params import checkpoint_params

    return round((folder / WEIGHTS_FILE).stat().st_size / 1e6, 3), checkpoint_params(folder)


@dataclasses.dataclass(frozen=True)
class Point:
    """One grid point, resolved: its folder and full training config."""

    index: int
    total: int
    point: dict[str, Any]
    cfg: TrainConfig
    eval_limit: int | None
    sweep_dir: Path
    maj4: bool = False  # also score Maj@4 (``<benchmark>_maj4``) on the same questions
    circular: bool = False  # also score ``<benchmark>_circular``, in a run of its own

    @property
    def folder(self) -> Path:
        return Path(self.cfg.output_dir)

    @property
    def run_id(self) -> str:
        return self.folder.name

    @property
    def home(self) -> Path:
        """Where the point was trained: its folder, or the sibling's its link points to.

        Evaluations name the adapter by path, so a linked point is scored under the path its
        own sweep scored it with and finds those runs instead of scoring them again.
        """
        if not self.folder.is_symlink():
            return self.folder
        return Path(os.path.normpath(self.sweep_dir / os.readlink(self.folder)))


def plan(base: TrainConfig, grid: str, sweep_dir: Path, eval_limit: int | None,
         maj4: bool = False, circular: bool = False) -> list[Point]:
    if circular:
        _check_circular_variants(base.benchmarks)
    points = expand(load_grid(grid))
    planned = []
    for i, point in enumerate(points, 1):
        overrides = {k: v for k, v in point.items() if k != "module_set"}
        cfg = dataclasses.replace(base, **overrides)
        folder = Path(sweep_dir) / run_id(point, cfg, eval_limit, maj4)
        planned.append(Point(i, len(points), point, dataclasses.replace(
            cfg, output_dir=str(folder)), eval_limit, Path(sweep_dir), maj4, circular))
    return planned


def _check_circular_variants(benchmarks: list[str]) -> None:
    """Refused before any training: a missing variant would only fail after the first point."""
    from harness.paths import tasks_dir

    missing = [b for b in benchmarks if not any(tasks_dir().glob(f"*/{b}_circular.yaml"))]
    if missing:
        raise SlmbenchError(f"sweep: --circular: {missing[0]} has no _circular task (only "
                            "choice and label benchmarks have one)")


def run_point(p: Point, trainer_cls=LoraTrainer, console=None) -> dict:
    """Train and score one point, or return its finished result: safe to call twice.

    A point's folder is named by its config hash and ``result.json`` is written last
    (atomically), so a worker killed mid-point leaves a checkpoint that the retry resumes,
    and a finished point is never trained again, whichever process asks.
    """
    console = console or wide_console()
    done = p.folder / RESULT
    _link_sibling_point(p, console)
    if done.is_file():
        result = _read_json(done)
        if not (p.folder / BEST).is_dir():
            return _as_recorded(result, p, console)
        console.print(f"[{p.index}/{p.total}] {p.run_id}: trained earlier, skipped")
        if p.eval_limit != 0:
            _rescore_if_stale(result, done, p, console)
        return result
    console.print(f"[{p.index}/{p.total}] {p.run_id}: training")
    cfg = p.cfg
    record = trainer_cls(cfg).run()
    scored = _score(p) if p.eval_limit != 0 else None
    circled = _score_circular(p) if p.eval_limit != 0 and p.circular else None
    size_mb, params = _adapter_size(p.folder / BEST)
    result = {"run_id": p.run_id, "point": p.point, "rank": cfg.rank, "alpha": cfg.alpha,
              "module_set": p.point.get("module_set", "custom"),
              "target_modules": cfg.target_modules, "adapter_mb": size_mb,
              "trainable_params": params, "best_val_loss": record["train"]["best_val_loss"],
              "best_val_answer_loss": record["train"]["best_val_answer_loss"],
              "train_wall_s": record["train"]["wall_s"],
              "energy_wh": _wh(record["train"].get("energy")),
              "scores": dict(scored.scores) if scored else {},
              "eval_run_id": scored.run_id if scored else None,
              "eval_wall_s": scored.wall_s if scored else None}
    if circled is not None:
        _take_circular(result, circled)
    write_json_atomic(done, result)
    return result


def _link_sibling_point(p: Point, console) -> None:
    """Reuse the same point finished by another sweep beside this one, instead of training it.

    A point's folder name hashes its whole training config and scoring, so a folder of that
    name in a sibling sweep (the rank sweep's r16 point in a module sweep) holds the very run
    this one would make. It is linked only when it finished with its adapter; anything less is
    trained here.
    """
    if p.folder.exists() or p.folder.is_symlink():
        return
    for sibling in sorted(p.sweep_dir.parent.glob(f"*/{p.run_id}")):  # not this one's: absent
        if (sibling / RESULT).is_file() and (sibling / BEST).is_dir():
            p.sweep_dir.mkdir(parents=True, exist_ok=True)
            p.folder.symlink_to(Path("..") / sibling.parent.name / p.run_id,
                                target_is_directory=True)
            console.print(f"[{p.index}/{p.total}] {p.run_id}: finished in sweep "
                          f"{sibling.parent.name}; linked, not trained again")
            return


def _as_recorded(result: dict, p: Point, console) -> dict:
    """A finished point whose adapter is not here: a record published from another machine.

    Long sweeps outlive the machine that trains them; the points already published are kept
    as scored, under the eval runs their record names, instead of being trained again. What
    needs the adapter (a circular run it never had) is refused rather than faked.
    """
    if p.circular and p.eval_limit != 0 and not result.get("circular_eval_run_id"):
        raise SlmbenchError(f"sweep: {p.folder / RESULT} has no circular run and its adapter "
                            f"({p.folder / BEST}) is not here to score one; delete the file "
                            "to train the point again")
    runs = ", ".join(str(r) for r in (eval_run_of(result), result.get("circular_eval_run_id"))
                     if r)
    console.print(f"[{p.index}/{p.total}] {p.run_id}: adapter not here; kept as recorded "
                  f"(eval runs {runs or 'none'})")
    return result


def run_sweep(base: TrainConfig, grid: str, sweep_dir: Path, eval_limit: int | None,
              trainer_cls=LoraTrainer, ray_address: str | None = None,
              cpus_per_point: float = 1.0, gpus_per_point: float = 0.0,
              maj4: bool = False, circular: bool = False) -> list[dict]:
    """Every point of ``grid``: one after another here, or as Ray tasks.

    ``ray_address="local"`` starts a cluster on this machine. Either way results land in the
    same folders and ``results.jsonl`` lists each finished point once, in grid order.
    """
    console = wide_console()
    sweep_dir = Path(sweep_dir)
    points = plan(base, grid, sweep_dir, eval_limit, maj4, circular)
    finished: dict[int, dict] = {}

    def collect(p: Point, result: dict) -> None:
        finished[p.index] = result
        _write_results(sweep_dir, [finished[i] for i in sorted(finished)], grid, base,
                       eval_limit, maj4, circular)

    if ray_address is None:
        for p in points:
            collect(p, run_point(p, trainer_cls, console))
    else:
        from harness.train.sweep_ray import run_on_ray

        run_on_ray(points, ray_address, collect, run_point, trainer_cls, cpus_per_point,
                   gpus_per_point)
    results = [finished[i] for i in sorted(finished)]
    _write_results(sweep_dir, results, grid, base, eval_limit, maj4, circular)
    console.print(sweep_table(results, title=f"sweep {grid} on {'+'.join(base.benchmarks)}"))
    return results


def _score(p: Point) -> EvalResult:
    tasks = list(p.cfg.benchmarks) + [f"{b}_maj4" for b in p.cfg.benchmarks if p.maj4]
    return _evaluate(p, tasks, p.eval_limit)


def _score_circular(p: Point) -> EvalResult:
    limit = p.eval_limit * CIRCULAR_PROMPTS_PER_QUESTION if p.eval_limit else None
    return _evaluate(p, [f"{b}_circular" for b in p.cfg.benchmarks], limit)


def _evaluate(p: Point, tasks: list[str], limit: int | None) -> EvalResult:
    from harness.train.evaluate import run_tasks

    return run_tasks(tasks, {"pretrained": p.cfg.base_model, "peft": str(p.home / BEST)},
                     p.folder / "eval", limit=limit, data_dir=p.cfg.data_dir,
                     label=f"{p.sweep_dir.name}/{p.folder.name}")


def _take_circular(result: dict, circled: EvalResult) -> None:
    scores = {k: v for k, v in (result.get("scores") or {}).items()
              if not k.endswith("_circular")}
    result["scores"] = {**scores, **circled.scores}
    result["circular_eval_run_id"] = circled.run_id
    result["circular_eval_wall_s"] = circled.wall_s


def _rescore_if_stale(result: dict, done: Path, p: Point, console) -> None:
    """Ask the run store for the point's evaluations again.

    The same run comes back at once, but a task edited since (a new eval run id) is scored
    anew, so the sweep never reports a score made under a task definition it no longer has.
    A point trained before ``--circular`` was asked for gets its circular run here.
    """
    scored = _score(p)
    changed = False
    if scored.run_id != eval_run_of(result):
        console.print(f"{p.folder.name}: its tasks changed since it was scored; re-scored")
        circular = {k: v for k, v in (result.get("scores") or {}).items()
                    if k.endswith("_circular")}
        result["scores"] = {**dict(scored.scores), **circular}
        result["eval_run_id"], result["eval_wall_s"] = scored.run_id, scored.wall_s
        changed = True
    if p.circular:
        circled = _score_circular(p)
        if circled.run_id != result.get("circular_eval_run_id"):
            console.print(f"{p.folder.name}: scored circularly")
            _take_circular(result, circled)
            changed = True
    if changed:
        write_json_atomic(done, result)


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def _wh(energy: dict | None) -> float | None:
    joules = (energy or {}).get("joules")
    return None if joules is None else round(joules / 3600, 4)


def _write_results(sweep_dir: Path, results: list[dict], grid: str, base: TrainConfig,
                   eval_limit: int | None, maj4: bool = False, circular: bool = False) -> None:
    """results.jsonl, then the run-store manifest over it (rewritten after every point)."""
    import io

    from harness.runs.store import write_run

    buffer = io.StringIO()
    with jsonlines.Writer(buffer) as writer:
        writer.write_all(results)
    write_text_atomic(sweep_dir / RESULTS, buffer.getvalue())
    config = {"grid": grid, "points": expand(load_grid(grid)),
              "base": dataclasses.asdict(base), "eval_limit": eval_limit,
              **({"maj4": True} if maj4 else {}), **({"circular": True} if circular else {})}
    write_run(sweep_dir, "sweep", sha256_json(config)[:16], config, [RESULTS],
              extra={"label": sweep_dir.name, "complete": len(results)})


def sweep_table(results: list[dict], title: str) -> Table:
    table = Table(title=title)
    for col in ("run", "rank", "alpha", "modules", "params", "adapter MB", "val loss",
                "val answer loss", "accuracy", "train s"):
        table.add_column(col)
    for r in results:
        accs = list(task_scores(r["scores"]).values())
        acc = ", ".join(f"{s['value']:.3f} ± {s['stderr'] or 0:.3f}" for s in accs) or "-"
        table.add_row(r["run_id"], str(r["rank"]), str(r["alpha"]), r["module_set"],
                      f"{r['trainable_params']:,}", f"{r['adapter_mb']:.2f}",
                      str(r["best_val_loss"]), str(r["best_val_answer_loss"]), acc,
                      str(r["train_wall_s"]))
    return table
