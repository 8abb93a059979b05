"""``slmbench train``: train one adapter, score it seen/unseen, and publish it to the zoo."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from harness.console import wide_console
from harness.data.seen import train_subset_record
from harness.runs.atomic import write_json_atomic
from harness.runs.records import task_scores
from harness.train.config import TrainConfig
from harness.train.evaluate import run_tasks
from harness.train.lora import BEST, RECORD, LoraTrainer, store_train_run


def score_adapter(cfg: TrainConfig, adapter: Path | None, limit: int | None,
                  output: Path, seen_limit: int | None = None, label: str | None = None) -> dict:
    """Pass@1 of each trained benchmark on its unseen (test) and seen (train) split.

    ``{"scores": {task: score}, "eval_runs": [unseen run, seen run], "wall_s": both}``.
    """
    model_args = {"pretrained": cfg.base_model, **({"peft": str(adapter)} if adapter else {})}
    unseen = run_tasks(list(cfg.benchmarks), model_args, output, limit=limit,
                       data_dir=cfg.data_dir, label=label)
    # Seen = the examples this config trained on, for the backbone's baseline too.
    subset = train_subset_record(cfg.seed, cfg.split_seed,
                                 {b: cfg.train_cap(b) for b in cfg.benchmarks})
    seen = run_tasks([f"{b}_seen" for b in cfg.benchmarks], model_args, output,
                     limit=seen_limit or limit, data_dir=cfg.data_dir, label=label,
                     metadata={"seen_from": subset, "split_seed": cfg.split_seed})
    return {"scores": {**unseen.scores, **seen.scores},
            "eval_runs": [unseen.run_id, seen.run_id],
            "wall_s": round(unseen.wall_s + seen.wall_s, 1)}


def score_table(title: str, rows: dict[str, dict]) -> Table:
    """Seen and unseen side by side, one row per benchmark, one column pair per model."""
    table = Table(title=title)
    table.add_column("benchmark")
    for label in rows:
        table.add_column(f"{label} unseen")
        table.add_column(f"{label} seen")
    rows = {label: task_scores(row.get("scores", row)) for label, row in rows.items()}
    benchmarks = sorted({t.removesuffix("_seen") for s in rows.values() for t in s})

    def cell(score: dict | None) -> str:
        if not score:
            return "-"
        err = f" ± {score['stderr']:.3f}" if score.get("stderr") is not None else ""
        return f"{score['value']:.3f}{err}"

    for b in benchmarks:
        table.add_row(b, *[cell(s.get(t)) for s in rows.values() for t in (b, f"{b}_seen")])
    return table


def train_and_publish(cfg: TrainConfig, name: str, zoo: Path | None = None,
                      evaluate: bool = False, eval_limit: int | None = None,
                      baseline: bool = False, seen_limit: int | None = None,
                      trainer_cls: type = LoraTrainer) -> dict:
    console = wide_console()
    record = trainer_cls(cfg).run()
    out = Path(cfg.output_dir)
    train = record["train"]
    console.print(f"[bold]{name}[/bold]: {train['steps']} steps, best validation loss "
                  f"{train['best_val_loss']} at step {train['best_step']} ({train['stopped']}), "
                  f"{train['wall_s']} s, {train['tokens_per_s']} tokens/s, peak RSS "
                  f"{train['peak_rss_mb']} MB, energy {train['energy']['source']}")
    scores: dict[str, dict] = {}
    if baseline:
        scores["base"] = score_adapter(cfg, None, eval_limit, out / "eval_base", seen_limit,
                                       label=cfg.base_model)
    if evaluate:
        scores["adapter"] = score_adapter(cfg, out / BEST, eval_limit, out / "eval", seen_limit,
                                          label=f"{cfg.base_model}+{name}")
        record["eval"] = scores
        write_json_atomic(out / RECORD, record)
        store_train_run(out, record)
        console.print(score_table(f"Pass@1 of {name} (unseen limit {eval_limit}, seen limit "
                                  f"{seen_limit or eval_limit})", scores))
    if zoo is not None:
        from harness.zoo.publish import entry_fields_from_record, publish_adapter

        routes = ([r for b in cfg.benchmarks for r in (b, f"{b}_*")]
                  if len(cfg.benchmarks) > 1 else None)
        entry = publish_adapter(out / BEST, zoo, name, "+".join(cfg.benchmarks),
                                entry_fields_from_record(record),
                                test_metrics=scores.get("adapter", {}).get("scores"),
                                eval_runs=scores.get("adapter", {}).get("eval_runs"),
                                routes=routes)
        console.print(f"published {entry.name} to {zoo} ({entry.size_mb} MB, "
                      f"sha256 {entry.sha256[:12]}...)")
    return record
