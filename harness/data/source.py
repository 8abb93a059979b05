"""Load a benchmark from a local data directory or the Hub, validate it, and split it.

This is the ``custom_dataset`` behind every task YAML. lm-eval calls it with the task's
metadata (including whatever the user passed with ``--metadata``) and its
``dataset_kwargs``, which name the benchmark.

Precedence of data sources: ``--metadata '{"data_dir": ...}'``, then the
``SLMBENCH_DATA_DIR`` environment variable, then the Hub's ``GSMA/ot-full``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from harness.data.benchmarks import BENCHMARKS, HUB_DATASET, Benchmark
from harness.data.importers import LOCAL_READERS, RawRow, hub_rows
from harness.data.records import LoadReport, RowError, make_record
from harness.data.splits import DEFAULT_SEED, SPLITS, split_records
from harness.errors import SlmbenchError
from harness.hashing import sha256_json

log = logging.getLogger(__name__)

DATA_DIR_ENV = "SLMBENCH_DATA_DIR"
# Reports of the loads done in this process, read by the CLI to print and save them.
LOAD_REPORTS: dict[str, LoadReport] = {}
_CACHE: dict[tuple[str, str, int], dict[str, list[dict[str, Any]]]] = {}


def benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise SlmbenchError(
            f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}"
        ) from None


def local_files(bench: Benchmark, data_dir: Path) -> list[Path]:
    """The files for ``bench`` under ``data_dir``, or [] when it holds none.

    Accepted layouts: ``<dir>/<name or hub config>/`` with raw upstream files, canonical
    JSONL (plain or gzipped)/JSON, or parquet shards; or single files ``<dir>/<name>.jsonl``
    (or ``.jsonl.gz``) and the ``ot-lite`` style ``<dir>/test_<config>.json``.
    """
    for folder in (data_dir / bench.name, data_dir / bench.hub_config):
        if folder.is_dir():
            for pattern, _ in LOCAL_READERS:
                found = sorted(folder.glob(pattern))
                if found:
                    return found
    for stem in (bench.name, bench.hub_config, f"test_{bench.hub_config}"):
        for suffix in (".jsonl", ".jsonl.gz", ".json", ".parquet"):
            if (data_dir / f"{stem}{suffix}").is_file():
                return [data_dir / f"{stem}{suffix}"]
    return []


def _reader_for(path: Path):
    for pattern, reader in LOCAL_READERS:
        if path.match(pattern):
            return reader
    raise SlmbenchError(f"{path}: no importer for this file type")


def _rows_from_local(bench: Benchmark, data_dir: Path) -> tuple[str, list[RawRow]]:
    files = local_files(bench, data_dir)
    if not files:
        raise SlmbenchError(
            f"data dir {data_dir} has no files for {bench.name} (looked for "
            f"{bench.name}/ or {bench.hub_config}/ with "
            f"{', '.join(pattern for pattern, _ in LOCAL_READERS)}; or {bench.name}.jsonl)"
        )
    rows: list[RawRow] = []
    for path in files:
        rows.extend(_reader_for(path)(path))
    return ", ".join(str(p) for p in files), rows


def _rows_from_hub(bench: Benchmark) -> tuple[str, list[RawRow]]:
    import datasets

    try:
        loaded = datasets.load_dataset(HUB_DATASET, bench.hub_config, split="test")
    except Exception as err:  # noqa: BLE001 - offline errors come in many types
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SlmbenchError(
            f"{bench.name}: cannot load {HUB_DATASET}/{bench.hub_config} from the Hub "
            f"({first_line[:160]}); set {DATA_DIR_ENV} or --metadata "
            "'{\"data_dir\": \"...\"}' to read local files"
        ) from err
    source = f"hf://{HUB_DATASET}/{bench.hub_config}"
    return source, list(hub_rows(source, loaded))


def _rows_from_synthetic(bench: Benchmark) -> tuple[str, list[RawRow]]:
    """The offline generated set (deterministic, seed 42); split later by scenario."""
    from harness.data.synth.benchmarks import generated_records

    source, records = generated_records(bench.name)
    rows: list[RawRow] = [(f"generated row {index}", {
        "question": r["question"], "answer": r["answer"], "subject": r["subject"],
        "extra": {"scenario": r["scenario"]}}) for index, r in enumerate(records)]
    return source, rows


def build_records(bench: Benchmark, rows: list[RawRow], source: str) -> tuple[list, LoadReport]:
    """Validate rows into records; bad rows and exact duplicates are counted, not fatal."""
    report = LoadReport(benchmark=bench.name, source=source)
    records, seen = [], set()
    for where, fields in rows:
        if isinstance(fields, RowError):
            report.skip(where, fields)
            continue
        try:
            record = make_record(kind=bench.kind, **fields)
        except RowError as err:
            report.skip(where, err)
            continue
        if record["id"] in seen:
            report.duplicates += 1
            continue
        seen.add(record["id"])
        records.append(record)
    report.kept = len(records)
    report.sha256 = sha256_json(sorted(records, key=lambda r: r["id"]))
    if not records:
        raise SlmbenchError(f"{bench.name}: no valid rows in {source} ({report.summary()})")
    if bench.kind == "label":
        labels = sorted({r["answer"] for r in records})
        for r in records:
            r["labels"] = labels
    return records, report


def resolve_data_dir(data_dir: Any) -> Path | None:
    """The local data directory in force, validated, or None for the Hub."""
    raw = data_dir if data_dir not in (None, "") else os.environ.get(DATA_DIR_ENV)
    if raw in (None, ""):
        return None
    where = "--metadata data_dir" if data_dir not in (None, "") else DATA_DIR_ENV
    if not isinstance(raw, (str, os.PathLike)):
        raise SlmbenchError(f"{where} must be a path string, got {raw!r}")
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise SlmbenchError(f"{where}={raw}: directory not found")
    return path.resolve()


def load_splits(
    name: str, data_dir: Any = None, seed: Any = DEFAULT_SEED
) -> dict[str, list[dict[str, Any]]]:
    """Records of ``name`` split into train/validation/test, cached per process."""
    bench = benchmark(name)
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise SlmbenchError(f"--metadata split_seed must be an integer, got {seed!r}") from None
    folder = resolve_data_dir(data_dir)
    key = (name, str(folder), seed)
    if key not in _CACHE:
        if bench.synthetic and not (folder and local_files(bench, folder)):
            source, rows = _rows_from_synthetic(bench)
        elif folder:
            source, rows = _rows_from_local(bench, folder)
        else:
            source, rows = _rows_from_hub(bench)
        records, report = build_records(bench, rows, source)
        LOAD_REPORTS[name] = report
        (log.warning if report.skipped else log.info)("%s", report.summary())
        _CACHE[key] = split_records(records, seed)
    return _CACHE[key]


def load_task_dataset(benchmark: str, data_dir: Any = None, split_seed: Any = DEFAULT_SEED,
                      **_metadata: Any):
    """lm-eval ``custom_dataset`` hook: a ``DatasetDict`` with train/validation/test.

    Unrelated metadata (``version``, model args lm-eval merges in) is accepted and ignored.
    """
    import datasets

    parts = load_splits(benchmark, data_dir=data_dir, seed=split_seed)
    return datasets.DatasetDict(
        {split: datasets.Dataset.from_list(parts[split]) for split in SPLITS if parts[split]}
    )
