"""What a GGUF file is, read from its header without loading it in llama.cpp.

Every engine, converter and record that meets a GGUF reads it here first: a missing, foreign
or truncated file is one line, not a crash inside llama.cpp.
"""

from __future__ import annotations

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


def read_gguf_name(path: Path) -> str | None:
    """``general.name`` of a GGUF file; None when the file has none or cannot be read.

    Callers that only ask "whose export is this?" must not fail on a foreign file: the
    engine that loads it says what is wrong with it.
    """
    import gguf

    try:
        field = gguf.GGUFReader(str(path)).fields.get("general.name")
        name = field.contents() if field is not None else None
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
