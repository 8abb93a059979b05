"""What a GGUF file is, read from its header without loading it in llama.cpp.

Every engine, converter and record that meets a GGUF reads it here first: a missing, foreign
or truncated file is one line, not a crash inside llama.cpp.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError


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


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # GGUF order: the row length first, as ggml's ne[]
    type_name: str
    n_elements: int
    n_bytes: int
    data_offset: int


@dataclass(frozen=True)
class GGUFHeader:
    """The metadata and tensor directory of a GGUF, without the file's memory map."""

    fields: dict[str, Any]  # scalars and strings by key; an array field by its length
    tensors: tuple[TensorInfo, ...]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def read_gguf_header(path: str | Path) -> GGUFHeader:
    """The header of ``path``, parsed once per file version in this process.

    gguf-py parses every metadata field eagerly, a tokenizer's 49k tokens and merges
    included: about 5 s for SmolLM2 on 2 cores, and one llama.cpp run asks the same header
    for its name, its context and the backbone's shapes. Only plain values are kept: the
    reader (its memory map and parsed arrays, over 100 MB for SmolLM2) is freed before a
    model loads, so the bench's peak RSS does not count it. Keyed by inode, size and mtime,
    so a file replaced in place is read again.

    Raises:
        Whatever ``GGUFReader`` raises for an unreadable file (callers word it).
    """
    stat = Path(path).stat()
    return _cached_header(str(Path(path).resolve()), stat.st_ino, stat.st_size,
                          stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _cached_header(path: str, inode: int, size: int, mtime_ns: int) -> GGUFHeader:
    import gguf

    reader = gguf.GGUFReader(path)
    fields = {key: (len(field.data) if field.types and field.types[0] == gguf.GGUFValueType.ARRAY
                    else field.contents())
              for key, field in reader.fields.items()}
    tensors = tuple(TensorInfo(t.name, tuple(int(d) for d in t.shape), t.tensor_type.name,
                               int(t.n_elements), int(t.n_bytes), int(t.data_offset))
                    for t in reader.tensors)
    return GGUFHeader(fields, tensors)


def read_gguf_name(path: Path) -> str | None:
    """``general.name`` of a GGUF file; None when the file has none or cannot be read.

    Callers that only ask "whose export is this?" must not fail on a foreign file: the
    engine that loads it says what is wrong with it.
    """
    try:
        name = read_gguf_header(path).get("general.name")
    except Exception:  # noqa: BLE001 - unreadable means "no name here"
        return None
    return name if isinstance(name, str) else None


def read_gguf_summary(path: Path) -> GGUFSummary:
    """Architecture, file type, tensor and parameter counts, size and bits per weight.

    Bits per weight are counted over the tensor data (not the metadata), as llama.cpp
    reports them. A file whose tensors run past its end is refused: ``GGUFReader`` memory
    maps the file and would otherwise hand back short arrays from a truncated download.

    Raises:
        SlmbenchError: the file is missing, not a GGUF, or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise SlmbenchError(f"gguf: {path} does not exist")
    size = path.stat().st_size
    try:
        header = read_gguf_header(path)
        arch = header.get("general.architecture", "unknown")
        ftype = header.get("general.file_type")
        ftype = int(ftype) if ftype is not None else None
        context = header.get(f"{arch}.context_length")
        context = int(context) if context is not None else None
        tensors = header.tensors
    except Exception as err:  # noqa: BLE001 - any parse failure means an unusable file
        detail = " ".join(str(err).split())[:200]
        raise SlmbenchError(f"gguf: {path} is not a readable GGUF file "
                            f"({type(err).__name__}: {detail})") from err
    params = 0
    nbytes = 0
    types: dict[str, int] = {}
    for t in tensors:
        if t.data_offset + t.n_bytes > size:
            raise SlmbenchError(f"gguf: {path} is truncated (tensor {t.name} ends past "
                                f"byte {size})")
        params += t.n_elements
        nbytes += t.n_bytes
        types[t.type_name] = types.get(t.type_name, 0) + 1
    return GGUFSummary(
        path=str(path), architecture=str(arch), file_type=_file_type_name(ftype),
        tensor_count=len(tensors), parameter_count=params, file_size=size,
        bits_per_weight=round(8 * nbytes / params, 4) if params else 0.0,
        tensor_types=dict(sorted(types.items())), context_length=context,
    )
