"""Fuzzed data: generated bad rows mixed into copies of the real benchmark files.

Every benchmark folder of a data dir is copied with bad rows inserted among its real ones
(each carrying a unique ``FUZZ-n`` marker in its question when it has one), then loaded
through the same path a run uses (``source._rows_from_local`` + ``build_records``). Each
injected row has an expected outcome: skipped and reported with its file and row, or kept
(oddities that are valid data, such as duplicate choices, which the real benchmarks have).
The campaign counts, per benchmark and mutation:

* crashes: any exception out of the load (a bad row must cost only itself);
* wrongly kept: rows expected to be skipped that loaded, or real-row count drift upward;
* wrongly dropped: real rows or expected-kept rows that are missing after mixing;
* unreported: skipped rows whose report line does not name their file and row.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.data.benchmarks import BENCHMARKS
from harness.errors import SlmbenchError

SKIP, KEEP = "skip", "keep"
HUGE = 1_000_000  # the 1 MB string


@dataclass
class Injected:
    mutation: str
    expect: str
    where: str = ""        # the report prefix naming file and row, filled when written
    marker: str | None = None  # "FUZZ-n" when the question still carries it


@dataclass
class Outcome:
    benchmark: str
    fmt: str
    injected: Counter = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    wrongly_kept: Counter = field(default_factory=Counter)
    wrongly_dropped: Counter = field(default_factory=Counter)
    unreported: Counter = field(default_factory=Counter)
    real_rows: int = 0


# --- mutations on a format-neutral row: question, choices, answer (0-based), subject -----------
# Each returns the row to serialise (or None: drop the key) and its expected outcome for a
# benchmark kind. ``"*"`` applies to every kind.

Row = dict[str, Any]
Mutation = Callable[[Row, random.Random], Row]


def _set(key: str, value: Any) -> Mutation:
    def apply(row: Row, rng: random.Random) -> Row:
        return {**row, key: value}
    return apply


def _drop(key: str) -> Mutation:
    def apply(row: Row, rng: random.Random) -> Row:
        return {k: v for k, v in row.items() if k != key}
    return apply


def _choices(edit: Callable[[list[str]], Any]) -> Mutation:
    def apply(row: Row, rng: random.Random) -> Row:
        return {**row, "choices": edit(list(row["choices"]))}
    return apply


def _question(edit: Callable[[str], str]) -> Mutation:
    def apply(row: Row, rng: random.Random) -> Row:
        return {**row, "question": edit(row["question"])}
    return apply


def _dup_choice(choices: list[str]) -> list[str]:
    choices[-1] = choices[0]
    return choices


# name -> (mutation, {kind: expected}); kinds: mcq, label, numeric
ROW_MUTATIONS: dict[str, tuple[Mutation, dict[str, str]]] = {
    "question_wrong_type": (_set("question", 12345), {"*": SKIP}),
    "question_null": (_set("question", None), {"*": SKIP}),
    "question_blank": (_set("question", "  \t "), {"*": SKIP}),
    "question_missing": (_drop("question"), {"*": SKIP}),
    "answer_missing": (_drop("answer"), {"*": SKIP}),
    "answer_wrong_type": (_set("answer", [1]), {"*": SKIP}),
    "answer_bool": (_set("answer", True), {"*": SKIP}),
    "answer_out_of_range": (lambda r, g: {**r, "answer": len(r["choices"])}, {"mcq": SKIP}),
    "answer_negative": (_set("answer", -1), {"mcq": SKIP, "numeric": KEEP}),
    "answer_not_a_number": (_set("answer", "twelve"), {"numeric": SKIP, "mcq": SKIP}),
    "answer_empty_label": (_set("answer", " "), {"label": SKIP, "numeric": SKIP}),
    "choices_missing": (_drop("choices"), {"mcq": SKIP}),
    "choices_wrong_type": (_set("choices", "A, B, C"), {"mcq": SKIP}),
    "choices_empty_list": (_set("choices", []), {"mcq": SKIP}),
    "choice_empty": (_choices(lambda c: [*c[:-1], ""]), {"mcq": SKIP}),
    "choice_nested": (_choices(lambda c: [*c[:-1], {"text": c[-1]}]), {"mcq": SKIP}),
    "choices_duplicate": (_choices(_dup_choice), {"mcq": KEEP}),
    "extra_fields": (lambda r, g: {**r, "fuzz_note": "extra", "fuzz_n": 3}, {"*": KEEP}),
    "string_1mb": (_question(lambda q: q + " " + "x" * HUGE), {"*": SKIP}),
    "nul_escaped": (_question(lambda q: q[:10] + "\x00" + q[10:]), {"*": SKIP}),
    "lone_surrogate": (_question(lambda q: q + " \ud800"), {"*": SKIP}),
}
# Byte-level damage to one serialised JSON-lines row.
LINE_MUTATIONS: dict[str, str] = {
    "truncated_json": SKIP, "invalid_utf8": SKIP, "raw_nul": SKIP,
    "crlf_line_end": KEEP, "cr_line_end": KEEP,
}
CAPPED = {"string_1mb": 3}  # rows of 1 MB each: a few per file prove the point


def expected(mutation: str, kind: str) -> str | None:
    if mutation in LINE_MUTATIONS:
        return LINE_MUTATIONS[mutation]
    table = ROW_MUTATIONS[mutation][1]
    return table.get(kind, table.get("*"))


# --- formats -----------------------------------------------------------------------------------

def _neutral_canonical(obj: dict[str, Any]) -> Row:
    return dict(obj)


def _canonical_native(row: Row) -> dict[str, Any]:
    return row


def _neutral_array(obj: list) -> Row:
    question, options, answer = obj
    return {"question": question, "choices": list(options), "answer": int(answer) - 1}


def _array_native(row: Row) -> Any:
    if "fuzz_note" in row:  # positional format: an extra field is an extra element
        return [row.get("question"), row.get("choices"), _one_based(row.get("answer")), "extra"]
    out = []
    for key in ("question", "choices", "answer"):
        if key not in row:
            return out  # a missing field shortens the array
        out.append(_one_based(row[key]) if key == "answer" else row[key])
    return out


def _one_based(answer: Any) -> Any:
    if isinstance(answer, int) and not isinstance(answer, bool):
        return str(answer + 1)
    return answer


def _neutral_teleqna(obj: dict[str, Any]) -> Row:
    options = [obj[f"option {k}"] for k in range(1, 10) if f"option {k}" in obj]
    index = int(str(obj["answer"]).split(":")[0].split()[-1]) - 1
    return {"question": obj["question"], "choices": options, "answer": index,
            "subject": obj.get("category"), "explanation": obj.get("explanation")}


def _teleqna_native(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "question" in row:
        out["question"] = row["question"]
    choices = row.get("choices")
    if isinstance(choices, list):
        for k, text in enumerate(choices, 1):
            out[f"option {k}"] = text
    elif "choices" in row:
        out["option 1"] = choices
    if "answer" in row:
        answer = row["answer"]
        if isinstance(answer, int) and not isinstance(answer, bool):
            text = choices[answer] if isinstance(choices, list) and 0 <= answer < len(
                choices) and isinstance(choices[answer], str) else "?"
            out["answer"] = f"option {answer + 1}: {text}"
        else:
            out["answer"] = answer
    for key in ("subject", "explanation"):
        if row.get(key) is not None:
            out["category" if key == "subject" else key] = row[key]
    out.update({k: v for k, v in row.items() if k.startswith("fuzz_")})
    return out


# --- one file ---------------------------------------------------------------------------------

def _damage_line(line: bytes, mutation: str, rng: random.Random) -> bytes:
    body = line.rstrip(b"\r\n")
    if mutation == "truncated_json":
        return body[: rng.randrange(1, max(2, len(body) - 1))] + b"\n"
    if mutation in ("invalid_utf8", "raw_nul"):
        at = body.index(b"FUZZ-") if b"FUZZ-" in body else len(body) // 2
        return body[:at] + (b"\xff\xfe" if mutation == "invalid_utf8" else b"\x00") + \
            body[at:] + b"\n"
    if mutation == "crlf_line_end":
        return body + b"\r\n"
    if mutation == "cr_line_end":
        return body + b"\r"
    raise ValueError(mutation)


def _plan(kind: str, count: int, rng: random.Random, row_level_only: bool) -> list[str]:
    names = [m for m in ROW_MUTATIONS if expected(m, kind)]
    if not row_level_only:
        names += list(LINE_MUTATIONS)
    plan: list[str] = []
    used: Counter = Counter()
    while len(plan) < count:
        name = names[len(plan) % len(names)]
        if used[name] >= CAPPED.get(name, count):
            name = rng.choice([n for n in names if n not in CAPPED])
        used[name] += 1
        plan.append(name)
    rng.shuffle(plan)
    return plan


def _mutate(base: Row, name: str, marker: str, rng: random.Random) -> tuple[Row, str | None]:
    row = {**copy.deepcopy(base), "question": f"{marker} {base['question']}"}
    if name in ROW_MUTATIONS:
        row = ROW_MUTATIONS[name][0](row, rng)
    question = row.get("question")
    return row, marker if isinstance(question, str) and marker in question else None


def fuzz_jsonl(src: Path, dst: Path, kind: str, count: int, rng: random.Random,
               start: int, array_format: bool) -> list[Injected]:
    """Copy a JSON-lines file with ``count`` bad rows interleaved; return what was injected."""
    opener = gzip.open if src.name.endswith(".gz") else open
    with opener(src, "rb") as fh:
        real = [line if line.endswith(b"\n") else line + b"\n" for line in fh]
    parsed = [json.loads(line) for line in real if line.strip()]
    to_neutral, to_native = ((_neutral_array, _array_native) if array_format
                             else (_neutral_canonical, _canonical_native))
    slots = sorted(rng.sample(range(len(real) + count), count))
    plan = _plan(kind, count, rng, row_level_only=False)
    out: list[bytes] = []
    injected: list[Injected] = []
    real_iter = iter(real)
    lineno = 0
    slot_set = set(slots)
    plan_iter = iter(plan)
    for position in range(len(real) + count):
        if position not in slot_set:
            line = next(real_iter)
            out.append(line)
            lineno += 1
            continue
        name = next(plan_iter)
        marker = f"FUZZ-{start + len(injected)}"
        base = to_neutral(copy.deepcopy(rng.choice(parsed)))
        row, kept_marker = _mutate(base, name, marker, rng)
        line = (json.dumps(to_native(row), ensure_ascii=False) + "\n").encode(
            "utf-8", errors="surrogatepass")
        if name in LINE_MUTATIONS:
            line = _damage_line(line, name, rng)
            kept_marker = None if name in ("truncated_json",) else marker
        lineno += 1
        expect = expected(name, kind) or KEEP
        if array_format and name == "extra_fields":
            expect = SKIP  # positional rows: a fourth element has no meaning to guess
        injected.append(Injected(name, expect, f"{dst.name} line {lineno}", kept_marker))
        out.append(line)
    data = b"".join(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.name.endswith(".gz"):
        dst.write_bytes(gzip.compress(data, mtime=0))
    else:
        dst.write_bytes(data)
    return injected


def fuzz_teleqna(src: Path, dst: Path, kind: str, count: int, rng: random.Random,
                 start: int) -> list[Injected]:
    """TeleQnA.txt is one JSON object: bad entries go in as extra ``question FUZZ-n`` keys."""
    data = json.loads(src.read_text(encoding="utf-8"))
    entries = list(data.items())
    real = [row for _, row in entries]
    raw = ["invalid_utf8", "raw_nul"] * max(1, count // 100)
    plan = _plan(kind, count - len(raw), rng, row_level_only=True) + raw
    injected: list[Injected] = []
    pieces: dict[str, str] = {}
    for name in plan:
        marker = f"FUZZ-{start + len(injected)}"
        base = _neutral_teleqna(rng.choice(real))
        row, kept_marker = _mutate(base, name, marker, rng)
        key = f"question {marker}"
        if name in ("invalid_utf8", "raw_nul"):
            pieces[key] = name
            kept_marker = marker
        entries.insert(rng.randrange(len(entries) + 1), (key, _teleqna_native(row)))
        injected.append(Injected(name, expected(name, kind) or KEEP, f"{dst.name} '{key}'",
                                 kept_marker))
    text = json.dumps(dict(entries), ensure_ascii=False, indent=4)
    raw = text.encode("utf-8", errors="surrogatepass")
    for key, name in pieces.items():  # raw bytes inside that entry's question string
        anchor = f'"question": "FUZZ-{key.split("FUZZ-")[1]} '.encode()
        raw = raw.replace(anchor, anchor + (b"\xff\xfe" if name == "invalid_utf8" else b"\x00"))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(raw)
    return injected


# Mutations a typed columnar file can hold (parquet types each column once).
PARQUET_SAFE = ("question_null", "question_blank", "answer_out_of_range", "answer_negative",
                "choices_empty_list", "choice_empty", "choices_duplicate", "string_1mb",
                "nul_escaped")


def fuzz_records_file(src_rows: list[dict[str, Any]], dst: Path, kind: str, count: int,
                      rng: random.Random, start: int) -> list[Injected]:
    """The canonical records as a JSON array (``*.json``) or a parquet shard, bad rows mixed in."""
    parquet = dst.suffix == ".parquet"
    names = [m for m in (PARQUET_SAFE if parquet else ROW_MUTATIONS) if expected(m, kind)]
    rows = [dict(r) for r in src_rows]
    injected: list[tuple[int, Row, Injected]] = []
    used: Counter = Counter()
    for n in range(count):
        name = names[n % len(names)]
        if used[name] >= CAPPED.get(name, count):
            name = "choice_empty" if kind == "mcq" else "question_blank"
        used[name] += 1
        marker = f"FUZZ-{start + n}"
        row, kept_marker = _mutate(dict(rng.choice(src_rows)), name, marker, rng)
        injected.append((rng.randrange(len(rows) + 1), row,
                         Injected(name, expected(name, kind) or KEEP, "", kept_marker)))
    for position, row, item in injected:
        rows.insert(position, row)
        item.where = id(row)  # resolved to the final index below
    index_of = {id(r): i for i, r in enumerate(rows)}
    for _, _, item in injected:
        item.where = f"{dst.name} row {index_of[item.where]}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = sorted({k for r in rows for k in r})
        pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows]),
                       dst)
    else:
        dst.write_bytes(json.dumps(rows, ensure_ascii=False).encode(
            "utf-8", errors="surrogatepass"))
    return [item for _, _, item in injected]


# --- the campaign over a data dir ---------------------------------------------------------------

def _load(name: str, data_dir: Path):
    from harness.data.source import _rows_from_local, benchmark, build_records

    bench = benchmark(name)
    source, rows = _rows_from_local(bench, data_dir)
    return build_records(bench, rows, source)


def fuzz_benchmark(name: str, data_dir: Path, work: Path, count: int, seed: int,
                   start: int, as_format: str | None = None) -> tuple[Outcome, list[Injected]]:
    """Fuzz one benchmark's files (or its records re-encoded ``as_format``: json, parquet)."""
    from harness.data.source import local_files

    bench = BENCHMARKS[name]
    files = local_files(bench, data_dir)
    rng = random.Random(f"{seed}:{name}:{as_format}")
    target = work / f"{name}.{as_format or 'upstream'}"
    if target.exists():
        shutil.rmtree(target)
    injected: list[Injected] = []
    if as_format:
        clean, _ = _load(name, data_dir)
        source = [{k: v for k, v in r.items() if k in ("question", "choices", "answer",
                                                        "subject")} for r in clean]
        dst = target / name / f"test.{as_format}"
        injected = fuzz_records_file(source, dst, bench.kind, count, rng, start)
        fmt = f"{dst.name} (canonical records)"
    else:
        fmt = files[0].name + (f" (+{len(files) - 1} more)" if len(files) > 1 else "")
        per_file = [count // len(files) + (i < count % len(files)) for i in range(len(files))]
        for path, n in zip(files, per_file, strict=True):
            dst = target / name / path.name
            if path.name == "TeleQnA.txt":
                injected += fuzz_teleqna(path, dst, bench.kind, n, rng, start + len(injected))
            else:
                array = path.name.startswith("fin_") or path.name == "srsRANBench.json"
                injected += fuzz_jsonl(path, dst, bench.kind, n, rng, start + len(injected),
                                       array_format=array)
    outcome = Outcome(name, fmt, injected=Counter(i.mutation for i in injected))
    clean, _ = _load(name, data_dir)
    outcome.real_rows = len(clean)
    try:
        mixed, report = _load(name, target)
    except Exception as err:  # noqa: BLE001 - any exception here is the finding
        outcome.crashes.append(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
        return outcome, injected
    kept_questions = [r["question"] for r in mixed]
    kept_markers = Counter(q.split(" ", 1)[0] for q in kept_questions if q.startswith("FUZZ-"))
    clean_ids = {r["id"] for r in clean}
    mixed_ids = {r["id"] for r in mixed}
    lost_real = len(clean_ids - mixed_ids)
    if lost_real:
        outcome.wrongly_dropped["real rows"] += lost_real
    extra = len([r for r in mixed if r["id"] not in clean_ids]) - sum(kept_markers.values())
    if extra > 0:
        outcome.wrongly_kept["unmarked rows"] += extra
    for item in injected:
        kept = item.marker is not None and kept_markers.get(item.marker, 0) > 0
        if item.expect == SKIP and kept:
            outcome.wrongly_kept[item.mutation] += 1
        elif item.expect == KEEP and not kept:
            outcome.wrongly_dropped[item.mutation] += 1
        if item.expect == SKIP and not any(line.startswith(item.where + ":")
                                           for line in report.skipped):
            outcome.unreported[item.mutation] += 1
    return outcome, injected


def run_fuzz(data_dir: Path, work: Path, total: int = 10_000, seed: int = 0,
             names: list[str] | None = None, progress=None) -> list[Outcome]:
    """Fuzz every benchmark that has files under ``data_dir`` with ``total`` rows in all."""
    from harness.data.source import local_files

    present = [n for n in (names or sorted(BENCHMARKS))
               if BENCHMARKS[n].kind != "text" and local_files(BENCHMARKS[n], data_dir)]
    if not present:
        raise SlmbenchError(f"fuzz: no benchmark files under {data_dir}")
    # Every upstream format, plus the canonical JSON-array and parquet importers on the
    # records of the first multiple-choice benchmark found (no real file here has them).
    jobs: list[tuple[str, str | None]] = [(n, None) for n in present]
    mcq = next((n for n in present if BENCHMARKS[n].kind == "mcq"), present[0])
    jobs += [(mcq, "json"), (mcq, "parquet")]
    outcomes, start = [], 0
    for index, (name, as_format) in enumerate(jobs):
        count = total // len(jobs) + (index < total % len(jobs))
        outcome, injected = fuzz_benchmark(name, data_dir, work, count, seed, start, as_format)
        start += len(injected)
        outcomes.append(outcome)
        if progress is not None:
            progress(name)
    return outcomes
