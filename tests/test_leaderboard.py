"""``slmbench leaderboard``: sections rendered from a fixture run store, byte for byte.

The fixture store (eval, sweep and bench runs) is written through the store API into a
temporary folder; each rendered Markdown section is compared with its golden file in
``tests/golden/leaderboard/``. After an intended change to the output, regenerate the
goldens and review their diff:

    SLMBENCH_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_leaderboard.py

PNG figures are checked for determinism (same bytes on a second render), not against
goldens, since their pixels depend on the installed matplotlib and FreeType.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.leaderboard import render_leaderboards
from harness.report.plots import pareto_front
from harness.report.sweep_sections import loss_quality_spearman
from harness.runs import store
from harness.runs.store import write_run, write_samples

GOLDEN = Path(__file__).parent / "golden" / "leaderboard"
UPDATE = os.environ.get("SLMBENCH_UPDATE_GOLDEN") == "1"
METRICS = {"pass@1": "exact_match,pass@1", "maj@4": "exact_match,maj@4", "none": "acc,none"}
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]


def _finish(folder: Path, finished: str) -> None:
    """Pin ``finished`` (write_run stamps the clock) so the fixture is the same every time."""
    path = folder / "run.json"
    manifest = json.loads(path.read_text())
    manifest["finished"] = finished
    path.write_text(json.dumps(store.seal(manifest), indent=2))  # sealed again, as write_run seals


def eval_run(root: Path, run_id: str, label: str, finished: str, tasks: dict) -> None:
    folder = root / "eval" / run_id
    folder.mkdir(parents=True)
    files, info = [], {}
    for task, (bench, split, filt, value, stderr, per_doc) in tasks.items():
        info[task] = {"metric": METRICS[filt], "filter": filt, "value": value, "stderr": stderr,
                      "version": 1.0, "benchmark": bench, "split": split, "n": 100,
                      "data_sha256": "0" * 64}
        if per_doc is not None:
            name = f"samples/{task}.jsonl"
            write_samples(folder / name, [{"doc_id": i, "id": f"q{i}", "score": s}
                                          for i, s in enumerate(per_doc)])
            files.append(name)
            info[task]["samples"] = name
    write_run(folder, "eval", run_id, {"model": "fixture"}, files,
              extra={"label": label, "tasks": info})
    _finish(folder, finished)


def sweep_run(root: Path, run_id: str, label: str, grid: str, rows: list[dict]) -> None:
    folder = root / "sweeps" / run_id
    folder.mkdir(parents=True)
    write_samples(folder / "results.jsonl", rows)
    write_run(folder, "sweep", run_id, {"grid": grid, "base": {}, "eval_limit": 100},
              ["results.jsonl"], extra={"label": label})
    _finish(folder, "2026-02-10T00:00:00Z")


def bench_run(root: Path, run_id: str, label: str, results: dict) -> None:
    folder = root / "bench" / run_id
    folder.mkdir(parents=True)
    report = {"config": {"task": "teleqna", "limit": 100},
              "environment": {"cpu": "Fixture CPU", "gpu": None}, "bandwidth_gbs": 20.0,
              "results": results}
    (folder / "bench.json").write_text(json.dumps(report, indent=2))
    write_run(folder, "bench", run_id, {"model": "embedded"}, ["bench.json"],
              extra={"label": label})
    _finish(folder, "2026-02-20T00:00:00Z")


def sweep_row(rank, alpha, modules, loss, acc, stderr=0.045, judge=None, energy=None):
    targets = ALL if modules == "all" else ATTENTION
    row = {"run_id": f"r{rank}_a{alpha}_{modules}", "rank": rank, "alpha": alpha,
           "module_set": modules, "target_modules": targets,
           "point": {"rank": rank, "alpha": alpha, "module_set": modules,
                     "target_modules": targets},
           "adapter_mb": round(1.2347 * rank, 3), "trainable_params": 305280 * rank,
           "best_val_loss": loss, "best_val_answer_loss": loss, "train_wall_s": 140.0 + rank,
           "energy_wh": energy,
           "scores": {"teleqna": {"metric": "exact_match,pass@1", "value": acc,
                                  "stderr": stderr, "n": 100}, "_wall_s": 30.0}}
    if judge is not None:
        row["judge_score"] = judge
    return row


def stats(p50):
    return {"p50": p50, "p95": p50 * 1.1, "mean": p50, "stdev": 0.1, "n": 10,
            "min": p50 * 0.9, "max": p50 * 1.2}


FP32_BASELINES = {"n": 100, "prompts": 100, "score": 0.36, "chance": 0.2417, "always_first": 0.21,
                  "majority_key": "B", "majority_key_score": 0.29, "best_constant": "B",
                  "best_constant_score": 0.29, "top_answer": "B", "top_share": 0.41,
                  "entropy": 0.9, "unparsed_share": 0.0}


def bench_result(fmt, size, bpw, decode, rss, acc, delta=None, vram=None, jpt=None,
                 found=None):
    return {"format": fmt, "engine": "llama.cpp" if fmt.startswith("gguf") else "transformers",
            "load_s": 0.5, "weight_bytes": int(size * 1e6), "file_size_mb": size,
            "bits_per_weight": bpw, "prefill_tok_s": stats(decode * 8),
            "decode_tok_s": stats(decode), "ttft_s": stats(0.05), "latency_s": stats(1.0),
            "peak_rss_mb": rss, "peak_vram_mb": vram, "bandwidth_utilisation": 0.4321,
            "energy": {"source": "rapl" if jpt else None, "joules": None, "j_per_token": jpt,
                       "j_per_request": None},
            "accuracy": None if acc is None else {
                "task": "teleqna", "metric": "exact_match,pass@1", "value": acc,
                "stderr": 0.03, "n": 100, "per_doc": [1.0, 0.0],
                "delta_vs_baseline": delta, **({"baselines": found} if found else {})}}


def build_store(root: Path) -> Path:
    eval_run(root, "base0001", "SmolLM2-135M", "2026-01-10T00:00:00Z", {
        "teleqna": ("teleqna", "test", "pass@1", 0.3, 0.0211, [1.0, 0.0, 0.0]),
        "teleqna_seen": ("teleqna", "train", "pass@1", 0.32, 0.0212, None),
        "teleqna_maj4": ("teleqna", "test", "maj@4", 0.33, 0.0213, None),
        "teleqna_mc": ("teleqna", "test", "none", 0.412, 0.022, None),
        "oranbench": ("oranbench", "test", "pass@1", 0.25, 0.0433, None),
        "oranbench_seen": ("oranbench", "train", "pass@1", 0.27, 0.044, None)})
    eval_run(root, "lora0old", "SmolLM2-135M+teleqna", "2026-01-15T00:00:00Z", {
        "teleqna": ("teleqna", "test", "pass@1", 0.35, 0.021, None)})
    eval_run(root, "lora0new", "SmolLM2-135M+teleqna", "2026-02-01T00:00:00Z", {
        "teleqna": ("teleqna", "test", "pass@1", 0.356, 0.0214, [1.0, 1.0, 0.0]),
        "teleqna_seen": ("teleqna", "train", "pass@1", 0.502, 0.0223, None),
        "teleqna_mc": ("teleqna", "test", "none", 0.405, None, None)})
    sweep_run(root, "rank_teleqna", "rank_teleqna", "rank", [
        sweep_row(4, 8, "all", 0.698, 0.29), sweep_row(8, 16, "all", 0.680, 0.34),
        sweep_row(16, 32, "all", 0.662, 0.30, energy=1.25),
        sweep_row(32, 64, "all", 0.648, 0.33)])
    sweep_run(root, "lora16_teleqna", "lora16_teleqna", "lora16", [
        sweep_row(4, 4, "attention", 0.71, 0.31, judge=6.5),
        sweep_row(8, 16, "all", 0.64, 0.28, judge=5.0),
        sweep_row(16, 16, "attention", 0.69, 0.33, judge=7.25),
        sweep_row(16, 32, "all", 0.66, 0.30, judge=6.0)])
    bench_run(root, "bench0001", "embedded", {
        "fp32": bench_result("fp32", 538.1, 32, 40.0, 900.0, 0.36, jpt=0.1234,
                             found=FP32_BASELINES),
        "gguf-q8_0": bench_result("gguf-q8_0", 144.8, 8.5, 95.0, 320.0, 0.35,
                                  delta={"delta": -0.01, "ci95_low": -0.04,
                                         "ci95_high": 0.02, "n": 100}),
        "gguf-q4_k_m": bench_result("gguf-q4_k_m", 105.5, 4.89, 120.0, 250.0, None),
        "gptq": {"skipped": "gptq: needs CUDA"}})
    return root


def render(root: Path, out: Path) -> dict[str, bytes]:
    render_leaderboards(root, out)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # no torch import, no git, no host details
        mp.setattr(store, "hardware", lambda: {"machine": "fixture"})
        mp.setattr(store, "package_versions", lambda: {})
        mp.setattr(store, "git_state", lambda: {"sha": None, "dirty": None})
        return build_store(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def rendered(fixture_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("leaderboards")
    return out, render(fixture_store, out)


def table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split(" | ")]
            for line in text.splitlines() if line.startswith("| ")]


@pytest.mark.parametrize("name", ["README.md", "accuracy.md", "seen_unseen.md", "study.md",
                                  "rank_ablation.md", "sweep.md", "quantization.md"])
def test_section_matches_golden(rendered, name):
    _, files = rendered
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(files[name])
    assert golden.is_file(), f"no golden {golden}; run with SLMBENCH_UPDATE_GOLDEN=1"
    assert files[name].decode() == golden.read_text(encoding="utf-8")


def test_every_section_and_figure_is_written_and_linked(rendered):
    out, files = rendered
    assert sorted(files) == ["README.md", "accuracy.md", "quantization.md",
                             "quantization_pareto.png", "rank_ablation.md", "rank_ablation.png",
                             "seen_unseen.md", "study.md", "sweep.md",
                             "sweep_lora16_teleqna.png",
                             "sweep_rank_teleqna.png"]
    for png in (n for n in files if n.endswith(".png")):
        assert files[png].startswith(b"\x89PNG")
        assert b"Software" not in files[png] and b"matplotlib" not in files[png]
        assert any(f"]({png})" in files[md].decode() for md in files if md.endswith(".md"))


def test_rendering_twice_gives_identical_bytes(fixture_store, rendered, tmp_path):
    _, first = rendered
    assert render(fixture_store, tmp_path / "again") == first
    assert render(fixture_store, tmp_path / "again") == first  # over its own output too


def test_missing_cell_is_a_dash_and_latest_run_wins(rendered):
    _, files = rendered
    rows = table_rows(files["accuracy.md"].decode())
    header = rows[0]
    lora = next(r for r in rows if r[0] == "SmolLM2-135M+teleqna")
    assert lora[header.index("oranbench Pass@1")] == "—"
    assert lora[header.index("teleqna Maj@4")] == "—"
    assert lora[header.index("teleqna Pass@1")] == "**0.356 ± 0.021**"  # not lora0old's 0.350
    assert lora[header.index("teleqna acc")] == "0.405"  # no stderr recorded: bare value
    assert "0.350" not in files["accuracy.md"].decode()


def test_tampered_file_is_left_out_and_listed(fixture_store, tmp_path, caplog):
    runs = tmp_path / "runs"
    shutil.copytree(fixture_store, runs)
    results = runs / "sweeps" / "lora16_teleqna" / "results.jsonl"
    results.write_text(results.read_text().replace("0.64", "0.99"))
    samples = runs / "eval" / "lora0new" / "samples" / "teleqna.jsonl"
    samples.write_text(samples.read_text()[:-20])
    files = render(runs, tmp_path / "out")
    readme = files["README.md"].decode()
    problems = readme.split("## Problems", 1)[1]
    assert "sweeps/lora16_teleqna/results.jsonl: content changed" in problems
    assert "eval/lora0new/samples/teleqna.jsonl: content changed" in problems
    assert str(tmp_path) not in readme
    # and said on the console, one line per record, naming it under the runs folder
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"leaderboard: left out {runs.as_posix()}/sweeps/lora16_teleqna/results.jsonl: " \
           "content changed" in "\n".join(warned)
    assert len([w for w in warned if "left out" in w]) == 2
    sweep_md = files["sweep.md"].decode()
    assert "lora16_teleqna" not in sweep_md and "rank_teleqna" in sweep_md
    assert "sweep_lora16_teleqna.png" not in files
    rows = table_rows(files["accuracy.md"].decode())
    lora = next(r for r in rows if r[0] == "SmolLM2-135M+teleqna")
    assert lora[rows[0].index("teleqna Pass@1")] == "**0.350 ± 0.021**"  # the untampered run
    assert files["quantization.md"] == (GOLDEN / "quantization.md").read_bytes()


def test_spearman_sign_when_loss_and_quality_orders_disagree():
    disagree = [sweep_row(r, 2 * r, "all", loss, acc) for r, loss, acc in
                [(4, 0.5, 0.10), (8, 0.6, 0.20), (16, 0.7, 0.30), (32, 0.8, 0.40)]]
    rho, n, name = loss_quality_spearman(disagree)
    assert (n, name) == (4, "accuracy on teleqna") and rho == pytest.approx(-1.0)
    agree = [sweep_row(r, 2 * r, "all", loss, acc) for r, loss, acc in
             [(4, 0.5, 0.40), (8, 0.6, 0.30), (16, 0.7, 0.35), (32, 0.8, 0.10)]]
    rho, _, _ = loss_quality_spearman(agree)
    assert rho == pytest.approx(0.8)
    judged = [sweep_row(4, 8, "all", 0.5, 0.4, judge=3.0),
              sweep_row(8, 16, "all", 0.6, 0.3, judge=9.0),
              sweep_row(16, 32, "all", 0.7, 0.2, judge=8.0)]
    rho, n, name = loss_quality_spearman(judged)  # judge beats accuracy when every row has one
    assert name == "judge score" and rho == pytest.approx(-0.5)
    rho, n, _ = loss_quality_spearman(disagree[:2])
    assert math.isnan(rho) and n == 2


def test_a_bench_accuracy_stands_beside_its_baselines(rendered):
    """Recorded with the row, shown beside it; a row without them (an older record whose
    accuracy run is not in the store) shows a dash rather than a guess."""
    text = (rendered[0] / "quantization.md").read_text()
    header = next(r for r in table_rows(text) if r[0] == "format")
    rows = {r[0]: r for r in table_rows(text) if r[0].startswith("`")}
    col = header.index("best constant")
    assert header[col - 2:col + 1] == ["accuracy", "chance", "best constant"]
    assert rows["`fp32`"][col - 1:col + 1] == ["0.242", "0.290 (B)"]
    assert rows["`gguf-q8_0`"][col - 1:col + 1] == ["—", "—"]


def test_an_older_bench_row_takes_its_baselines_from_its_accuracy_run():
    from types import SimpleNamespace

    from harness.report.quant_section import accuracy_baselines

    class Run:
        def __init__(self, ids, found):
            self.ids, self.found = ids, found

        def tasks(self):
            return {"teleqna": {"baselines": self.found}}

        def per_doc(self, task):
            return dict.fromkeys(self.ids, 1.0)

    other = {**FP32_BASELINES, "chance": 0.25}
    records = SimpleNamespace(eval_runs={"c80348abc92a9fad": Run(["q1", "q2"], FP32_BASELINES),
                                         "sameqs": Run(["q2", "q3"], other)})
    acc = {"task": "teleqna", "run": "runs/eval/c80348abc92a9fad", "ids": ["q3", "q2"]}
    assert accuracy_baselines(records, acc) == FP32_BASELINES  # its own run
    moved = {**acc, "run": "runs/eval/elsewhere"}
    assert accuracy_baselines(records, moved) == other  # a run over exactly its questions
    assert accuracy_baselines(records, {**moved, "ids": ["q3"]}) is None  # not the same ones
    assert accuracy_baselines(records, {**acc, "baselines": {"chance": 0.5}}) == {"chance": 0.5}


def test_pareto_front_keeps_only_undominated_points():
    points = [(40.0, 0.36, "fp32"), (95.0, 0.35, "q8"), (90.0, 0.30, "q5"),
              (120.0, 0.20, "q4"), (120.0, 0.10, "q4-worse")]
    assert [p[2] for p in pareto_front(points)] == ["fp32", "q8", "q4"]


def test_cli_renders_and_refuses_a_missing_runs_folder(fixture_store, tmp_path, capsys):
    out = tmp_path / "boards"
    assert main(["leaderboard", "--runs", str(fixture_store), "--out", str(out)]) == 0
    assert (out / "README.md").is_file() and (out / "sweep.md").is_file()
    assert main(["leaderboard", "--runs", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "runs folder" in capsys.readouterr().err


def test_empty_store_renders_an_index_only(tmp_path):
    (tmp_path / "runs").mkdir()
    written = render_leaderboards(tmp_path / "runs", tmp_path / "out")
    assert [p.name for p in written] == ["README.md"]
    assert "No section has data yet." in written[0].read_text()


def test_judge_runs_give_sweep_points_their_judge_score(tmp_path):
    """A rubric judge run over a point's eval run puts the judge column into sweep.md."""
    root = tmp_path / "runs"
    rows = [sweep_row(4, 8, "all", 0.70, 0.30), sweep_row(8, 16, "all", 0.60, 0.32),
            sweep_row(16, 32, "all", 0.65, 0.34)]
    for i, row in enumerate(rows):
        row["scores"]["_run_id"] = f"evalrun{i}"
    sweep_run(root, "sweepj", "judged_sweep", "rank", rows)
    for i, score in enumerate([4.0, 6.0, 8.0]):
        folder = root / "judge" / f"j{i}"
        folder.mkdir(parents=True)
        write_samples(folder / "verdicts.jsonl", [])
        write_run(folder, "judge", f"j{i}", {"mode": "rubric", "target_run_id": f"evalrun{i}"},
                  ["verdicts.jsonl"],
                  extra={"summary": {"per_judge": {"a": {"judge_score": score},
                                                   "b": {"judge_score": score + 1}}}})
    out = tmp_path / "lb"
    render_leaderboards(root, out)
    text = (out / "sweep.md").read_text()
    judged = [r for r in table_rows(text) if r and r[0].startswith("`r")]
    assert [r[-3] for r in judged] == ["4.50", "6.50", "8.50"]  # mean of the two judges
    assert "rank by judge score" in text


def test_a_judge_that_gives_everyone_the_same_verdict_does_not_rank_the_sweep(tmp_path):
    """Near-constant judges (a 135M judge writes 1, 2, 3, 4 for every answer) are shown but
    the loss-vs-quality verdict falls back to the task's own metric, named as such."""
    root = tmp_path / "runs"
    rows = [sweep_row(4, 8, "all", 0.70, 0.10), sweep_row(8, 16, "all", 0.60, 0.20),
            sweep_row(16, 32, "all", 0.65, 0.30)]
    for i, row in enumerate(rows):
        row["scores"]["_run_id"] = f"evalrun{i}"
        row["scores"]["teleqna"]["metric"] = "token_f1,none"
    sweep_run(root, "sweepflat", "flat_judge", "rank", rows)
    for i, (score, share) in enumerate([(2.5, 0.97), (2.4, 0.93), (2.6, 1.0)]):
        folder = root / "judge" / f"j{i}"
        folder.mkdir(parents=True)
        write_samples(folder / "verdicts.jsonl", [])
        write_run(folder, "judge", f"j{i}", {"mode": "rubric", "target_run_id": f"evalrun{i}"},
                  ["verdicts.jsonl"], extra={"summary": {"per_judge": {
                      "a": {"judge_score": score, "modal_share": share},
                      "b": {"judge_score": 1.0, "modal_share": 1.0}}}})
    out = tmp_path / "lb"
    render_leaderboards(root, out)
    text = (out / "sweep.md").read_text()
    assert "| teleqna token_f1 | judge |" in text
    assert "rank by token_f1 on teleqna" in text and "rank by judge score" not in text
    assert "not used to rank" in text


def test_a_newer_task_version_supersedes_a_larger_older_run():
    from harness.report.leaderboard_data import EvalCell, latest

    def cell(run_id, version, n, finished):
        return EvalCell("embedded", run_id, finished, "telecom_support", "telecom_support",
                        "test", "token_f1", 0.1, 0.01, n, version)

    old_big = cell("v1run", 1.0, 100, "2026-01-02T00:00:00Z")
    new_small = cell("v2run", 2.0, 30, "2026-01-01T00:00:00Z")
    new_big = cell("v2big", 2.0, 60, "2026-01-01T00:00:00Z")
    assert latest([old_big, new_small])[old_big.key].run_id == "v2run"
    assert latest([new_small, old_big, new_big])[old_big.key].run_id == "v2big"


def test_rank_ablation_pairs_neighbouring_ranks_question_by_question(tmp_path):
    """Each doubling is tested against the rank before it on the same questions (McNemar)."""
    root = tmp_path / "runs"
    answers = {4: [1, 0, 0, 0, 1, 0, 0, 0, 0, 0], 8: [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
               16: [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]}
    rows = []
    for rank, per_doc in answers.items():
        eval_run(root, f"evalr{rank}", f"rank/r{rank}", "2026-03-01T00:00:00Z", {
            "oranbench": ("oranbench", "test", "pass@1", sum(per_doc) / 10, 0.1,
                          [float(x) for x in per_doc])})
        row = sweep_row(rank, 2 * rank, "all", 0.7 - rank / 100, sum(per_doc) / 10)
        row["scores"] = {"oranbench": {"metric": "exact_match,pass@1",
                                       "value": sum(per_doc) / 10, "stderr": 0.1, "n": 10},
                         "_run_id": f"evalr{rank}"}
        rows.append(row)
    sweep_run(root, "rank_oran", "rank_oranbench", "rank", rows)
    page = render(root, tmp_path / "out")["rank_ablation.md"].decode()
    pairs = [r for r in table_rows(page) if r[0].startswith("r") and "→" in r[0]]
    assert pairs == [["r4 → r8", "oranbench", "10", "+0.400", "4 / 0", "0.125"],
                     ["r8 → r16", "oranbench", "10", "+0.100", "1 / 0", "1.000"]]


def oranbench_point(root: Path, run_id: str, label: str, keys: list[str], given: list[str],
                    row: dict) -> dict:
    """A sweep point's eval run answering ``given`` to questions keyed ``keys``; its row."""
    folder = root / "eval" / run_id
    folder.mkdir(parents=True)
    write_samples(folder / "samples/oranbench.jsonl", [
        {"doc_id": i, "id": f"q{i}", "target": key, "options": list("ABCD"),
         "parsed": answer, "correct": answer == key, "score": float(answer == key)}
        for i, (key, answer) in enumerate(zip(keys, given, strict=True))])
    value = sum(a == k for a, k in zip(given, keys, strict=True)) / len(keys)
    write_run(folder, "eval", run_id, {"model": "fixture"}, ["samples/oranbench.jsonl"], extra={
        "label": label, "tasks": {"oranbench": {
            "metric": "exact_match,pass@1", "value": value, "stderr": 0.1, "n": len(keys),
            "benchmark": "oranbench", "split": "test", "samples": "samples/oranbench.jsonl"}}})
    _finish(folder, "2026-03-01T00:00:00Z")
    row["scores"] = {"oranbench": {"metric": "exact_match,pass@1", "value": value,
                                   "stderr": 0.1, "n": len(keys)}, "_run_id": run_id}
    return row


def test_rank_ablation_puts_every_point_beside_the_constant_answer(tmp_path):
    """A rank that answers "B" to every question of a B-heavy key is shown at the constant,
    not as a gain; a rank that reads the questions beats it, paired per question."""
    root = tmp_path / "runs"
    keys = list("BBBBBBBBBBBBACDA")  # B is the key of 12 of 16 questions
    answers = {4: ["B"] * 16, 8: keys}  # r8 answers every question right
    rows = [oranbench_point(root, f"base{rank}", f"rank/r{rank}", keys, given,
                            sweep_row(rank, 2 * rank, "all", 0.7 - rank / 100, 0.0))
            for rank, given in answers.items()]
    sweep_run(root, "rank_oran", "rank_oranbench", "rank", rows)
    page = render(root, tmp_path / "out")["rank_ablation.md"].decode()
    beside = {r[0]: r[1:] for r in table_rows(page) if r[0] in ("r4", "r8")}
    assert beside["r4"] == ["oranbench", "16", "0.750", "0.250", "0.125", "B 0.750",
                            "B 0.750", "+0.000 (p=1) ≈ constant", "B (100%)", "0.000"]
    assert beside["r8"][:7] == ["oranbench", "16", "1.000", "0.250", "0.125", "B 0.750",
                                "B 0.750"]
    assert beside["r8"][7] == "+0.250 (p=0.125) ≈ constant"  # 4 discordant: not yet a gain


def test_rank_ablation_shows_circular_strict_and_mean_and_pairs_whole_questions(tmp_path):
    """A point's circular run sits beside its plain one: strict accuracy paired per whole
    question (right in every rotation), and the mean over rotations in a column of its own."""
    root = tmp_path / "runs"
    right = {4: [[1, 1, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0]],
             8: [[1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 0, 0]]}
    rows = []
    for rank, questions in right.items():
        folder = root / "eval" / f"circ{rank}"
        folder.mkdir(parents=True)
        write_samples(folder / "samples/oranbench_circular.jsonl", [
            {"doc_id": 4 * q + r, "id": f"q{q}/r{r}", "score": float(ok), "circular_id": f"q{q}",
             "n_rotations": 4} for q, rotations in enumerate(questions)
            for r, ok in enumerate(rotations)])
        strict = sum(all(q) for q in questions) / 3
        mean = sum(map(sum, questions)) / 12
        write_run(folder, "eval", f"circ{rank}", {"model": "fixture"},
                  ["samples/oranbench_circular.jsonl"], extra={
                      "label": f"rank/r{rank}", "tasks": {"oranbench_circular": {
                          "metric": "circular_strict,none", "value": strict, "stderr": 0.1,
                          "n": 3, "benchmark": "oranbench", "split": "test",
                          "variant": "circular", "samples": "samples/oranbench_circular.jsonl",
                          "circular_mean": {"value": mean, "stderr": 0.05}}}})
        _finish(folder, "2026-03-01T00:00:00Z")
        row = sweep_row(rank, 2 * rank, "all", 0.7 - rank / 100, 0.5)
        row["scores"]["oranbench_circular"] = {
            "metric": "circular_strict,none", "value": strict, "stderr": 0.1, "n": 3,
            "circular_mean": {"value": mean, "stderr": 0.05}}
        row["circular_eval_run_id"] = f"circ{rank}"
        rows.append(row)
    sweep_run(root, "rank_oran", "rank_oranbench", "rank", rows)
    page = render(root, tmp_path / "out")["rank_ablation.md"].decode()
    header = next(r for r in table_rows(page) if r[0] == "rank")
    assert header[5:8] == ["oranbench_circular strict accuracy",
                           "oranbench_circular mean over rotations", "teleqna accuracy"]
    by_rank = {r[0]: r for r in table_rows(page) if r[0] in ("4", "8")}
    assert by_rank["4"][5:7] == ["0.333 ± 0.100", "0.583 ± 0.050"]
    assert by_rank["8"][5:7] == ["0.667 ± 0.100", "0.750 ± 0.050"]
    pairs = [r for r in table_rows(page) if "→" in r[0]]
    assert pairs == [["r4 → r8", "oranbench_circular", "3", "+0.333", "1 / 0", "1.000"]]


@pytest.mark.parametrize("name", ["study", "rank_ablation", "distill", "edge", "engines"])
def test_committed_leaderboards_re_render_byte_for_byte(name, tmp_path):
    """The committed pages are what today's code renders from the committed runs."""
    committed = Path(__file__).parents[1] / "leaderboards" / name
    written = render_leaderboards(committed / "runs", tmp_path)
    pages = sorted(p for p in written if p.suffix == ".md")
    assert pages
    for page in pages:
        assert page.read_bytes() == (committed / page.name).read_bytes(), page.name


def test_module_ablation_pairs_each_smaller_set_against_the_largest(tmp_path):
    """A q,v adapter that gives one letter sits at the constant and, paired against the
    all-projection point on the same questions, shows what it lost; the rank page skips it."""
    root = tmp_path / "runs"
    keys = list("BBBBBBBBBBBBACDA")  # B is the key of 12 of 16 questions
    points = {"qv": (["q_proj", "v_proj"], ["B"] * 16), "attention": (ATTENTION, keys),
              "all": (ALL, keys)}
    rows = []
    for name, (targets, given) in points.items():
        row = sweep_row(16, 32, name, 0.6, 0.0)
        row.update(target_modules=targets, adapter_mb=len(targets) * 1.4)
        row["point"]["target_modules"] = targets
        rows.append(oranbench_point(root, f"mod_{name}", f"modules/{name}", keys, given, row))
    sweep_run(root, "modules_oran", "modules_oranbench", "modules", list(reversed(rows)))
    files = render(root, tmp_path / "out")
    assert "rank_ablation.md" not in files  # one rank: nothing to say about rank
    page = files["module_ablation.md"].decode()
    found = table_rows(page)
    assert [r[0] for r in found[2:5]] == ["qv", "attention", "all"]  # fewest projections first
    assert found[2][1:3] == ["q, v", "2.80"]
    beside = {r[0]: r[1:] for r in found if r[1:2] == ["oranbench"]}
    assert beside["qv"][7] == "+0.000 (p=1) ≈ constant" and beside["qv"][8] == "B (100%)"
    paired = {r[0]: r[1:] for r in found if "→" in r[0]}
    assert paired == {"all → qv": ["oranbench", "16", "-0.250", "0 / 4", "0.125"],
                      "all → attention": ["oranbench", "16", "+0.000", "0 / 0", "1.000"]}
