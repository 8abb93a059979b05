"""A checkpoint folder as a GGUF at a given type, built once and cached by its content.

``slmbench bench`` and ``slmbench gguf`` share it, so a GGUF timed by the bench is the very
file an evaluation loads: the cache key is the checkpoint's file digest, and every type is
quantized from the same f32 export (f16 is exported directly, as llama.cpp's converter does).
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import SlmbenchError
from harness.hashing import files_digest, sha256_json
from harness.paths import cache_dir

GGUF_TYPES = ("f32", "f16", "q8_0", "q5_k_m", "q4_k_m", "q4_0")


def cached_gguf(source: Path, gguf_type: str) -> Path:
    """``source`` (a transformers checkpoint folder) as a GGUF of ``gguf_type``."""
    from harness.quant.gguf_export import export_gguf
    from harness.quant.quantize import quantize_gguf

    gguf_type = gguf_type.strip().lower()
    if gguf_type not in GGUF_TYPES:
        raise SlmbenchError(f"gguf: unknown type {gguf_type!r} (known: {', '.join(GGUF_TYPES)})")
    if not (Path(source) / "config.json").is_file():
        raise SlmbenchError(f"gguf: {source} is not a transformers checkpoint folder "
                            "(no config.json)")
    folder = cache_dir() / "bench" / f"gguf-{sha256_json(files_digest(Path(source)))[:16]}"
    f32 = folder / "model-f32.gguf"
    if gguf_type != "f16" and not f32.is_file():
        export_gguf(source, f32, dtype="f32")
    if gguf_type == "f32":
        return f32
    target = folder / f"model-{gguf_type}.gguf"
    if not target.is_file():
        if gguf_type == "f16":
            export_gguf(source, target, dtype="f16")
        else:
            quantize_gguf(f32, target, gguf_type)
    return target
