"""Training configuration; defaults follow the reference study's LoRA recipe."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.errors import SlmbenchError

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTENTION_ONLY = ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass
class TrainConfig:
    """One LoRA training run. Every field is recorded in the run's ``train_record.json``."""

    benchmarks: list[str] = field(metadata={
        "help": "train split(s) to learn from; one for a per-category adapter, several for a "
                "monolithic one"})
    output_dir: str = field(default="runs/train/adapter", metadata={
        "help": "run folder: checkpoint, best adapter and training record"})
    base_model: str = field(default="embedded", metadata={"help": "HF id, path or 'embedded'"})
    rank: int = field(default=16, metadata={"help": "LoRA rank r"})
    alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    target_modules: list[str] = field(default_factory=lambda: list(ALL_LINEAR), metadata={
        "help": "module names to adapt (default: all attention and MLP projections)"})
    lr: float = field(default=5e-4, metadata={"help": "peak learning rate"})
    warmup_ratio: float = field(default=0.05, metadata={
        "help": "share of steps with linear warmup before the cosine decay"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the train examples"})
    max_steps: int | None = field(default=None, metadata={"help": "cap on optimizer steps"})
    batch_size: int = field(default=8, metadata={"help": "examples per optimizer step"})
    max_train_examples: int | list[int] | None = field(default=None, metadata={
        "help": "seeded random subset of each benchmark's train split (CPU budgets); one "
                "number for every benchmark or one per benchmark, e.g. 1200,800. Per benchmark, "
                "so a monolithic run sees exactly the union of the per-category runs' examples"})
    max_val_examples: int = field(default=200, metadata={
        "help": "validation examples used for the validation loss"})
    max_seq_len: int = field(default=512, metadata={
        "help": "longer prompts are cut from the left, keeping the answer"})
    eval_every: int = field(default=25, metadata={
        "help": "steps between validation-loss evaluations (and checkpoints)"})
    patience: int = field(default=3, metadata={
        "help": "early stopping: evaluations without a new best validation loss"})
    loss: Literal["full", "answer"] = field(default="full", metadata={
        "help": "'full' sequence loss (study default) or 'answer'-only loss masking"})
    seed: int = field(default=42, metadata={"help": "data order, subset and LoRA init"})
    chat_template: bool | None = field(default=None, metadata={
        "help": "wrap prompts in the tokenizer's chat template; None: when it has one"})
    qlora: bool = field(default=False, metadata={"help": "4-bit NF4 base (bitsandbytes, CUDA)"})
    data_dir: str | None = field(default=None, metadata={"help": "local benchmark data dir"})
    split_seed: int = field(default=42, metadata={"help": "seed of the 60/20/20 split"})
    answer_format: Literal["choice", "freeform"] = field(default="choice", metadata={
        "help": "'choice': the Pass@1 task's prompt and answer; 'freeform': the <benchmark>_"
                "freeform task's (answer text and explanation, as the distillation study)"})
    permute_options: bool = field(default=True, metadata={
        "help": "shuffle each question's options (choice tasks) or label list (label tasks) "
                "afresh every epoch and relabel the answer, seeded by --seed, so the adapter "
                "cannot learn the answer key's position; numeric and free-form tasks are "
                "never shuffled"})

    def __post_init__(self) -> None:
        from harness.data.benchmarks import BENCHMARKS

        if not self.benchmarks:
            raise SlmbenchError("train: name at least one benchmark (--task)")
        unknown = [b for b in self.benchmarks if b not in BENCHMARKS]
        if unknown:
            raise SlmbenchError(
                f"train: unknown benchmark {unknown[0]!r} (known: {', '.join(BENCHMARKS)})")
        checks = [
            (self.rank > 0, f"--rank must be > 0, got {self.rank}"),
            (self.alpha > 0, f"--alpha must be > 0, got {self.alpha}"),
            (0 <= self.dropout < 1, f"--dropout must be in [0, 1), got {self.dropout}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (0 <= self.warmup_ratio < 1, f"--warmup-ratio must be in [0, 1), got "
                                         f"{self.warmup_ratio}"),
            (self.epochs > 0, f"--epochs must be > 0, got {self.epochs}"),
            (self.max_steps is None or self.max_steps > 0, "--max-steps must be > 0"),
            (self.batch_size > 0, f"--batch-size must be > 0, got {self.batch_size}"),
            (self.eval_every > 0, f"--eval-every must be > 0, got {self.eval_every}"),
            (self.max_seq_len >= 32, f"--max-seq-len must be >= 32, got {self.max_seq_len}"),
            (self.loss in ("full", "answer"), f"--loss must be full or answer, got {self.loss}"),
            (bool(self.target_modules), "--target-modules must name at least one module"),
            (self.answer_format in ("choice", "freeform"),
             f"--answer-format must be choice or freeform, got {self.answer_format!r}"),
        ]
        caps = self.max_train_examples
        if isinstance(caps, list):
            checks.append((len(caps) in (1, len(self.benchmarks)),
                           f"--max-train-examples has {len(caps)} values for "
                           f"{len(self.benchmarks)} benchmarks"))
            checks.append((all(c > 0 for c in caps), "--max-train-examples must be > 0"))
        for ok, message in checks:
            if not ok:
                raise SlmbenchError(f"train: {message}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def task_name(self, benchmark: str) -> str:
        """The lm-eval task whose prompt and target the examples of ``benchmark`` use."""
        return benchmark if self.answer_format == "choice" else f"{benchmark}_freeform"

    def permutes(self, benchmark: str) -> bool:
        """Whether ``benchmark``'s examples are option-shuffled.

        Only the choice prompts of multiple-choice and label benchmarks have an order to shuffle.
        """
        from harness.data.benchmarks import BENCHMARKS

        return (self.permute_options and self.answer_format == "choice"
                and BENCHMARKS[benchmark].kind in ("mcq", "label"))

    def permuted_benchmarks(self) -> list[str]:
        return [b for b in self.benchmarks if self.permutes(b)]

    def train_cap(self, benchmark: str) -> int | None:
        """The train-example cap of one benchmark (None: its whole train split)."""
        caps = self.max_train_examples
        if caps is None or isinstance(caps, int):
            return caps
        return caps[0] if len(caps) == 1 else caps[self.benchmarks.index(benchmark)]
