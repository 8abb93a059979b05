"""GPTQ 4-bit checkpoints made with GPTQModel, calibrated on the task's own training split.

GPTQ chooses each layer's rounding to minimise the error on calibration activations, so the
calibration text should look like what the model will be asked: the task's train questions,
rendered with the same prompt and chat template as the evaluation, answer included. The test
split is never used.

GPTQModel pins its own numpy (and wants a newer torch than the default environment's), so it
lives in its own environment (``tox -e gptq``, ``constraints-gptq.txt``). The bench calls this
module there as ``python -m harness.quant.gptq SOURCE TARGET --task T ...``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from harness.errors import SlmbenchError

DONE_FILE = "slmbench_gptq.json"  # written last: a folder without it is an interrupted build


def calibration_texts(task_name: str, data_dir: str | None, tokenizer, n: int,
                      seed: int = 0, chat_template: bool = True) -> list[str]:
    """``n`` train-split questions of ``task_name`` with their answers, as the model sees them."""
    from harness.prompts import completion_text, render_prompt
    from harness.task_loader import load_task, task_manager

    task = load_task(task_manager(data_dir), task_name)
    if not task.has_training_docs():
        raise SlmbenchError(f"gptq: task {task_name!r} has no train split to calibrate on")
    docs = list(task.training_docs())
    if not docs:
        raise SlmbenchError(f"gptq: the {task_name} train split is empty")
    use_chat = chat_template and bool(getattr(tokenizer, "chat_template", None))
    picked = random.Random(seed).sample(docs, min(n, len(docs)))
    return [render_prompt(tokenizer, task.doc_to_text(d), use_chat)
            + completion_text(task_name, task, d) for d in picked]


def group_size_for(config, wanted: int = 128) -> int:
    """The largest group size up to ``wanted`` dividing every linear layer's input width.

    SmolLM2-135M's hidden size is 576: 128-wide groups do not tile it, 64-wide ones do.
    """
    widths = [getattr(config, "hidden_size", 0), getattr(config, "intermediate_size", 0)]
    size = wanted
    while size > 8 and any(w % size for w in widths if w):
        size //= 2
    return size


def ensure_cpu_workers() -> None:
    """Give GPTQModel's CPU thread pool two workers, before gptqmodel is imported.

    It sizes the pool at half the cores (1 on a 2-core machine) but its model loader asks
    for 2 workers of it, and fails ("Virtual pool 'model_loader:cpu' requests 2 workers but
    parent 'cpu' only has 1"). An explicit ``GPTQMODEL_CPU_WORKERS`` is left alone.
    """
    import os

    if (os.cpu_count() or 1) < 4:
        os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")


def quantize_device() -> str:
    """CUDA when torch sees a GPU, else the CPU.

    GPTQ solves one least-squares problem per layer over the calibration activations: minutes
    for a 1B model on a GPU, hours on CPU cores.
    """
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def quantize_gptq(source: Path, target: Path, texts: list[str], bits: int = 4,
                  group_size: int | None = None) -> dict:
    """Quantize the HF checkpoint ``source`` into ``target`` (built aside, then renamed).

    The record (``DONE_FILE``) names the device it was quantized on.
    """
    import shutil
    import time

    ensure_cpu_workers()
    device = quantize_device()
    from gptqmodel import GPTQModel, QuantizeConfig
    from transformers import AutoConfig

    if not texts:
        raise SlmbenchError("gptq: no calibration texts")
    group = group_size or group_size_for(AutoConfig.from_pretrained(source))
    staged = target.with_name(target.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)
    started = time.perf_counter()
    model = GPTQModel.load(str(source), QuantizeConfig(bits=bits, group_size=group),
                           device=device)
    model.quantize(texts, batch_size=1)
    model.save(str(staged))
    record = {"source": str(source), "bits": bits, "group_size": group, "device": device,
              "calibration_texts": len(texts),
              "quantize_s": round(time.perf_counter() - started, 1)}
    (staged / DONE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staged.rename(target)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.quant.gptq")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--task", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--calibration", type=int, default=128)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--no-chat-template", action="store_true")
    args = parser.parse_args(argv)
    import os

    from transformers import AutoTokenizer

    # GPTQModel writes its quantization log under ./logs: keep it beside the checkpoint.
    args.source, args.target = args.source.resolve(), args.target.resolve()
    if args.data_dir and Path(args.data_dir).exists():
        args.data_dir = str(Path(args.data_dir).resolve())
    args.target.parent.mkdir(parents=True, exist_ok=True)
    os.chdir(args.target.parent)
    try:
        tokenizer = AutoTokenizer.from_pretrained(args.source)
        texts = calibration_texts(args.task, args.data_dir, tokenizer, args.calibration,
                                  chat_template=not args.no_chat_template)
        record = quantize_gptq(args.source, args.target, texts, bits=args.bits)
    except SlmbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
