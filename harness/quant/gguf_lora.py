"""Convert a peft LoRA adapter into a llama.cpp LoRA adapter GGUF for one GGUF backbone.

llama.cpp applies a LoRA at run time (``llama_adapter_lora_init`` + ``llama_set_adapters_lora``)
from a GGUF of kind ``general.type=adapter``, ``adapter.type=lora``, with one
``<base tensor>.lora_a`` / ``.lora_b`` pair per adapted weight and ``adapter.lora.alpha``;
llama.cpp scales each pair by ``alpha / rank`` (rank read from the pair), which is peft's
scaling. The reference writer is llama.cpp's ``convert_lora_to_gguf.py``; like
:mod:`harness.quant.gguf_export` this module reimplements the part slmbench needs with the
``gguf`` package alone.

Things that must match the base GGUF, or the adapter loads and computes nonsense:

- Tensor names come from gguf-py's name map for the backbone's architecture, as the export does.
- For ``llama`` the converter reverse-permuted the q/k rows of the base for interleaved RoPE
  (:func:`harness.quant.gguf_export.permute_qk`). ``B`` holds the output rows of the delta
  ``B @ A``, so ``lora_b`` of q_proj/k_proj is permuted the same way; ``lora_a`` is not.
- The shapes are checked against the base GGUF's own tensors before anything is written:
  llama.cpp refuses a mismatch only with a log line and a null pointer.

The converted file depends only on the adapter's bytes and on the backbone's architecture and
head counts (which decide the permutation), so it is cached under that key and made once.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import SlmbenchError
from harness.hashing import sha256_json
from harness.paths import cache_dir

log = logging.getLogger(__name__)

# Bump when the written file changes for the same inputs, so stale cache entries are not read.
CONVERTER_VERSION = 1
WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
# gguf architecture -> transformers ``model_type`` (Gemma 3 text is gemma3 in llama.cpp).
_MODEL_TYPES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "exaone4": "exaone4",
                "gemma3": "gemma3_text"}
# peft's key: base_model.model.<module>.lora_A.weight (older peft: lora_A.<adapter>.weight).
_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")


@dataclass(frozen=True)
class Backbone:
    """What an adapter must fit, read from a GGUF's header (no weights are loaded)."""

    path: Path
    architecture: str
    name: str  # general.name: an slmbench export writes its checkpoint folder's name there
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    n_vocab: int
    # tensor name -> (rows, columns) as numpy sees them: (out_features, in_features).
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    def config(self) -> dict[str, Any]:
        """The transformers config fields the zoo fingerprints a backbone by."""
        return {"model_type": _MODEL_TYPES.get(self.architecture, self.architecture),
                "hidden_size": self.n_embd, "num_hidden_layers": self.n_layer,
                "num_attention_heads": self.n_head, "num_key_value_heads": self.n_head_kv,
                "intermediate_size": self.n_ff, "vocab_size": self.n_vocab}


def read_backbone(path: str | os.PathLike) -> Backbone:
    """Architecture, sizes and tensor shapes of a model GGUF.

    Raises:
        SlmbenchError: unreadable file, an adapter GGUF instead of a model, or missing
            hyperparameters.
    """
    from harness.artefacts.gguf_header import read_gguf_header

    path = Path(path)
    try:
        header = read_gguf_header(path)
    except Exception as err:  # noqa: BLE001 - any parse failure means an unusable file
        raise SlmbenchError(f"gguf lora: {path} is not a readable GGUF file ({err})") from err

    value = header.get
    if value("general.type") == "adapter":
        raise SlmbenchError(f"gguf lora: {path} is a LoRA adapter GGUF, not a model")
    arch = str(value("general.architecture", ""))
    sizes = {key: value(f"{arch}.{key}") for key in
             ("block_count", "embedding_length", "feed_forward_length", "attention.head_count")}
    missing = [k for k, v in sizes.items() if v is None]
    if missing:
        raise SlmbenchError(f"gguf lora: {path} ({arch or 'no architecture'}) lacks "
                            f"{', '.join(f'{arch}.{k}' for k in missing)}")
    n_vocab = value(f"{arch}.vocab_size") or value("tokenizer.ggml.tokens", 0)  # its length
    n_head = int(sizes["attention.head_count"])
    return Backbone(
        path=path, architecture=arch, name=str(value("general.name", "")),
        n_layer=int(sizes["block_count"]), n_embd=int(sizes["embedding_length"]),
        n_ff=int(sizes["feed_forward_length"]), n_head=n_head,
        n_head_kv=int(value(f"{arch}.attention.head_count_kv", n_head)), n_vocab=int(n_vocab),
        shapes={t.name: tuple(reversed(t.shape)) for t in header.tensors},
    )


@dataclass(frozen=True)
class _Pair:
    module: str  # transformers module name, e.g. model.layers.0.self_attn.q_proj
    a_key: str
    b_key: str


def _read_config(adapter_dir: Path) -> dict[str, Any]:
    config_file = adapter_dir / CONFIG_FILE
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SlmbenchError(f"gguf lora: cannot read {config_file} ({err})") from err
    unsupported = [
        (config.get("peft_type", "LORA") != "LORA", f"peft_type {config.get('peft_type')}"),
        (bool(config.get("use_dora")), "DoRA (use_dora)"),
        (config.get("bias", "none") != "none" or bool(config.get("lora_bias")), "LoRA biases"),
        (bool(config.get("modules_to_save")), "modules_to_save (fully trained modules)"),
        (bool(config.get("fan_in_fan_out")), "fan_in_fan_out (Conv1D layers)"),
        (bool(config.get("target_parameters")), "target_parameters"),
        (any(v != config.get("lora_alpha") for v in (config.get("alpha_pattern") or {}).values()),
         "per-module alpha (alpha_pattern)"),
    ]
    for bad, what in unsupported:
        if bad:
            raise SlmbenchError(f"gguf lora: {adapter_dir} uses {what}, which llama.cpp's LoRA "
                                "adapters cannot express")
    return config


def _pairs(keys: list[str], where: Path) -> list[_Pair]:
    found: dict[str, dict[str, str]] = {}
    for key in keys:
        match = _KEY.match(key)
        if match is None:
            raise SlmbenchError(f"gguf lora: {where}: tensor {key} is not a LoRA A/B matrix "
                                "(embedding LoRAs and extra weights are not supported)")
        found.setdefault(match["module"], {})[match["ab"]] = key
    pairs = []
    for module, ab in sorted(found.items()):
        if set(ab) != {"A", "B"}:
            raise SlmbenchError(f"gguf lora: {where}: {module} has lora_{next(iter(ab))} "
                                "without its partner")
        pairs.append(_Pair(module, ab["A"], ab["B"]))
    if not pairs:
        raise SlmbenchError(f"gguf lora: {where} holds no LoRA tensors")
    return pairs


def _gguf_name(name_map: Any, module: str) -> str | None:
    return name_map.get_name(f"{module}.weight", try_suffixes=(".weight",))


def fit_problem(adapter_dir: str | os.PathLike, backbone: Backbone) -> str | None:
    """Why the adapter cannot sit on ``backbone``, or None when every A/B pair fits.

    Reads only the safetensors header, so it is cheap enough to run on every load.
    """
    import gguf
    from safetensors import safe_open

    adapter_dir = Path(adapter_dir)
    if backbone.architecture not in _MODEL_TYPES:
        return (f"the backbone's architecture {backbone.architecture!r} is not supported "
                f"(supported: {', '.join(_MODEL_TYPES)})")
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == backbone.architecture)
    name_map = gguf.get_tensor_name_map(arch, backbone.n_layer)
    with safe_open(str(adapter_dir / WEIGHTS_FILE), framework="np") as fh:
        keys = list(fh.keys())  # noqa: SIM118 - safe_open is not a dict
        for pair in _pairs(keys, adapter_dir / WEIGHTS_FILE):
            target = _gguf_name(name_map, pair.module)
            if target is None or target not in backbone.shapes:
                return f"the backbone has no tensor for {pair.module}"
            out_features, in_features = backbone.shapes[target][:2]
            a_shape = tuple(fh.get_slice(pair.a_key).get_shape())
            b_shape = tuple(fh.get_slice(pair.b_key).get_shape())
            if len(a_shape) != 2 or len(b_shape) != 2 or a_shape[0] != b_shape[1]:
                return f"{pair.module}: lora_A {a_shape} and lora_B {b_shape} do not chain"
            if a_shape[1] != in_features or b_shape[0] != out_features:
                return (f"{pair.module}: the adapter maps {a_shape[1]} -> {b_shape[0]} features "
                        f"but the backbone's {target} maps {in_features} -> {out_features}")
    return None


def convert_adapter(adapter_dir: str | os.PathLike, backbone: Backbone,
                    out_path: str | os.PathLike) -> Path:
    """Write the peft adapter in ``adapter_dir`` as a llama.cpp LoRA GGUF for ``backbone``.

    Matrices are written F16 when every source matrix is F16 (lossless), else F32 (lossless
    for BF16 and F32 sources). The file is staged beside ``out_path`` and renamed into place.

    Raises:
        SlmbenchError: an adapter llama.cpp cannot express, or one that does not fit.
    """
    import gguf
    from safetensors import safe_open

    adapter_dir, out_path = Path(adapter_dir), Path(out_path)
    config = _read_config(adapter_dir)
    problem = fit_problem(adapter_dir, backbone)
    if problem:
        raise SlmbenchError(f"gguf lora: adapter {adapter_dir} does not fit {backbone.path}: "
                            f"{problem}")
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == backbone.architecture)
    name_map = gguf.get_tensor_name_map(arch, backbone.n_layer)
    alpha = float(config.get("lora_alpha") or config.get("r") or 8)
    tensors: list[tuple[str, np.ndarray]] = []
    ranks: set[int] = set()
    with safe_open(str(adapter_dir / WEIGHTS_FILE), framework="pt") as fh:
        keys = list(fh.keys())  # noqa: SIM118 - safe_open is not a dict
        pairs = _pairs(keys, adapter_dir / WEIGHTS_FILE)
        all_f16 = all(str(fh.get_slice(k).get_dtype()) == "F16" for k in keys)
        out_dtype = np.float16 if all_f16 else np.float32
        for pair in pairs:
            import torch

            a = fh.get_tensor(pair.a_key).to(torch.float32).numpy()
            b = fh.get_tensor(pair.b_key).to(torch.float32).numpy()
            ranks.add(a.shape[0])
            b = _permuted_b(b, pair.module, backbone)
            target = _gguf_name(name_map, pair.module)
            tensors.append((f"{target}.lora_a", a.astype(out_dtype)))
            tensors.append((f"{target}.lora_b", b.astype(out_dtype)))
    if config.get("use_rslora"):
        # peft scales by alpha / sqrt(r), llama.cpp by alpha / r: fold sqrt(r) into alpha.
        if len(ranks) != 1:
            raise SlmbenchError(f"gguf lora: {adapter_dir}: rsLoRA with per-module ranks "
                                "cannot be written with llama.cpp's single alpha")
        alpha *= math.sqrt(next(iter(ranks)))
    _write(out_path, backbone.architecture, alpha, tensors,
           name=adapter_dir.resolve().name)
    log.info("gguf lora: %s -> %s (%d pairs, alpha %g)", adapter_dir, out_path,
             len(tensors) // 2, alpha)
    return out_path


def _permuted_b(b: np.ndarray, module: str, backbone: Backbone) -> np.ndarray:
    """``lora_b`` in the row order the backbone's converter gave q_proj/k_proj."""
    from harness.quant.gguf_export import permute_qk

    if backbone.architecture != "llama":
        return b
    if module.endswith(".q_proj"):
        return permute_qk(b, backbone.n_head, backbone.n_head)
    if module.endswith(".k_proj"):
        return permute_qk(b, backbone.n_head, backbone.n_head_kv)
    return b


def _write(out_path: Path, arch: str, alpha: float,
           tensors: list[tuple[str, np.ndarray]], name: str) -> None:
    from harness.quant.gguf_export import write_gguf_atomic

    def fill(writer) -> None:
        writer.add_type("adapter")
        writer.add_name(name)
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", alpha)
        for tensor_name, data in tensors:
            writer.add_tensor(tensor_name, np.ascontiguousarray(data))

    write_gguf_atomic(out_path, arch, fill)


def cached_adapter_gguf(adapter_dir: str | os.PathLike, sha256: str, backbone: Backbone) -> Path:
    """The adapter's GGUF for ``backbone``, converted on first use and then read from the cache.

    Keyed by the adapter weights' sha256 (checked by the caller, e.g. against the zoo
    manifest), its config, and what the conversion depends on in the backbone. The fit is
    checked every time: a cached file made for another backbone of the same shape family is
    still refused when this one differs.

    Raises:
        SlmbenchError: as :func:`convert_adapter`.
    """
    adapter_dir = Path(adapter_dir)
    config = _read_config(adapter_dir)
    problem = fit_problem(adapter_dir, backbone)
    if problem:
        raise SlmbenchError(f"gguf lora: adapter {adapter_dir} does not fit {backbone.path}: "
                            f"{problem}")
    key = sha256_json([CONVERTER_VERSION, sha256, config, backbone.architecture,
                       backbone.n_head, backbone.n_head_kv])[:12]
    target = cache_dir() / "gguf_lora" / f"{sha256[:16]}-{backbone.architecture}-{key}.gguf"
    if not target.is_file():
        convert_adapter(adapter_dir, backbone, target)
    return target
