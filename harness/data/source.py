"""Load a benchmark from a local data directory or the Hub, validate it, and split it.

This is the ``custom_dataset`` behind every task YAML. lm-eval calls it with the task's
metadata (including whatever the user passed with ``--metadata``) and its
``dataset_kwargs``, which name the benchmark.

Precedence of data sources: ``--metadata '{"data_dir": ...}'``, then the
``SLMBENCH_DATA_DIR`` environment variable, then the Hub's ``GSMA/ot-full``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.data.benchmarks import BENCHMARKS, HUB_DATASET, Benchmark
from harness.data.importers import LOCAL_READERS, RawRow, hub_rows
from harness.data.records import LoadReport, RowError, make_record
from harness.data.splits import DEFAULT_SEED, SPLITS, held_out_splits, split_records
from harness.errors import SlmbenchError
from harness.flags import as_bool
from harness.hashing import sha256_json

log = logging.getLogger(__name__)

DATA_DIR_ENV = "SLMBENCH_DATA_DIR"
# A run reads the reports of its own loads through ``collect_load_reports``: lm-eval calls
# the loader, so this is the way back.
_COLLECTORS: list[dict[str, LoadReport]] = []
_CACHE: dict[tuple, tuple[dict[str, list[dict[str, Any]]], LoadReport]] = {}
# Fields a task may ask for through ``dataset_kwargs: {fields: [...]}`` (the free-form
# TeleQnA scores against the explanation). Left out otherwise, so the records and their hash
# (``data_sha256``) of every other task do not depend on them.
OPTIONAL_FIELDS = ("explanation",)


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


def looked_for(bench: Benchmark) -> str:
    """Where ``local_files`` looks, each place named once.

    Most benchmarks' folder name is their Hub config's too: "telelogs/ or telelogs/" read as
    a typo.
    """
    folders = " or ".join(f"{name}/" for name in dict.fromkeys((bench.name, bench.hub_config)))
    return (f"{folders} with {', '.join(pattern for pattern, _ in LOCAL_READERS)}; "
            f"or {bench.name}.jsonl")


def _rows_from_local(bench: Benchmark, data_dir: Path) -> tuple[str, list[RawRow]]:
    files = local_files(bench, data_dir)
    if not files:
        raise SlmbenchError(
            f"data dir {data_dir} has no files for {bench.name} (looked for {looked_for(bench)})"
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


def build_records(bench: Benchmark, rows: list[RawRow], source: str,
                  fields: tuple[str, ...] = ()) -> tuple[list, LoadReport]:
    """Validate rows into records; bad rows and exact duplicates are counted, not fatal.

    The outcome depends on the set of rows, never on their order: a question that appears
    with two different answers is dropped in every copy (keeping the first would let row
    order pick the gold answer), and of exact duplicates the same copy is kept whatever
    the order.
    """
    report = LoadReport(benchmark=bench.name, source=source)
    valid: list[tuple[str, dict[str, Any]]] = []
    optional: dict[str, dict[str, Any]] = {}
    for where, row in rows:
        if isinstance(row, RowError):
            report.skip(where, row)
            continue
        extra = row.get("extra") or {}
        asked = {k: extra[k] for k in OPTIONAL_FIELDS if k in extra}
        extra = {k: v for k, v in extra.items()
                 if k not in OPTIONAL_FIELDS and k not in bench.leaks_answer}
        try:
            record = make_record(kind=bench.kind, **{**row, "extra": extra or None})
        except RowError as err:
            report.skip(where, err)
            continue
        valid.append((where, record))
        optional.setdefault(record["id"], asked)
    by_id: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for where, record in _consistent_extras(valid, report):
        by_id.setdefault(record["id"], []).append((where, record))
    records = []
    for copies in by_id.values():
        answers = {json.dumps(r["answer"]) for _, r in copies}
        if len(answers) > 1:
            for where, record in copies:
                other_where, other = next((w, r) for w, r in copies
                                          if r["answer"] != record["answer"])
                report.skip(where, RowError(
                    f"same question as {other_where} with another answer "
                    f"({record['answer']!r} here, {other['answer']!r} there); "
                    "every copy dropped"))
            continue
        report.duplicates += len(copies) - 1
        records.append(min((r for _, r in copies), key=sha256_json))
    report.kept = len(records)
    report.sha256 = sha256_json(sorted(records, key=lambda r: r["id"]))
    if not records:
        raise SlmbenchError(f"{bench.name}: no valid rows in {source} ({report.summary()})")
    if bench.kind == "label":
        labels = sorted({r["answer"] for r in records})
        for r in records:
            r["labels"] = labels
    for name in fields:  # after the hash: asked-for fields never change data_sha256
        for r in records:
            r[name] = str(optional.get(r["id"], {}).get(name, ""))
    return records, report


_CORE = {"id", "question", "choices", "answer", "subject"}


def _type_name(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def _consistent_extras(valid: list[tuple[str, dict[str, Any]]],
                       report: LoadReport) -> list[tuple[str, dict[str, Any]]]:
    """Rows whose extra fields have the type most rows give them; the others are skipped.

    Arrow types a column once, so one row with ``"difficult": "yes"`` among booleans would
    crash ``Dataset.from_list`` for the whole benchmark instead of costing its own row.
    """
    counts: dict[str, Counter] = {}
    for _, record in valid:
        for key, value in record.items():
            if key not in _CORE and _type_name(value):
                counts.setdefault(key, Counter())[_type_name(value)] += 1
    usual = {key: min(c, key=lambda t: (-c[t], t)) for key, c in counts.items() if len(c) > 1}
    kept = []
    for where, record in valid:
        odd = next((k for k in usual if _type_name(record.get(k)) not in (None, usual[k])),
                   None)
        if odd is None:
            kept.append((where, record))
        else:
            report.skip(where, RowError(f"field {odd!r} is a {_type_name(record[odd])}, "
                                        f"other rows have a {usual[odd]}"))
    return kept


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
    name: str, data_dir: Any = None, seed: Any = DEFAULT_SEED, fields: Any = ()
) -> dict[str, list[dict[str, Any]]]:
    """Records of ``name`` split into train/validation/test, cached per process.

    ``fields`` names optional fields (``OPTIONAL_FIELDS``) to include in each record.
    """
    return load_splits_and_report(name, data_dir, seed, fields)[0]


def load_splits_and_report(
    name: str, data_dir: Any = None, seed: Any = DEFAULT_SEED, fields: Any = ()
) -> tuple[dict[str, list[dict[str, Any]]], LoadReport]:
    """``load_splits`` and what the load kept and skipped (the same report on a cache hit)."""
    bench = benchmark(name)
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise SlmbenchError(f"--metadata split_seed must be an integer, got {seed!r}") from None
    fields = tuple(fields or ())
    unknown = [f for f in fields if f not in OPTIONAL_FIELDS]
    if unknown:
        raise SlmbenchError(f"{name}: dataset_kwargs fields {unknown[0]!r} is not an optional "
                            f"field (known: {', '.join(OPTIONAL_FIELDS)})")
    folder = resolve_data_dir(data_dir)
    key = (name, str(folder), seed, fields)
    if key not in _CACHE:
        if bench.synthetic and not (folder and local_files(bench, folder)):
            source, rows = _rows_from_synthetic(bench)
        elif folder:
            source, rows = _rows_from_local(bench, folder)
        else:
            source, rows = _rows_from_hub(bench)
        records, report = build_records(bench, rows, source, fields)
        (log.warning if report.skipped else log.info)("%s", report.summary())
        _CACHE[key] = split_records(records, seed), report
    splits, report = _CACHE[key]
    for reports in _COLLECTORS:
        reports[name] = report
    return splits, report


@contextmanager
def collect_load_reports() -> Iterator[dict[str, LoadReport]]:
    """The data reports of the loads done inside the block (answered from cache or not).

    ``run_eval`` wraps lm-eval in it, so a run records what it read, and only that.
    """
    reports: dict[str, LoadReport] = {}
    _COLLECTORS.append(reports)
    try:
        yield reports
    finally:
        _COLLECTORS.remove(reports)


def load_task_dataset(benchmark: str, data_dir: Any = None, split_seed: Any = DEFAULT_SEED,
                      seen_from: Any = None, fields: Any = (), held_out: Any = False,
                      **_metadata: Any):
    """lm-eval ``custom_dataset`` hook: a ``DatasetDict`` with train/validation/test.

    With ``seen_from`` (a zoo manifest, or a ``train_subset`` record) the train split is the
    subset the benchmark's adapter trained on, so ``*_seen`` tasks score seen questions only.
    With ``held_out`` the data dir holds questions kept apart from training altogether (a
    user's own check set): every valid row is a test question, not the 20% a split leaves.
    Unrelated metadata (``version``, model args lm-eval merges in) is accepted and ignored.
    """
    import datasets

    parts = load_splits(benchmark, data_dir=data_dir, seed=split_seed, fields=fields)
    if as_bool(held_out, "--metadata held_out"):
        if seen_from not in (None, ""):
            raise SlmbenchError(f"{benchmark}: --metadata held_out=true makes every row a test "
                                "question, so there are no seen (training) questions to score; "
                                "drop seen_from or the _seen task")
        parts = held_out_splits(parts, int(split_seed))
    if seen_from not in (None, ""):
        from harness.data.seen import seen_docs

        parts = {**parts, "train": seen_docs(benchmark, parts["train"], seen_from,
                                             int(split_seed))}
    found = {split: datasets.Dataset.from_list(parts[split]) for split in SPLITS if parts[split]}
    if "test" in found:  # lm-eval opens the train and few-shot splits even at zero shots
        found = {split: found.get(split, found["test"].select([])) for split in SPLITS}
    return datasets.DatasetDict(found)

