"""Quantize a GGUF with llama.cpp itself, and describe a GGUF file without loading it.

Quantization goes through llama-cpp-python's binding of ``llama_model_quantize``, so the
per-tensor type mixes (which tensors a ``Q4_K_M`` keeps at 6 bits, the fallbacks for rows
that are not a multiple of 256) are exactly those of ``llama-quantize``. It runs in a child
process, so a file that crashes llama.cpp is a one-line error.
"""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError

log = logging.getLogger(__name__)

# slmbench name -> llama_cpp ftype constant name.
QTYPES = {
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
}


@dataclass(frozen=True)
class GGUFSummary:
    """What a results record needs to know about a GGUF file."""

    path: str
    architecture: str
    file_type: str
    tensor_count: int
    parameter_count: int
    file_size: int
    bits_per_weight: float
    tensor_types: dict[str, int] = field(default_factory=dict)
    # ``<arch>.context_length``: the context the model was trained with (None if unstated).
    context_length: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _file_type_name(value: int | None) -> str:
    import gguf

    if value is None:
        return "unknown"
    try:
        name = gguf.LlamaFileType(value).name
    except ValueError:
        return f"unknown({value})"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def read_gguf_summary(path: Path) -> GGUFSummary:
    """Architecture, file type, tensor and parameter counts, size and bits per weight.

    Bits per weight are counted over the tensor data (not the metadata), as llama.cpp
    reports them. A file whose tensors run past its end is refused: ``GGUFReader`` memory
    maps the file and would otherwise hand back short arrays from a truncated download.

    Raises:
        SlmbenchError: the file is missing, not a GGUF, or truncated.
    """
    import gguf

    path = Path(path)
    if not path.is_file():
        raise SlmbenchError(f"gguf: {path} does not exist")
    size = path.stat().st_size
    try:
        reader = gguf.GGUFReader(str(path))
        fields = reader.fields
        arch_field = fields.get("general.architecture")
        arch = arch_field.contents() if arch_field is not None else "unknown"
        ftype_field = fields.get("general.file_type")
        ftype = int(ftype_field.contents()) if ftype_field is not None else None
        context_field = fields.get(f"{arch}.context_length")
        context = int(context_field.contents()) if context_field is not None else None
        tensors = list(reader.tensors)
    except Exception as err:  # noqa: BLE001 - any parse failure means an unusable file
        detail = " ".join(str(err).split())[:200]
        raise SlmbenchError(f"gguf: {path} is not a readable GGUF file "
                            f"({type(err).__name__}: {detail})") from err
    params = 0
    nbytes = 0
    types: dict[str, int] = {}
    for t in tensors:
        if int(t.data_offset) + int(t.n_bytes) > size:
            raise SlmbenchError(f"gguf: {path} is truncated (tensor {t.name} ends past "
                                f"byte {size})")
        params += int(t.n_elements)
        nbytes += int(t.n_bytes)
        type_name = t.tensor_type.name
        types[type_name] = types.get(type_name, 0) + 1
    return GGUFSummary(
        path=str(path), architecture=str(arch), file_type=_file_type_name(ftype),
        tensor_count=len(tensors), parameter_count=params, file_size=size,
        bits_per_weight=round(8 * nbytes / params, 4) if params else 0.0,
        tensor_types=dict(sorted(types.items())), context_length=context,
    )


def quantize_gguf(src: Path, dst: Path, qtype: str, nthread: int = 0) -> Path:
    """Quantize the F32/F16 GGUF ``src`` into ``dst`` with llama.cpp.

    llama.cpp writes its output in place, so it writes a temp file beside ``dst`` that is
    renamed only after a successful run: a failed or killed quantization leaves no ``dst``.

    Args:
        src: An F32/F16 GGUF (e.g. from :func:`harness.quant.gguf_export.export_gguf`).
        dst: Output path; its folder is created.
        qtype: ``q8_0``, ``q5_k_m``, ``q4_k_m`` or ``q4_0`` (any case).
        nthread: Quantization threads; 0 lets llama.cpp use every core.

    Returns:
        ``dst``.

    Raises:
        SlmbenchError: unknown ``qtype``, unreadable ``src``, or llama.cpp reporting failure.
    """
    src, dst = Path(src), Path(dst)
    key = str(qtype).strip().lower()
    if key not in QTYPES:
        raise SlmbenchError(f"quantize: unknown type {qtype!r} for {src} "
                            f"(one of {', '.join(QTYPES)})")
    read_gguf_summary(src)  # a clear one-line error for a missing/corrupt input
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # In a child process: llama.cpp may crash on a file it cannot handle, and that must
        # cost this quantization, not the caller's process.
        proc = subprocess.run([sys.executable, "-m", "harness.quant.quantize", str(src),
                               str(tmp), key, str(int(nthread))],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            from harness.child import llama_failure

            raise SlmbenchError(f"quantize: llama.cpp failed to make {key} from {src}: "
                                f"{llama_failure(proc)}")
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("quantize: %s -> %s (%s)", src, dst, key)
    return dst


def _quantize(src: str, dst: str, key: str, nthread: int) -> int:
    import llama_cpp

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QTYPES[key])
    params.nthread = nthread
    code = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if code != 0:
        print(f"llama_model_quantize returned {code}", file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    sys.exit(_quantize(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
