"""A LoRA adapter folded into its backbone as a plain checkpoint (what llama.cpp exports).

Training's distillation, the bench and ``slmbench merge`` all fold; the fold sits on the low
floor so none of them has to import another feature for it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError


def _adapter_shape_problem(model: Any, weights: Path) -> str | None:
    """Why the LoRA in ``weights`` cannot sit on ``model``, or None when every shape fits.

    Checked before peft loads it, so a LoRA trained on another backbone is reported as one
    line naming the first mismatching module instead of peft's size-mismatch traceback.
    """
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as fh:
        for key in fh.keys():  # noqa: SIM118 - safe_open is not a dict
            shape = tuple(fh.get_slice(key).get_shape())
            name = key.removeprefix("base_model.model.")
            for marker, dim, attr in ((".lora_A.", 1, "in_features"),
                                      (".lora_B.", 0, "out_features"),
                                      (".lora_embedding_A", 1, "num_embeddings"),
                                      (".lora_embedding_B", 0, "embedding_dim")):
                if marker in name:
                    module_name = name.split(marker)[0]
                    try:
                        module = model.get_submodule(module_name)
                    except AttributeError:
                        return f"the base has no module {module_name}"
                    want = getattr(module, attr, None)
                    if want is not None and shape[dim] != want:
                        return (f"{key} has {attr}={shape[dim]} but the base's {module_name} "
                                f"has {want}")
                    break
            else:
                params = dict(model.named_parameters())
                if name in params and tuple(params[name].shape) != shape:
                    return f"{key} has shape {shape}, the base has {tuple(params[name].shape)}"
    return None


def fold_adapter_into(base: str | Path | None, adapter_dir: Path, out_dir: Path,
                      overwrite: bool = False) -> Path:
    """Fold a LoRA adapter into its backbone and save a plain checkpoint + tokenizer.

    llama.cpp exports and quantizes plain checkpoints, so a fine-tuned model reaches GGUF
    through this fold (not to be confused with ``slmbench merge``, which combines adapters
    into one adapter). The folder is staged and swapped in whole.

    Args:
        base: The backbone: ``embedded`` (or None) for the embedded model, else a local
            checkpoint folder.
        adapter_dir: A peft adapter folder (adapter_config.json + adapter_model.safetensors).
        out_dir: Where the merged checkpoint goes.
        overwrite: Replace an existing non-empty ``out_dir``.

    Returns:
        ``out_dir``.

    Raises:
        SlmbenchError: missing adapter files, pickle-only weights, an adapter whose shapes do
            not fit the backbone, or an existing ``out_dir`` without ``overwrite``.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.artefacts.embedded import resolve_pretrained
    from harness.runs.atomic import replace_dir_atomic

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise SlmbenchError(f"merge: {adapter_dir / 'adapter_config.json'} is missing")
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        raise SlmbenchError(f"merge: {weights} is missing (only safetensors adapters are read)")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise SlmbenchError(f"merge: {out_dir} exists and is not empty (pass overwrite=True)")
    base_path = resolve_pretrained(None if base is None else str(base))
    try:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    except OSError as err:
        detail = " ".join(str(err).split())[:200]
        raise SlmbenchError(f"merge: cannot load base model {base_path}: {detail}") from err
    problem = _adapter_shape_problem(model, weights)
    if problem:
        raise SlmbenchError(f"merge: adapter {adapter_dir} does not fit base {base_path}: "
                            f"{problem}")
    try:
        merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    except (RuntimeError, ValueError, KeyError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SlmbenchError(f"merge: peft could not load {adapter_dir} onto {base_path}: "
                            f"{first_line}") from err
    has_own_tokenizer = (adapter_dir / "tokenizer_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir if has_own_tokenizer else base_path)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        merged.save_pretrained(staged, safe_serialization=True)
        tokenizer.save_pretrained(staged)
        replace_dir_atomic(staged, out_dir)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    return out_dir
