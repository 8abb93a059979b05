"""The run store: one self-describing folder per run, the only input of leaderboards and gates.

A run folder holds ``run.json`` (the manifest) and the files it lists with their sha256. The
manifest names the run's kind (``eval``, ``bench``, ``sweep``, ``train``), its configuration,
environment and git sha; paths inside it are relative to the folder, so a folder copied to
another machine still loads and renders. Loading re-hashes every listed file: a truncated or
hand-edited file is reported by name and left out, while the rest of the run still loads.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonlines

from harness.errors import SlmbenchError
from harness.hashing import sha256_file, sha256_json
from harness.paths import REPO_ROOT
from harness.runs.atomic import write_json_atomic, write_text_atomic

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
# run.json's hash of its own other fields: the one file the file hashes cannot vouch for.
SELF_HASH = "manifest_sha256"
STORE_ENV = "SLMBENCH_RUNS"
KINDS = ("eval", "bench", "sweep", "train", "judge")


def store_root(root: str | Path | None = None) -> Path:
    """Where runs are kept: ``root``, else ``$SLMBENCH_RUNS``, else ``runs/``."""
    return Path(root or os.environ.get(STORE_ENV) or "runs")


def git_state() -> dict[str, Any]:
    """The commit the code ran at, and whether the tree had local changes.

    Only a checkout (or editable install) has a commit: a wheel lives in site-packages,
    where ``git`` would report whatever repository happens to enclose the virtualenv.
    """
    if not (REPO_ROOT / "pyproject.toml").is_file():
        return {"sha": None, "dirty": None}

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    import importlib.metadata as md

    versions = {}
    for dist in ("slmbench", "lm_eval", "torch", "transformers", "peft", "llama_cpp_python",
                 "gguf", "vllm", "gptqmodel"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return versions


def hardware() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"machine": platform.machine(), "cpu": cpu, "cores": os.cpu_count(), "gpu": _gpu(),
            "python": platform.python_version()}


def _gpu() -> str | None:
    """The GPU's name through NVML, so recording a run never has to import torch."""
    try:
        import pynvml

        pynvml.nvmlInit()
        name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001 - no NVML, no driver or no GPU: all mean "none here"
        return None



def write_samples(path: Path, rows: list[dict[str, Any]]) -> None:
    """Per-sample records as JSON Lines, written atomically."""
    import io

    buffer = io.StringIO()
    with jsonlines.Writer(buffer, sort_keys=True) as writer:
        writer.write_all(rows)
    write_text_atomic(path, buffer.getvalue())


def write_run(folder: Path, kind: str, run_id: str, config: dict[str, Any],
              files: list[str], extra: dict[str, Any] | None = None,
              started: float | None = None) -> dict[str, Any]:
    """Write ``run.json`` for files already in ``folder``; it goes last, so it marks a run done.

    ``files`` are paths relative to ``folder``; each is hashed into the manifest.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}")
    folder = Path(folder)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "run_id": run_id,
        "config": config,
        "environment": {"packages": package_versions(), "hardware": hardware(),
                        "git": git_state()},
        "started": _iso(started) if started else None,
        "finished": _iso(time.time()),
        "files": {name: sha256_file(folder / name) for name in sorted(files)},
        **(extra or {}),
    }
    seal(manifest)
    write_json_atomic(folder / RUN_FILE, manifest)
    return manifest


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of a run manifest's fields other than its own seal."""
    return sha256_json({k: v for k, v in manifest.items() if k != SELF_HASH})


def seal(manifest: dict[str, Any]) -> dict[str, Any]:
    """(Re)write the manifest's seal, last, over its current fields."""
    manifest.pop(SELF_HASH, None)
    manifest[SELF_HASH] = manifest_digest(manifest)
    return manifest


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


@dataclass
class Run:
    """A loaded run folder. ``problems`` lists what could not be read, one line each."""

    path: Path
    manifest: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    _bad: set[str] = field(default_factory=set)

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    @property
    def label(self) -> str:
        return self.manifest.get("label") or self.run_id

    def readable(self, name: str) -> bool:
        return name in self.manifest.get("files", {}) and name not in self._bad

    def json(self, name: str) -> Any:
        """A listed JSON file, or None when it is missing or failed its hash check."""
        if not self.readable(name):
            return None
        return json.loads((self.path / name).read_text(encoding="utf-8"))

    def jsonl(self, name: str) -> list[dict[str, Any]] | None:
        if not self.readable(name):
            return None
        with jsonlines.open(self.path / name) as reader:
            return list(reader)

    # --- eval runs -------------------------------------------------------------------------

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Per task: metric, value, stderr, n, version, benchmark, data_sha256, samples file."""
        return self.manifest.get("tasks", {})

    def samples(self, task: str) -> list[dict[str, Any]] | None:
        info = self.tasks().get(task)
        return self.jsonl(info["samples"]) if info and info.get("samples") else None

    def per_doc(self, task: str) -> dict[str, float] | None:
        """Question id -> score of the task's headline metric (1/0 for exact match).

        A circular task logs one row per rotation of a question; the question scores 1 only
        when every rotation is right (its ``circular_id`` keys it), as its strict metric does.
        """
        rows = self.samples(task)
        if rows is None:
            return None
        scores: dict[str, float] = {}
        rotations: dict[str, int] = {}
        for row in rows:
            if "circular_id" not in row:
                scores[row["id"]] = float(row["score"])
                continue
            key = row["circular_id"]
            scores[key] = min(scores.get(key, 1.0), float(row["score"]))
            rotations[key] = rotations.get(key, 0) + 1
        expected = {r["circular_id"]: r.get("n_rotations") for r in rows if "circular_id" in r}
        for key, seen in rotations.items():  # a question --limit cut short is not scored
            if expected[key] and seen < expected[key]:
                del scores[key]
        return scores


def load_run(folder: str | Path) -> Run:
    """Load and verify a run folder; files failing their hash are listed in ``problems``."""
    folder = Path(folder)
    path = folder / RUN_FILE
    if not path.is_file():
        raise SlmbenchError(f"{folder}: not a run folder (no {RUN_FILE}; an interrupted run "
                            "leaves none)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SlmbenchError(f"{path}: unreadable run manifest ({err})") from None
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if version != SCHEMA_VERSION:
        raise SlmbenchError(f"{path}: run schema version {version!r}, this slmbench reads "
                            f"version {SCHEMA_VERSION}")
    missing = [k for k in ("kind", "run_id", "config", "files") if k not in manifest]
    if missing:
        raise SlmbenchError(f"{path}: run manifest lacks {', '.join(missing)}")
    expected = manifest.get(SELF_HASH)
    if expected is not None and manifest_digest(manifest) != expected:
        raise SlmbenchError(f"{path}: content changed since the run (its {SELF_HASH} does not "
                            "match; edited or corrupted)")
    run = Run(folder, manifest)
    inside = folder.resolve()
    for name, digest in manifest["files"].items():
        file = folder / name
        if not file.resolve().is_relative_to(inside):
            run.problems.append(f"{file}: listed in {RUN_FILE} but outside the run folder "
                                "(a link or a ../ path); not read")
            run._bad.add(name)
        elif not file.is_file():
            run.problems.append(f"{file}: listed in {RUN_FILE} but missing")
            run._bad.add(name)
        elif sha256_file(file) != digest:
            run.problems.append(f"{file}: content changed since the run (sha256 mismatch; "
                                "truncated or edited)")
            run._bad.add(name)
    return run


def find_runs(root: str | Path, kind: str | None = None) -> tuple[list[Run], list[str]]:
    """Every finished run under ``root`` (sorted by path), and one line per folder refused."""
    runs, problems = [], []
    for path in sorted(Path(root).rglob(RUN_FILE)):
        if any(part.startswith(".") for part in path.relative_to(root).parts[:-1]):
            continue  # staging and cache folders
        try:
            run = load_run(path.parent)
        except SlmbenchError as err:
            problems.append(str(err))
            continue
        if kind is None or run.kind == kind:
            runs.append(run)
            problems += run.problems
    return runs, problems
