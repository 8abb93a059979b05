"""Tampered artefacts: every byte-level class of change, each handed to the code that reads it.

Copies of real artefacts (a zoo manifest with two of its adapters, a committed eval run, a
baseline exported from it) are damaged one way at a time: a flipped byte, a truncation, files
swapped between entries, a pickle smuggled in, a symlink out of the folder, a path that
climbs out of its folder. Each damaged copy goes to its reader (adapter verification, the
run store, the regression gate's baseline loader). The outcome is one of:

* ``refused``: a one-line ``SlmbenchError`` (or, for the run store, the file listed as a
  problem and left out, which is how a leaderboard keeps rendering the rest);
* ``accepted``: read as if nothing happened (a failure of the campaign);
* ``traceback``: any other exception, or an error of more than one line (a failure).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.errors import SlmbenchError

REFUSED, ACCEPTED, TRACEBACK = "refused", "accepted", "traceback"


@dataclass
class Case:
    artefact: str
    change: str
    outcome: str
    detail: str


def _flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x40
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _classify(read: Callable[[], object]) -> tuple[str, str]:
    try:
        result = read()
    except SlmbenchError as err:
        text = str(err)
        return (REFUSED if "\n" not in text else TRACEBACK), text[:200]
    except Exception as err:  # noqa: BLE001 - any other exception is the finding
        first = str(err).splitlines()[0][:160] if str(err) else ""
        return TRACEBACK, f"{type(err).__name__}: {first}"
    problems = getattr(result, "problems", None)
    if problems:
        return REFUSED, str(problems[0])[:200]
    return ACCEPTED, "read without complaint"


# --- adapters and manifests -------------------------------------------------------------------

def _zoo_fixture(zoo_manifest: Path, root: Path, names: tuple[str, str]) -> Path:
    """Two entries of a real zoo, re-published as slmbench writes a manifest today."""
    from harness.artefacts.zoo_manifest import load_manifest, write_manifest

    entries = [e for e in load_manifest(zoo_manifest).adapters if e.name in names]
    for entry in entries:
        shutil.copytree(zoo_manifest.parent / entry.path, root / entry.path)
    path = root / zoo_manifest.name
    write_manifest(path, entries)
    return path


def _sealed_copy(run_folder: Path, folder: Path) -> None:
    """A committed run copied and sealed as ``write_run`` seals one today (its self-hash)."""
    from harness.runs.store import RUN_FILE, seal

    shutil.copytree(run_folder, folder)
    manifest = json.loads((folder / RUN_FILE).read_text())
    (folder / RUN_FILE).write_text(json.dumps(seal(manifest), indent=2))


def _verify_all(manifest_path: Path, pretrained: str, config) -> Callable[[], object]:
    def read():
        from harness.artefacts.zoo_manifest import load_manifest, verify_entry

        manifest = load_manifest(manifest_path)
        for entry in manifest.adapters:
            verify_entry(manifest, entry, pretrained, config)
    return read


def adapter_cases(zoo_manifest: Path, work: Path, names: tuple[str, str] = ("teleqna",
                                                                            "oranbench")):
    """(change, damage) pairs on a copied zoo; ``damage(root, manifest_path, entries)``."""
    def weights(root, e, i=0):
        return root / e[i]["path"] / "adapter_model.safetensors"

    def edit_manifest(field, value):
        """A hand edit that also recomputes the self-hash: the deeper checks must hold."""
        def damage(root, path, e):
            from harness.artefacts.zoo_manifest import SELF_HASH
            from harness.hashing import sha256_json

            raw = yaml.safe_load(path.read_text())
            raw["adapters"][0][field] = value
            raw[SELF_HASH] = sha256_json(raw["adapters"])
            path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return damage

    def swap(root, path, e):
        a, b = weights(root, e, 0), weights(root, e, 1)
        tmp = a.with_suffix(".tmp")
        a.rename(tmp)
        b.rename(a)
        tmp.rename(b)

    def symlink_out(root, path, e):
        outside = root.parent / "outside_weights.safetensors"
        shutil.copy2(weights(root, e), outside)
        weights(root, e).unlink()
        weights(root, e).symlink_to(outside)

    def pickle_in(root, path, e):
        import pickle

        (weights(root, e).parent / "adapter_model.bin").write_bytes(
            pickle.dumps({"exploit": "os.system"}))

    def pickle_only(root, path, e):
        pickle_in(root, path, e)
        weights(root, e).unlink()

    return [
        ("weights: one byte flipped", lambda r, p, e: _flip(weights(r, e))),
        ("weights: header byte flipped", lambda r, p, e: _flip(weights(r, e), 0.001)),
        ("weights: truncated", lambda r, p, e: _truncate(weights(r, e))),
        ("weights: emptied", lambda r, p, e: weights(r, e).write_bytes(b"")),
        ("weights: deleted", lambda r, p, e: weights(r, e).unlink()),
        ("config: deleted", lambda r, p, e: (weights(r, e).parent / "adapter_config.json")
         .unlink()),
        ("weights: swapped between two entries", swap),
        ("pickle smuggled in beside the weights", pickle_in),
        ("pickle instead of the weights", pickle_only),
        ("weights: symlink out of the folder", symlink_out),
        ("manifest: path climbs out (../..)", edit_manifest("path", "../../../../etc")),
        ("manifest: absolute path elsewhere", edit_manifest("path", "/etc")),
        ("manifest: sha256 edited", edit_manifest("sha256", "0" * 64)),
        ("manifest: base model swapped", edit_manifest("base_fingerprint", "f" * 16)),
        ("manifest: one byte flipped", lambda r, p, e: _flip(p, 0.5)),
        ("manifest: truncated", lambda r, p, e: _truncate(p)),
        ("manifest: unknown field", edit_manifest("exec", "rm -rf /")),
        ("manifest: hand-edited, hash left stale", lambda r, p, e: p.write_text(
            p.read_text().replace("rank: 16", "rank: 64", 1))),
        ("manifest: emptied", lambda r, p, e: p.write_text("")),
    ]


def run_adapter_cases(zoo_manifest: Path, work: Path) -> list[Case]:
    from transformers import AutoConfig

    from harness.artefacts.embedded import ensure_checkpoint

    config = AutoConfig.from_pretrained(ensure_checkpoint())
    cases = []
    for change, damage in adapter_cases(zoo_manifest, work):
        root = work / "zoo" / change.replace(" ", "_").replace("/", "_")
        root = root / "zoo"
        if root.parent.exists():
            shutil.rmtree(root.parent)
        root.mkdir(parents=True)
        path = _zoo_fixture(zoo_manifest, root, ("teleqna", "oranbench"))
        entries = yaml.safe_load(path.read_text())["adapters"]
        damage(root, path, entries)
        outcome, detail = _classify(_verify_all(path, "embedded", config))
        cases.append(Case("adapter zoo", change, outcome, detail))
    return cases


# --- run records and baselines ------------------------------------------------------------------

def run_record_cases(run_folder: Path, work: Path) -> list[Case]:
    from harness.report.regress import load_baseline, write_export
    from harness.runs.store import load_run

    manifest = json.loads((run_folder / "run.json").read_text())
    samples = sorted(n for n in manifest["files"] if n.startswith("samples/"))

    def edit_run(mutate):
        def damage(folder):  # a deliberate edit, resealed: the deeper checks must hold
            from harness.runs.store import seal

            path = folder / "run.json"
            data = json.loads(path.read_text())
            mutate(data)
            path.write_text(json.dumps(seal(data), indent=2))
        return damage

    def swap(folder):
        if len(samples) < 2:
            _flip(folder / samples[0])
            return
        a, b = folder / samples[0], folder / samples[1]
        tmp = a.with_suffix(".tmp")
        a.rename(tmp)
        b.rename(a)
        tmp.rename(b)

    def symlink_out(folder):
        outside = folder.parent / "outside.jsonl"
        outside.write_text('{"doc_id": 0, "id": "x", "score": 1.0}\n')
        (folder / samples[0]).unlink()
        (folder / samples[0]).symlink_to(outside)

    def traversal(data):
        data["files"]["../../../../etc/hostname"] = "0" * 64

    record_changes = [
        ("samples: one byte flipped", lambda f: _flip(f / samples[0])),
        ("samples: truncated", lambda f: _truncate(f / samples[0])),
        ("samples: deleted", lambda f: (f / samples[0]).unlink()),
        ("samples: swapped between two tasks", swap),
        ("samples: symlink out of the folder", symlink_out),
        ("results.json: truncated", lambda f: _truncate(f / "results.json")),
        ("run.json: one byte flipped", lambda f: _flip(f / "run.json", 0.01)),
        ("run.json: truncated", lambda f: _truncate(f / "run.json")),
        ("run.json: file list climbs out (../..)", edit_run(traversal)),
        ("run.json: schema version changed", edit_run(lambda d: d.update(schema_version=99))),
    ]
    cases = []
    for change, damage in record_changes:
        folder = work / "runs" / change.replace(" ", "_").replace("/", "_") / run_folder.name
        if folder.parent.exists():
            shutil.rmtree(folder.parent)
        _sealed_copy(run_folder, folder)
        damage(folder)
        outcome, detail = _classify(lambda f=folder: load_run(f))
        cases.append(Case("run record", change, outcome, detail))

    export = work / "baseline" / "baseline.json"
    export.parent.mkdir(parents=True, exist_ok=True)
    _sealed_copy(run_folder, work / "baseline" / "run")
    write_export([work / "baseline" / "run"], export)
    clean = export.read_text()

    def edit_export(mutate):
        def damage(path):
            data = json.loads(path.read_text())
            mutate(data)
            path.write_text(json.dumps(data))
        return damage

    def first_task(data):
        return data["tasks"][sorted(data["tasks"])[0]]

    def flip_score(data):
        per_doc = first_task(data)["per_doc"]
        key = sorted(per_doc)[0]
        per_doc[key] = 1.0 - per_doc[key]

    def drop_question(data):
        per_doc = first_task(data)["per_doc"]
        per_doc.pop(sorted(per_doc)[0])

    def swap_tasks(data):
        names = sorted(data["tasks"])
        if len(names) > 1:
            a, b = data["tasks"][names[0]], data["tasks"][names[1]]
            a["per_doc"], b["per_doc"] = b["per_doc"], a["per_doc"]
        else:
            flip_score(data)

    baseline_changes = [
        ("baseline: one score flipped", edit_export(flip_score)),
        ("baseline: a question removed", edit_export(drop_question)),
        ("baseline: scores swapped between tasks", edit_export(swap_tasks)),
        ("baseline: one byte flipped", lambda p: _flip(p, 0.5)),
        ("baseline: truncated", _truncate),
        ("baseline: kind changed", edit_export(lambda d: d.update(kind="other"))),
    ]
    for change, damage in baseline_changes:
        export.write_text(clean)
        damage(export)
        outcome, detail = _classify(lambda: load_baseline(export))
        cases.append(Case("baseline", change, outcome, detail))
    return cases
