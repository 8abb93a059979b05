"""How many parameters a checkpoint holds, read from its safetensors headers.

Training (memory checks, adapter sizes) and timing (bandwidth per token) both need it, so it
sits with the models rather than in either.
"""

from __future__ import annotations

from pathlib import Path


def checkpoint_params(folder: Path) -> int:
    """Parameters stored in a checkpoint's safetensors files (read from their headers)."""
    from safetensors import safe_open

    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), "pt") as fh:
            for key in fh.keys():
                count = 1
                for dim in fh.get_slice(key).get_shape():
                    count *= int(dim)
                total += count
    return total
