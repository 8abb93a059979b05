"""A run's identity: the hash of everything that decides its scores, and where it is stored.

A run is named by the hash of its model and model arguments (with the content hash of local
weight files), tasks, limit, few-shot, chat template, generation kwargs, seeds, the data
source and the task definitions. Re-running the same command finds the finished folder and
reuses it; ``--force`` scores it again (its answers from the response cache) and ``--fresh``
runs the model again. lm-eval's raw output (and its response cache, which makes an interrupted
run resume) lives in ``<store>/eval/.work/<run_id>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.evaluation.spec import EvalSpec
from harness.hashing import files_digest, sha256_file, sha256_json
from harness.runs.store import RUN_FILE, store_root

# lm-eval run arguments that change what is scored (batch size, verbosity and paths do not).
IDENTITY_ARGS = ("model", "tasks", "limit", "samples", "num_fewshot", "apply_chat_template",
                 "fewshot_as_multiturn", "system_instruction", "gen_kwargs", "seed", "device")


def _device_kind(device: Any) -> str:
    return str(device or "cpu").split(":")[0]


def _data_stamp(metadata: dict[str, Any]) -> Any:
    """The data source: a local folder's file contents, or the Hub dataset id.

    Contents, not mtimes: the same data copied again (a fresh clone's ``../shared``, a new
    session) must find its finished runs, and an edited file must not.
    """
    from harness.data.benchmarks import HUB_DATASET
    from harness.data.source import resolve_data_dir

    folder = resolve_data_dir(metadata.get("data_dir"))
    if folder is None:
        return {"hub": HUB_DATASET}
    return {"local": files_digest(folder)}


_DEFINITION_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".txt", ""}  # "": YAML templates


def _is_definition(path: Path) -> bool:
    return path.suffix in _DEFINITION_SUFFIXES and "__pycache__" not in path.parts


def _definition_files(spec: EvalSpec) -> list[tuple[str, Path]]:
    import harness
    from harness.paths import tasks_dir

    package = Path(harness.__file__).resolve().parent
    roots = [("tasks", tasks_dir()), ("data", package / "data"),
             ("scoring", package / "scoring"), ("prompts", package / "prompts.py")]
    for i, path in enumerate(spec.include_path):
        if path and Path(path).resolve() != tasks_dir().resolve():
            roots.append((f"include_{i}", Path(path)))
    files = []
    for name, root in roots:
        if root.is_file():
            files.append((name, root))
        elif root.is_dir():
            files += [(f"{name}/{p.relative_to(root)}", p) for p in sorted(root.rglob("*"))
                      if p.is_file() and _is_definition(p)]
    return files


def task_definitions(spec: EvalSpec) -> str:
    """A hash of everything that builds and scores a task beyond its name.

    The task YAMLs (and the templates they include), slmbench's data loading and splitting,
    synthetic generators, prompts and scoring. Any edit gives new run ids, so a run is never
    reused across a change to how its questions are asked or scored.
    """
    return sha256_json([(name, sha256_file(path)) for name, path in _definition_files(spec)])


def identity(spec: EvalSpec) -> dict[str, Any]:
    """What makes two runs the same run."""
    key = {name: getattr(spec, name) for name in IDENTITY_ARGS}
    key["device"] = _device_kind(key["device"])
    tasks = key["tasks"] or []
    key["tasks"] = sorted(t for entry in tasks for t in str(entry).split(",") if t)
    key["model_args"] = {k: str(v) for k, v in sorted((spec.model_args or {}).items())}
    key["weights"] = model_fingerprint(spec.model, spec.model_args or {})
    metadata = spec.metadata or {}
    key["metadata"] = {k: v for k, v in sorted(metadata.items()) if k != "data_dir"}
    key["data"] = _data_stamp(metadata)
    key["task_definitions"] = task_definitions(spec)
    if str(spec.model).startswith("llama-cpp"):
        from harness.models.llama_cpp_patches import llama_cpp_env

        # another libllama or one of slmbench's patches is another run; absent when stock, so
        # the ids of stock runs stay what they were
        env = llama_cpp_env()
        if env:
            key["llama_cpp_env"] = env
    return key


def id_of(key: dict[str, Any]) -> str:
    """The run id of an ``identity``.

    Callers take the identity once per run: it hashes the task definitions and stats the data
    folder, and the folder a run was looked up under must be the one it is written to.
    """
    return sha256_json(key)[:16]


def run_folder(run_id: str, root: str | Path | None = None) -> Path:
    return store_root(root) / "eval" / run_id


def work_folder(run_id: str, root: str | Path | None = None) -> Path:
    return store_root(root) / "eval" / ".work" / run_id


def finished_run(run_id: str, root: str | Path | None = None) -> Path | None:
    folder = run_folder(run_id, root)
    return folder if (folder / RUN_FILE).is_file() else None


def model_fingerprint(model: str, model_args: dict[str, Any]) -> str:
    """A short hash naming the exact weights a run evaluates, for its response cache.

    Local files count by content (names relative to the argument), so a copied checkpoint
    or a clone in another folder names the same weights, and retrained ones never match.
    """
    import hashlib

    files = []
    for name, value in sorted(model_args.items()):
        path = Path(str(value)).expanduser()
        if isinstance(value, str) and path.exists():
            files += [(name, *entry) for entry in files_digest(path)]
    payload = json.dumps([model, sorted(model_args.items(), key=str), files], default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
