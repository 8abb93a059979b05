"""Adapter-zoo manifests: which LoRA adapter serves which task, and proof of what it is.

A manifest is a YAML file in ``adapters_zoo/``. Each entry names one adapter folder (relative
to the manifest) and records what a reviewer needs to trust it: the base model it was trained
on, its task, LoRA shape, the hash of its training data, its validation loss and test metrics,
its size and the sha256 of its weights. Loading re-checks the sha256 and the base model, and
accepts only safetensors, so a tampered, swapped or pickled adapter never reaches the model.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import SlmbenchError
from harness.hashing import sha256_file, sha256_json
from harness.runs.atomic import write_text_atomic

WEIGHTS_FILE = "adapter_model.safetensors"
# A manifest's hash of its own entries: one written by slmbench and changed since is refused
# (hand-written manifests, and those from before this field, carry none).
SELF_HASH = "adapters_sha256"
CONFIG_FILE = "adapter_config.json"
# Formats that unpickle arbitrary code on load; an adapter folder holding one is refused.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
# Config fields that pin a backbone's shape: an adapter trained on another shape is refused.
_SHAPE_FIELDS = (
    "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "intermediate_size", "vocab_size",
)


@dataclass
class AdapterEntry:
    """One adapter of the zoo, as recorded in its manifest."""

    name: str
    task: str
    path: str
    base_model: str
    base_fingerprint: str
    sha256: str
    rank: int
    alpha: int
    target_modules: list[str]
    size_mb: float
    train_data_sha256: str = ""
    val_loss: float | None = None
    test_metrics: dict[str, Any] = field(default_factory=dict)
    routes: list[str] = field(default_factory=list)
    chat_template: bool = True
    notes: str = ""
    # The seeded draw of train examples it learned from (harness.data.seen); {} if unknown.
    train_subset: dict[str, Any] = field(default_factory=dict)
    # Run-store eval runs whose scores are in test_metrics (``slmbench zoo record``).
    eval_runs: list[str] = field(default_factory=list)
    # Trained with its options (or labels) reshuffled every epoch (harness.train.permute), so
    # it cannot have learned the answer key's position; False for entries from before it.
    permute_options: bool = False

    def __post_init__(self) -> None:
        if not self.routes:
            # A benchmark's variants share its adapter: teleqna, teleqna_seen, teleqna_maj4 ...
            self.routes = [self.task, f"{self.task}_*"]

    def serves(self, task_name: str) -> bool:
        return any(fnmatch.fnmatchcase(task_name, pattern) for pattern in self.routes)


@dataclass
class Manifest:
    path: Path
    adapters: list[AdapterEntry]

    def folder_of(self, entry: AdapterEntry) -> Path:
        return (self.path.parent / entry.path).resolve()

    def route(self, task_name: str | None) -> AdapterEntry | None:
        """The first entry whose routes match ``task_name``; None means the plain backbone."""
        if task_name is None:
            return None
        return next((a for a in self.adapters if a.serves(task_name)), None)

    @property
    def base_model(self) -> str:
        bases = {a.base_model for a in self.adapters}
        if len(bases) != 1:
            raise SlmbenchError(
                f"{self.path}: adapters disagree on the base model ({', '.join(sorted(bases))})"
            )
        return bases.pop()


def base_name(pretrained: str | None) -> str:
    """A comparable name for a backbone: ``embedded``, or the last path component.

    A Hub id and a local copy of it (``org/Model`` vs ``/models/Model``) then compare equal,
    while a different checkpoint of the same architecture does not.
    """
    from harness.artefacts.embedded import checkpoint_dir, is_embedded

    if is_embedded(pretrained):
        return "embedded"
    text = str(pretrained).rstrip("/")
    if Path(text).expanduser().resolve() == checkpoint_dir().resolve():
        return "embedded"
    return text.rsplit("/", 1)[-1]


def base_fingerprint(config: Any) -> str:
    """Hash of the backbone's shape fields (architecture, sizes, vocabulary)."""
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return sha256_json({k: data.get(k) for k in _SHAPE_FIELDS})[:16]


def weights_problem(folder: Path, expected_sha256: str) -> str | None:
    """Why the adapter in ``folder`` must not be loaded, or None when it checks out."""
    if not folder.is_dir():
        return f"adapter folder {folder} does not exist"
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickled:
        return f"{folder} holds pickle weights ({', '.join(pickled)}); only safetensors is read"
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        return f"{weights} is missing"
    if not (folder / CONFIG_FILE).is_file():
        return f"{folder / CONFIG_FILE} is missing"
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        if not (folder / name).resolve().is_relative_to(folder.resolve()):
            return f"{folder / name} is a link out of the adapter folder; copy the file in"
    actual = sha256_file(weights)
    if actual != expected_sha256:
        return (f"{weights} sha256 {actual[:12]}... does not match the manifest's "
                f"{expected_sha256[:12]}... (tampered or replaced)")
    return None


def load_manifest(path: str | Path) -> Manifest:
    """Read and schema-check a manifest; weights are verified later, against the backbone."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SlmbenchError(f"adapter manifest {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        what = " ".join(str(getattr(err, "problem", None) or err).split())
        raise SlmbenchError(f"adapter manifest {path}: not valid YAML{where} ({what})") from None
    unknown = sorted(set(raw) - {"adapters", SELF_HASH}) if isinstance(raw, dict) else []
    if unknown:
        # Also how a damaged seal's key shows up: never read as "no seal, vouched for".
        raise SlmbenchError(f"adapter manifest {path}: unknown top-level key(s) {unknown}; "
                            f"a manifest holds 'adapters:' and optionally '{SELF_HASH}:'")
    rows = raw.get("adapters") if isinstance(raw, dict) else None
    if not isinstance(rows, list) or not rows:
        raise SlmbenchError(f"adapter manifest {path}: needs a non-empty 'adapters:' list")
    expected = raw.get(SELF_HASH)
    if expected is not None and sha256_json(rows) != expected:
        raise SlmbenchError(f"adapter manifest {path}: its entries do not match its "
                            f"{SELF_HASH} (edited by hand, truncated or corrupted); re-publish "
                            "the adapters or delete the line to vouch for the file")
    entries = []
    for i, row in enumerate(rows):
        try:
            entries.append(AdapterEntry(**row))
        except TypeError as err:
            raise SlmbenchError(f"adapter manifest {path}: entry {i}: {err}") from err
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise SlmbenchError(f"adapter manifest {path}: adapter names must be unique: {names}")
    return Manifest(path=path, adapters=entries)


def verify_entry(manifest: Manifest, entry: AdapterEntry, pretrained: str | None,
                 config: Any) -> Path:
    """Check an entry against the loaded backbone and its weights; return its folder."""
    where = f"adapter {entry.name!r} ({manifest.path})"
    loaded_name, loaded_fp = base_name(pretrained), base_fingerprint(config)
    if entry.base_fingerprint != loaded_fp or base_name(entry.base_model) != loaded_name:
        raise SlmbenchError(
            f"{where} was trained on base {entry.base_model!r} (shape {entry.base_fingerprint}) "
            f"but the loaded base is {loaded_name!r} (shape {loaded_fp})"
        )
    folder = manifest.folder_of(entry)
    problem = weights_problem(folder, entry.sha256)
    if problem:
        raise SlmbenchError(f"{where}: {problem}")
    return folder


def manifest_lock(path: str | Path):
    """The lock every read-modify-write of one manifest holds.

    Category adapters train side by side on one GPU (``scripts/study.sh``'s gpu profile) and
    each publishes into the same manifest when it finishes: without the lock, two publishes
    read the same old manifest and the later write drops the other's entry.
    """
    from filelock import FileLock

    path = Path(path)
    return FileLock(str(path.with_name(path.name + ".lock")))


def upsert_entry(path: str | Path, entry: AdapterEntry) -> None:
    """Add or replace (by name) one entry of a manifest, writing it atomically."""
    path = Path(path)
    with manifest_lock(path):
        entries = load_manifest(path).adapters if path.is_file() else []
        write_manifest(path, [e for e in entries if e.name != entry.name] + [entry])


def write_manifest(path: str | Path, entries: list[AdapterEntry]) -> None:
    rows = [asdict(e) for e in entries]
    # First in the file, so a truncated copy keeps the hash and loses entries: refused.
    payload = {SELF_HASH: sha256_json(rows), "adapters": rows}
    header = "# slmbench adapter zoo manifest (written by slmbench train / merge / zoo record)\n"
    write_text_atomic(Path(path), header + yaml.safe_dump(payload, sort_keys=False))


def describe_weights(folder: Path) -> tuple[str, float]:
    """sha256 and size in MB of an adapter folder's safetensors weights."""
    weights = folder / WEIGHTS_FILE
    return sha256_file(weights), round(weights.stat().st_size / 1e6, 3)
