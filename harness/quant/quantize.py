"""Quantize a GGUF with llama.cpp itself (its header is read by ``artefacts.gguf_header``).

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
from pathlib import Path

from harness.artefacts.gguf_header import read_gguf_summary
from harness.errors import SlmbenchError

log = logging.getLogger(__name__)

# slmbench name -> llama_cpp ftype constant name.
QTYPES = {
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
}


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
