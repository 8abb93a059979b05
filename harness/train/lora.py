"""LoRA / QLoRA training of one adapter, resumable from its last checkpoint.

A plain loop over peft + transformers pieces (``get_peft_model``, AdamW, transformers'
cosine-with-warmup schedule) rather than ``Trainer``: the loop is short, and it makes the
properties this project promises explicit and testable:

* every ``eval_every`` steps the validation loss is measured, the best adapter is kept and a
  checkpoint (adapter, optimizer, scheduler, RNG, record) is swapped in atomically, so a
  killed run resumes losing at most one interval, and bit-for-bit on the same machine;
* early stopping on validation loss;
* a non-finite loss stops the run at once, keeping the last good checkpoint and best adapter;
* ``train_record.json`` holds loss curves, tokens/s, wall time, peak memory and energy.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.data.seen import train_subset_record
from harness.errors import SlmbenchError
from harness.hashing import sha256_json
from harness.meters.energy import EnergyMeter
from harness.meters.memory import peak_rss_mb, peak_vram_mb
from harness.runs.atomic import replace_dir_atomic, settled_dir, write_json_atomic
from harness.train.config import TrainConfig
from harness.train.data import Example, ExampleSet, load_sources

log = logging.getLogger(__name__)

CHECKPOINT, BEST, RECORD = "checkpoint", "adapter", "train_record.json"
# Beside adapter_config.json: how the adapter was trained, where a loader of the bare adapter
# folder (without the run's train_record.json) can still see it.
TRAIN_OPTIONS = "train_options.json"
# The option order the validation examples are drawn in: one fixed shuffle, so the loss that
# picks the best adapter and stops early does not reward the split's answer-position prior.
VALIDATION_ORDER = "validation"
_STATE = "trainer_state.pt"


@dataclass
class TrainState:
    step: int = 0
    best_val_loss: float = math.inf
    best_step: int | None = None
    bad_evals: int = 0
    tokens: int = 0
    wall_s: float = 0.0
    energy_j: float | None = 0.0
    energy_source: str = ""
    stopped: str | None = None
    history: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)


# Fields added after runs were published: hashed only when set, so those runs keep their ids.
LATER_FIELDS = {"answer_format": "choice", "cross_vocab": None, "permute_options": False}


def config_hash(cfg: TrainConfig) -> str:
    """Hash of the config fields that change the result (not where it is written).

    ``permute_options`` counts as set only where it shuffles something: on numeric or
    free-form benchmarks it trains exactly what the runs before it trained, under their ids.
    """
    values = {**cfg.to_dict(), "permute_options": bool(cfg.permuted_benchmarks())}
    return sha256_json({k: v for k, v in values.items() if k != "output_dir"
                        and not (k in LATER_FIELDS and v == LATER_FIELDS[k])})[:16]


def permutation_record(cfg: TrainConfig, train: ExampleSet, val: ExampleSet) -> dict:
    """How the options were ordered: the ``option_permutation`` of the record and adapter."""
    return {"permute_options": bool(cfg.permuted_benchmarks()),
            "benchmarks": cfg.permuted_benchmarks(), "seed": cfg.seed,
            "train": "reshuffled every epoch", "validation": "one fixed shuffle",
            "train_examples": train.tally(), "val_examples": val.tally()}


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_backbone(cfg: TrainConfig):
    """Frozen base model and tokenizer; 4-bit NF4 when ``cfg.qlora``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.artefacts.embedded import resolve_pretrained

    path = resolve_pretrained(cfg.base_model)
    if cfg.qlora:
        if not torch.cuda.is_available():
            raise SlmbenchError("train: --qlora needs a CUDA GPU (bitsandbytes 4-bit); none "
                                "found here. Drop --qlora to train LoRA on the full-precision base")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as err:
            raise SlmbenchError("train: --qlora needs bitsandbytes: "
                                "pip install 'slmbench[qlora]'") from err
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                   bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(path, quantization_config=quant,
                                                     device_map={"": 0})
        model = prepare_model_for_kbit_training(model)
    else:
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(_device())
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def check_target_modules(model, names: list[str], base: str) -> None:
    linear = {n.rsplit(".", 1)[-1] for n, m in model.named_modules()
              if isinstance(m, torch.nn.Linear) or type(m).__name__.startswith("Linear")}
    missing = [n for n in names if n not in linear]
    if missing:
        raise SlmbenchError(f"train: target module {missing[0]!r} does not exist in {base} "
                            f"(its linear modules: {', '.join(sorted(linear))})")


def attach_lora(model, cfg: TrainConfig):
    from peft import LoraConfig, get_peft_model

    check_target_modules(model, cfg.target_modules, cfg.base_model)
    torch.manual_seed(cfg.seed)
    config = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                        target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def collate(examples: list[Example], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids.to(device), "labels": labels.to(device),
            "attention_mask": mask.to(device)}


@torch.no_grad()
def validation_loss(model, examples: list[Example], batch_size: int, pad_id: int) -> dict:
    """Mean token loss on the training objective and on the answer tokens alone.

    The answer-token loss is comparable across full-sequence and answer-only runs.
    """
    model.eval()
    sums = {"objective": 0.0, "answer": 0.0}
    counts = {"objective": 0, "answer": 0}
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        batch = collate(chunk, pad_id, str(model.device))
        logits = model(input_ids=batch["input_ids"],
                       attention_mask=batch["attention_mask"]).logits[:, :-1].float()
        targets = batch["labels"][:, 1:]
        losses = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), targets.clamp(min=0), reduction="none")
        objective = targets != -100
        positions = torch.arange(targets.shape[1], device=targets.device)
        starts = torch.tensor([e.answer_start - 1 for e in chunk], device=targets.device)
        answer = objective & (positions[None, :] >= starts[:, None])
        for key, mask in (("objective", objective), ("answer", answer)):
            sums[key] += float(losses[mask].sum())
            counts[key] += int(mask.sum())
    model.train()
    return {k: sums[k] / max(counts[k], 1) for k in sums}


def _save_adapter(model, folder: Path, options: dict | None = None) -> None:
    staged = folder.with_name(folder.name + ".tmp")
    if staged.exists():
        shutil.rmtree(staged)
    model.save_pretrained(staged)
    sort_set_fields(staged)
    if options is not None:
        write_json_atomic(staged / TRAIN_OPTIONS, options)
    replace_dir_atomic(staged, folder)


def sort_set_fields(folder: Path) -> None:
    """Write peft's set-valued config fields (``target_modules``...) in sorted order.

    peft keeps them as Python sets and saves them in hash order, which changes from one
    process to the next; the same adapter then hashes differently, and its eval runs are
    neither reused nor matched (found by the killed-runs campaign: a resumed sweep re-scored
    every point under new run ids).
    """
    for path in folder.rglob("adapter_config.json"):
        config = json.loads(path.read_text(encoding="utf-8"))
        changed = False
        for key in ("target_modules", "exclude_modules", "modules_to_save"):
            value = config.get(key)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                if value != sorted(value):
                    config[key], changed = sorted(value), True
        if changed:
            write_json_atomic(path, config)


class LoraTrainer:
    """Train one adapter into ``cfg.output_dir``; call ``run()``."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.output_dir)
        self.config_hash = config_hash(cfg)
        self.on_step = None  # test hook: called with the step number after each step
        self.extra: torch.nn.Module | None = None

    def _schedule(self, n_train: int) -> tuple[int, int]:
        steps_per_epoch = math.ceil(n_train / self.cfg.batch_size)
        total = math.ceil(self.cfg.epochs * steps_per_epoch)
        if self.cfg.max_steps:
            total = min(total, self.cfg.max_steps)
        return steps_per_epoch, total

    def _batch_at(self, step: int, train: ExampleSet | list[Example],
                  steps_per_epoch: int) -> list[Example]:
        """The examples of optimizer step ``step``; a pure function, so resume is exact."""
        epoch, index = divmod(step, steps_per_epoch)
        if isinstance(train, ExampleSet):  # this epoch's option order
            train = train.epoch(epoch)
        rng = random.Random(self.cfg.seed * 1_000_003 + epoch)
        order = list(range(len(train)))
        rng.shuffle(order)
        # Length-grouped batches cut padding (CPU time): sort each window of 16 batches by
        # length, cut it into batches, and shuffle the batch order.
        size = self.cfg.batch_size
        window = size * 16
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start:start + window], key=lambda i: len(train[i].input_ids))
            batches += [chunk[k:k + size] for k in range(0, len(chunk), size)]
        rng.shuffle(batches)
        return [train[i] for i in batches[index]]

    def run(self) -> dict:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        model, tokenizer = load_backbone(cfg)
        train = ExampleSet(cfg, tokenizer, load_sources(cfg, "train", None))
        val_set = ExampleSet(cfg, tokenizer,
                             load_sources(cfg, "validation", cfg.max_val_examples, 1))
        val = val_set.epoch(VALIDATION_ORDER)
        self.options = permutation_record(cfg, train, val_set)
        model = attach_lora(model, cfg)
        self.extra = self._extra_modules(model, tokenizer)
        params = [p for p in model.parameters() if p.requires_grad]
        if self.extra is not None:
            params += list(self.extra.parameters())
        steps_per_epoch, total = self._schedule(len(train))
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
        from transformers import get_cosine_schedule_with_warmup

        scheduler = get_cosine_schedule_with_warmup(
            optimizer, num_warmup_steps=int(cfg.warmup_ratio * total), num_training_steps=total)
        state = self._resume(model, optimizer, scheduler)
        self.data = {"n_train": len(train), "n_val": len(val), "train_sha256": train.sha256,
                     "val_sha256": val_set.sha256, "option_permutation": self.options,
                     "steps_per_epoch": steps_per_epoch,
                     "total_steps": total,
                     "train_subset": train_subset_record(
                         cfg.seed, cfg.split_seed, {b: cfg.train_cap(b) for b in cfg.benchmarks})}
        if state.stopped is None and state.step < total:
            self._loop(model, optimizer, scheduler, state, train, val, tokenizer, total,
                       steps_per_epoch)
        return self._write_record(state, final=True)

    def _resume(self, model, optimizer, scheduler) -> TrainState:
        folder = settled_dir(self.out / CHECKPOINT)
        if folder is None:
            return TrainState()
        saved = torch.load(folder / _STATE, weights_only=True)
        if saved["config_hash"] != self.config_hash:
            raise SlmbenchError(f"train: {self.out} holds a checkpoint of a different "
                                "configuration; pick another --output-dir or delete it")
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors"))
        if self.extra is not None:
            self.extra.load_state_dict(saved["extra"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        state = TrainState(**json.loads(saved["state_json"]))
        log.info("resuming %s at step %d", self.out, state.step)
        return state

    def _checkpoint(self, model, optimizer, scheduler, state: TrainState) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        staged = self.out / (CHECKPOINT + ".tmp")
        if staged.exists():
            shutil.rmtree(staged)
        staged.mkdir()
        weights = {k: v.detach().cpu().contiguous()
                   for k, v in get_peft_model_state_dict(model).items()}
        save_file(weights, staged / "adapter_model.safetensors")
        saved = {"config_hash": self.config_hash, "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                 "state_json": json.dumps(state.__dict__)}
        if self.extra is not None:
            saved["extra"] = self.extra.state_dict()
        torch.save(saved, staged / _STATE)
        replace_dir_atomic(staged, self.out / CHECKPOINT)

    def _loop(self, model, optimizer, scheduler, state, train, val, tokenizer, total,
              steps_per_epoch) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        cfg, device = self.cfg, str(model.device)
        meter = EnergyMeter(device)
        meter.start()
        segment_start = time.perf_counter()

        def settle() -> None:
            nonlocal segment_start
            now = time.perf_counter()
            state.wall_s += now - segment_start
            segment_start = now
            reading = meter.stop()
            state.energy_source = reading.source
            state.energy_j = (None if reading.joules is None or state.energy_j is None
                              else state.energy_j + reading.joules)
            meter.start()

        model.train()
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn())
        with Progress(*columns, transient=False) as progress:
            bar = progress.add_task(f"train {'+'.join(cfg.benchmarks)}", total=total,
                                    completed=state.step, loss="-")
            if not state.evals:  # the untrained adapter's loss anchors the curve
                self._evaluate(model, val, tokenizer, state)
            while state.step < total:
                batch = self._collate(self._batch_at(state.step, train, steps_per_epoch),
                                      tokenizer, device)
                loss = self._forward(model, batch, state.step)
                if not torch.isfinite(loss):
                    state.stopped = f"non-finite loss at step {state.step + 1}"
                    settle()
                    self._write_record(state)
                    raise SlmbenchError(
                        f"train: loss is {float(loss)} at step {state.step + 1}; stopped. Last "
                        f"good checkpoint: {self.out / CHECKPOINT} (step "
                        f"{state.evals[-1]['step'] if state.evals else 0}), best adapter: "
                        f"{self.out / BEST}")
                loss.backward()
                torch.nn.utils.clip_grad_norm_(
                    [p for group in optimizer.param_groups for p in group["params"]], 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.step += 1
                state.tokens += int(batch["attention_mask"].sum())
                state.history.append({"step": state.step, "loss": round(loss.item(), 5),
                                      "lr": scheduler.get_last_lr()[0]})
                progress.update(bar, advance=1, loss=f"{loss.item():.3f}")
                if self.on_step is not None:
                    self.on_step(state.step)
                if state.step % cfg.eval_every == 0 or state.step == total:
                    if self._evaluate(model, val, tokenizer, state):
                        state.stopped = (f"early stopping: {cfg.patience} evaluations without "
                                         f"a better validation loss")
                    settle()
                    self._checkpoint(model, optimizer, scheduler, state)
                    self._write_record(state)
                    if state.stopped:
                        break

    def _extra_modules(self, model, tokenizer) -> torch.nn.Module | None:
        """Training-only parameters beside the adapter (optimised, checkpointed, not saved)."""
        return None

    def _collate(self, examples: list[Example], tokenizer, device: str) -> dict:
        return collate(examples, tokenizer.pad_token_id, device)

    def _forward(self, model, batch: dict, step: int) -> torch.Tensor:
        return model(**batch).loss

    def _evaluate(self, model, val, tokenizer, state: TrainState) -> bool:
        """Record the validation loss, keep the best adapter; True when patience ran out."""
        losses = validation_loss(model, val, self.cfg.batch_size, tokenizer.pad_token_id)
        state.evals.append({"step": state.step, "val_loss": round(losses["objective"], 5),
                            "val_answer_loss": round(losses["answer"], 5)})
        if losses["objective"] < state.best_val_loss:
            state.best_val_loss, state.best_step, state.bad_evals = (
                losses["objective"], state.step, 0)
            _save_adapter(model, self.out / BEST, getattr(self, "options", None))
        else:
            state.bad_evals += 1
        return state.bad_evals >= self.cfg.patience

    def _write_record(self, state: TrainState, final: bool = False) -> dict:
        best = next((e for e in state.evals if e["step"] == state.best_step), {})
        record = {
            "run": {"config": self.cfg.to_dict(), "config_hash": self.config_hash},
            "data": getattr(self, "data", {}),
            "train": {
                "steps": state.step, "stopped": state.stopped or ("finished" if final else None),
                "best_step": state.best_step, "best_val_loss": best.get("val_loss"),
                "best_val_answer_loss": best.get("val_answer_loss"),
                "wall_s": round(state.wall_s, 2), "tokens": state.tokens,
                "tokens_per_s": round(state.tokens / state.wall_s, 1) if state.wall_s else None,
                "peak_rss_mb": round(peak_rss_mb(), 1), "peak_vram_mb": peak_vram_mb(),
                "energy": {"joules": state.energy_j if state.energy_source in ("rapl", "nvml")
                           else None, "source": state.energy_source or "not measured"},
                "loss_curve": state.history, "val_curve": state.evals,
            },
            "meta": _environment(),
        }
        write_json_atomic(self.out / RECORD, record)
        if final:
            store_train_run(self.out, record)
        return record


def store_train_run(out: Path, record: dict) -> None:
    """The run-store manifest over the training record and the best adapter's files."""
    from harness.runs.store import write_run

    files = [RECORD] + [f"{BEST}/{p.name}" for p in sorted((out / BEST).glob("*"))
                        if p.is_file()]
    write_run(out, "train", record["run"]["config_hash"], record["run"]["config"], files,
              extra={"label": out.name})


def _environment() -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for dist in ("torch", "transformers", "peft", "lm_eval", "slmbench"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {"python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "versions": versions}
