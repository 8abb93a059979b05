"""Knowledge distillation into a LoRA student, in ``slmbench train``'s own resumable loop.

The student is trained exactly as ``slmbench train`` trains an adapter (same examples,
checkpoints, early stopping, training record and run store); only the loss differs:

    loss = (1 - kd_weight) * cross-entropy(labels) + kd_weight * KD(student || teacher)

with KD one of ``distill_losses.KD_LOSSES`` at a temperature, on the tokens the supervised
loss sees (the answer under ``--loss answer``). The teacher is any checkpoint, the embedded
model, or either with a LoRA adapter folded in (an SFT teacher); the student is ``base_model``
(e.g. a layer-pruned copy of the embedded model, ``train/student.py``). Each validation also
records the student's KL to the teacher, so a run shows the student moving toward it.

Token-level KD needs one tokenizer for both. A teacher with another vocabulary is distilled
with ``--cross-vocab dskd`` (Dual-Space KD, ``train/cross_vocab.py``); without it such a pair
is refused in one line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.errors import SlmbenchError
from harness.train.config import TrainConfig
from harness.train.cross_vocab import (
    CROSS_VOCAB_METHODS,
    CrossModelAttention,
    dskd_loss,
    head_inputs,
)
from harness.train.data import Example, tokenize_example
from harness.train.distill_losses import KD_LOSSES, kd_loss
from harness.train.lora import LoraTrainer, collate


@dataclass
class DistillConfig(TrainConfig):
    """A student trained toward a teacher; every field lands in the training record."""

    teacher: str = field(default="embedded", metadata={
        "help": "teacher checkpoint: HF id, path or 'embedded'"})
    teacher_adapter: str | None = field(default=None, metadata={
        "help": "LoRA adapter folder folded into the teacher (an SFT teacher)"})
    kd_loss: str = field(default="forward", metadata={
        "help": "forward (vanilla KD), reverse or skew KL"})
    temperature: float = field(default=2.0, metadata={"help": "softmax temperature of KD"})
    kd_weight: float = field(default=0.5, metadata={
        "help": "share of the KD term in the loss; the rest is cross-entropy on the labels"})
    skew_alpha: float = field(default=0.1, metadata={"help": "skew KL's teacher share"})
    cross_vocab: str | None = field(default=None, metadata={
        "help": "dskd: Dual-Space KD with cross-model attention, for a teacher with another "
                "tokenizer (--kd-loss picks its divergence)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (self.kd_loss in KD_LOSSES,
             f"--kd-loss must be one of {', '.join(KD_LOSSES)}, got {self.kd_loss!r}"),
            (self.temperature > 0, f"--temperature must be > 0, got {self.temperature}"),
            (0 <= self.kd_weight <= 1, f"--kd-weight must be in [0, 1], got {self.kd_weight}"),
            (0 <= self.skew_alpha < 1, f"--skew-alpha must be in [0, 1), got {self.skew_alpha}"),
            (self.cross_vocab in (None, *CROSS_VOCAB_METHODS),
             f"--cross-vocab must be one of {', '.join(CROSS_VOCAB_METHODS)}, "
             f"got {self.cross_vocab!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SlmbenchError(f"distill: {message}")


DISTILL_FIELDS = tuple(f.name for f in dataclasses.fields(DistillConfig)
                       if f.name not in {g.name for g in dataclasses.fields(TrainConfig)})


def _available_ram_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def check_teacher_fits(folder: Path, device: str) -> None:
    """Refuse a teacher whose fp32 weights alone exceed the memory available now."""
    files = list(folder.glob("*.safetensors"))
    if not files or device != "cpu":
        return
    from harness.artefacts.params import checkpoint_params

    need = checkpoint_params(folder) * 4
    have = _available_ram_bytes()
    if have is not None and need > have:
        raise SlmbenchError(f"distill: teacher {folder} needs {need / 2**30:.1f} GiB in fp32, "
                            f"{have / 2**30:.1f} GiB is available; use a smaller teacher or a "
                            "machine with more memory")


def same_vocabulary(teacher_tokenizer, student_tokenizer) -> bool:
    return teacher_tokenizer.get_vocab() == student_tokenizer.get_vocab()


def load_teacher(cfg: DistillConfig, student_tokenizer, device: str):
    """The frozen teacher (adapter folded in) and its tokenizer, memory and vocabulary checked."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.artefacts.embedded import resolve_pretrained

    path = Path(resolve_pretrained(cfg.teacher))
    if path.is_dir():
        check_teacher_fits(path, device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if cfg.cross_vocab is None and not same_vocabulary(tokenizer, student_tokenizer):
        raise SlmbenchError(
            f"distill: teacher {cfg.teacher} and student {cfg.base_model} have different "
            f"vocabularies ({len(tokenizer)} vs {len(student_tokenizer)} tokens); token-level "
            f"KD ({', '.join(KD_LOSSES)}) needs one tokenizer, so a cross-vocabulary method "
            "is needed for this pair: pass --cross-vocab dskd")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    teacher = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    if cfg.teacher_adapter:
        from peft import PeftModel

        adapter = Path(cfg.teacher_adapter)
        if not (adapter / "adapter_model.safetensors").is_file():
            raise SlmbenchError(f"distill: --teacher-adapter {adapter} has no "
                                "adapter_model.safetensors")
        teacher = PeftModel.from_pretrained(teacher, str(adapter)).merge_and_unload()
    teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher, tokenizer


class DistillTrainer(LoraTrainer):
    """``LoraTrainer`` whose loss mixes cross-entropy with KD toward a frozen teacher."""

    def __init__(self, cfg: DistillConfig) -> None:
        super().__init__(cfg)
        self.teacher = None
        self.teacher_tokenizer = None
        self._teacher_examples: dict[tuple[str, str], Example] = {}

    def _teacher(self, model, tokenizer):
        if self.teacher is None:
            # Loading an adapter initialises LoRA weights from the global RNG; the student's
            # dropout must not see that, or a resumed run would not repeat a straight one.
            devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
            with torch.random.fork_rng(devices=devices):
                self.teacher, self.teacher_tokenizer = load_teacher(self.cfg, tokenizer,
                                                                    str(model.device))
        return self.teacher

    def _extra_modules(self, model, tokenizer):
        """DSKD's projectors, sized from both models (the teacher is loaded and checked here)."""
        if self.cfg.cross_vocab is None:
            return None
        teacher = self._teacher(model, tokenizer)
        return CrossModelAttention(
            model.get_input_embeddings().embedding_dim,
            teacher.get_input_embeddings().embedding_dim,
            model.get_output_embeddings().in_features,
            teacher.get_output_embeddings().in_features).to(model.device)

    def _collate(self, examples: list[Example], tokenizer, device: str) -> dict:
        """The student's batch; with ``--cross-vocab``, the same texts in the teacher's tokens."""
        batch = super()._collate(examples, tokenizer, device)
        if self.cfg.cross_vocab is not None:
            own = [self._teacher_example(e, tokenizer) for e in examples]
            pad = self.teacher_tokenizer.pad_token_id
            batch["teacher"] = collate(own, self.teacher_tokenizer.eos_token_id
                                       if pad is None else pad, device)
        return batch

    def _teacher_example(self, example: Example, student_tokenizer) -> Example:
        key = (example.prompt, example.completion)
        if key not in self._teacher_examples:
            chat = self.cfg.chat_template
            if chat is None:
                chat = bool(getattr(student_tokenizer, "chat_template", None))
            self._teacher_examples[key] = tokenize_example(
                self.teacher_tokenizer, example.prompt, example.completion, self.cfg.loss,
                self.cfg.max_seq_len, chat)
        return self._teacher_examples[key]

    def _dskd(self, model, batch: dict, teacher_batch: dict) -> dict[str, torch.Tensor]:
        out, hidden = head_inputs(model, lambda: model(**batch))
        terms = dskd_loss(self.extra, model, self.teacher, batch, teacher_batch, out.logits,
                          hidden, self.cfg.kd_loss, self.cfg.temperature, self.cfg.skew_alpha)
        terms["ce"] = out.loss
        return terms

    def _kd(self, model, batch: dict, student_logits: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(input_ids=batch["input_ids"],
                                          attention_mask=batch["attention_mask"]).logits
        mask = batch["labels"][:, 1:] != -100  # the positions cross-entropy trains on
        return kd_loss(student_logits[:, :-1], teacher_logits[:, :-1], mask,
                       self.cfg.kd_loss, self.cfg.temperature, self.cfg.skew_alpha)

    def _loop(self, model, optimizer, scheduler, state, train, val, tokenizer, total,
              steps_per_epoch) -> None:
        self._teacher(model, tokenizer)  # refused here, before a step, if it cannot serve
        super()._loop(model, optimizer, scheduler, state, train, val, tokenizer, total,
                      steps_per_epoch)

    def _forward(self, model, batch: dict, step: int) -> torch.Tensor:
        teacher_batch = batch.pop("teacher", None)
        if teacher_batch is not None:
            terms = self._dskd(model, batch, teacher_batch)
            weight = self.cfg.kd_weight
            return (1 - weight) * terms["ce"] + weight * terms["kd"] + terms["align_ce"]
        out = model(**batch)
        weight = self.cfg.kd_weight
        if weight == 0:
            return out.loss
        return (1 - weight) * out.loss + weight * self._kd(model, batch, out.logits)

    def _evaluate(self, model, val, tokenizer, state) -> bool:
        stop = super()._evaluate(model, val, tokenizer, state)
        if self.cfg.cross_vocab is None:
            state.evals[-1]["val_kl_to_teacher"] = round(
                self.validation_kl(model, val, tokenizer), 5)
        else:
            state.evals[-1].update(self.validation_dskd(model, val, tokenizer))
        return stop

    @torch.no_grad()
    def validation_dskd(self, model, val, tokenizer) -> dict[str, float]:
        """DSKD's KD terms (both spaces) and the projectors' alignment loss on validation."""
        model.eval()
        sums: dict[str, float] = {}
        size = self.cfg.batch_size
        for start in range(0, len(val), size):
            chunk = val[start:start + size]
            batch = self._collate(chunk, tokenizer, str(model.device))
            terms = self._dskd(model, batch, batch.pop("teacher"))
            for key in ("kd_student_space", "kd_teacher_space", "align_ce"):
                sums[key] = sums.get(key, 0.0) + float(terms[key]) * len(chunk)
        model.train()
        return {f"val_dskd_{key}": round(total / max(len(val), 1), 5)
                for key, total in sums.items()}

    @torch.no_grad()
    def validation_kl(self, model, val, tokenizer) -> float:
        """Forward KL (T=1) from teacher to student on the validation answer tokens."""
        model.eval()
        total, count = 0.0, 0
        size = self.cfg.batch_size
        for start in range(0, len(val), size):
            batch = collate(val[start:start + size], tokenizer.pad_token_id, str(model.device))
            student = model(input_ids=batch["input_ids"],
                            attention_mask=batch["attention_mask"]).logits
            teacher = self.teacher(input_ids=batch["input_ids"],
                                   attention_mask=batch["attention_mask"]).logits
            mask = batch["labels"][:, 1:] != -100
            n = int(mask.sum())
            total += float(kd_loss(student[:, :-1], teacher[:, :-1], mask, "forward")) * n
            count += n
        model.train()
        return total / max(count, 1)
