"""Paired significance tests and the regression gate, on fixture runs (no models)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import SlmbenchError
from harness.hashing import sha256_json
from harness.report.regress import compare, export_run, load_baseline, run_gate, write_export
from harness.runs import store
from harness.significance import mcnemar_exact, paired_bootstrap, paired_ci, spearman


@pytest.fixture(autouse=True)
def _no_torch(monkeypatch):
    """write_run probes the GPU through torch; fixture runs need no hardware facts."""
    monkeypatch.setattr(store, "hardware", lambda: {"machine": "test"})
    monkeypatch.setattr(store, "git_state", lambda: {"sha": None, "dirty": None})


# --- significance ----------------------------------------------------------------------------

def test_mcnemar_known_values():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 0) == 0.001953125
    assert mcnemar_exact(0, 10) == 0.001953125
    assert mcnemar_exact(5, 5) == 1.0
    # 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096, summed by hand.
    assert mcnemar_exact(2, 10) == pytest.approx(158 / 4096, rel=1e-12)


def test_bootstrap_identical_inputs():
    scores = [0.1, 0.5, 0.9, 0.3] * 10
    result = paired_bootstrap(scores, scores, n_resamples=2000)
    assert result["delta"] == 0.0
    assert result["p_value"] == 1.0
    assert result["ci_low"] == result["ci_high"] == 0.0


def test_bootstrap_deterministic_and_detects_shift():
    base = [i / 100 for i in range(100)]
    noisy = [s + (0.05 if i % 2 else -0.04) for i, s in enumerate(base)]
    assert paired_bootstrap(base, noisy, seed=3) == paired_bootstrap(base, noisy, seed=3)
    assert paired_bootstrap(base, noisy, seed=3) != paired_bootstrap(base, noisy, seed=4)
    shifted = [s - 0.2 + (0.01 * (i % 3)) for i, s in enumerate(base)]
    result = paired_bootstrap(base, shifted)
    assert result["p_value"] < 0.01
    assert result["ci_low"] < result["delta"] < result["ci_high"] < 0
    assert result["delta"] == pytest.approx(-0.2 + 0.0099)


def test_bootstrap_rejects_unpaired():
    with pytest.raises(ValueError):
        paired_bootstrap([1.0, 0.0], [1.0])


def test_paired_ci_binary_matches_mcnemar_formula():
    base = [1.0] * 30 + [0.0] * 10 + [1.0] * 50 + [0.0] * 10
    cand = [0.0] * 30 + [1.0] * 10 + [1.0] * 50 + [0.0] * 10
    result = paired_ci(base, cand)
    b, c, n = 30, 10, 100
    se = math.sqrt(b + c - (c - b) ** 2 / n) / n
    assert result["delta"] == pytest.approx(-0.2)
    assert result["se"] == pytest.approx(se)
    assert result["ci_low"] == pytest.approx(-0.2 - 1.959964 * se, abs=1e-6)


def test_spearman_ties_and_edges():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1], [2]))


# --- fixture runs ----------------------------------------------------------------------------

DATA = "a" * 64


def make_run(root: Path, name: str, tasks: dict[str, dict[str, float]], *,
             info: dict[str, dict] | None = None, label: str | None = None) -> Path:
    folder = root / name
    files, infos = [], {}
    for task, scores in tasks.items():
        rows = [{"doc_id": i, "id": qid, "score": s, "correct": bool(s) if s in (0, 1) else None}
                for i, (qid, s) in enumerate(scores.items())]
        sample_file = f"samples/{task}.jsonl"
        store.write_samples(folder / sample_file, rows)
        files.append(sample_file)
        infos[task] = {"metric": "exact_match,pass@1", "filter": "pass@1",
                       "value": sum(scores.values()) / len(scores), "stderr": None,
                       "version": 1.0, "benchmark": task, "split": "test", "n": len(scores),
                       "data_sha256": DATA, "samples": sample_file,
                       "question_set_sha256": sha256_json(sorted(scores)),
                       **((info or {}).get(task) or {})}
    store.write_run(folder, "eval", name, {"model": "fixture"}, files,
                    extra={"label": label or name, "tasks": infos})
    return folder


def binary(n: int = 200, correct: int = 150) -> dict[str, float]:
    return {f"q{i:03d}": 1.0 if i < correct else 0.0 for i in range(n)}


def flipped(scores: dict[str, float], lose: int = 0, gain: int = 0) -> dict[str, float]:
    out = dict(scores)
    right = [q for q, s in scores.items() if s == 1.0]
    wrong = [q for q, s in scores.items() if s == 0.0]
    for q in right[:lose]:
        out[q] = 0.0
    for q in wrong[:gain]:
        out[q] = 1.0
    return out


def gate(base: Path, cand: Path, **kw):
    return compare(load_baseline(base), load_baseline(cand), **kw)


def test_identical_runs_pass(tmp_path):
    tasks = {"teleqna": binary(), "oran": binary(120, 60)}
    report = gate(make_run(tmp_path, "base", tasks), make_run(tmp_path, "cand", tasks))
    assert report.check() is True
    assert [r.verdict for r in report.rows] == ["ok", "ok"]
    assert all(r.p_value == 1.0 and r.delta == 0 for r in report.rows)


def test_planted_regression_fails(tmp_path):
    base = make_run(tmp_path, "base", {"teleqna": binary()})
    cand = make_run(tmp_path, "cand", {"teleqna": flipped(binary(), lose=30)})
    report = gate(base, cand)
    row = report.rows[0]
    assert (row.n, row.lost, row.gained, row.test) == (200, 30, 0, "mcnemar-exact")
    assert row.delta == pytest.approx(-0.15)
    assert row.p_value == pytest.approx(2 * 0.5**30)
    assert row.verdict == "regressed" and report.check() is False
    assert run_gate(base, cand) == 1


def test_noise_passes(tmp_path):
    base = make_run(tmp_path, "base", {"teleqna": binary()})
    cand = make_run(tmp_path, "cand", {"teleqna": flipped(binary(), lose=4, gain=3)})
    report = gate(base, cand)
    assert report.rows[0].verdict == "ok" and report.check() is True


def test_verdict_needs_both_size_and_significance(tmp_path):
    # Significant but below tolerance: 30 lost of 2000 is a 1.5-point drop.
    big = binary(2000, 1500)
    report = gate(make_run(tmp_path, "b1", {"t": big}),
                  make_run(tmp_path, "c1", {"t": flipped(big, lose=30)}))
    assert report.rows[0].p_value < 1e-6 and report.rows[0].verdict == "ok"
    # Large but not significant: 2 lost of 20.
    small = binary(20, 15)
    report = gate(make_run(tmp_path, "b2", {"t": small}),
                  make_run(tmp_path, "c2", {"t": flipped(small, lose=2)}))
    assert report.rows[0].delta == pytest.approx(-0.1) and report.rows[0].verdict == "ok"
    # A planted gain is reported as improved and passes.
    report = gate(make_run(tmp_path, "b3", {"t": binary()}),
                  make_run(tmp_path, "c3", {"t": flipped(binary(), gain=30)}))
    assert report.rows[0].verdict == "improved" and report.check() is True


def test_non_binary_uses_bootstrap(tmp_path):
    base = {f"q{i}": (i % 10) / 10 for i in range(200)}
    worse = {q: max(0.0, s - 0.25) for q, s in base.items()}
    report = gate(make_run(tmp_path, "b", {"f1": base}), make_run(tmp_path, "c", {"f1": worse}))
    row = report.rows[0]
    assert row.test == "paired-bootstrap" and row.verdict == "regressed" and row.p_value < 0.01
    report = gate(make_run(tmp_path, "b2", {"f1": base}), make_run(tmp_path, "c2", {"f1": base}))
    assert report.rows[0].p_value == 1.0 and report.check() is True


@pytest.mark.parametrize("kind, cand_info, cand_scores, needle", [
    ("questions", {}, {f"q{i:03d}": 1.0 if i < 150 else 0.0 for i in range(1, 201)},
     "question sets differ (1 only in baseline, 1 only in candidate)"),
    ("data", {"data_sha256": "b" * 64}, None, "data_sha256 differs"),
    ("version", {"version": 2.0}, None, "version differs (baseline 1.0, candidate 2.0)"),
])
def test_mismatch_refused_unless_allowed(tmp_path, kind, cand_info, cand_scores, needle):
    base = make_run(tmp_path, "base", {"teleqna": binary(), "oran": binary(50, 25)})
    cand = make_run(tmp_path, "cand", {"teleqna": cand_scores or binary(), "oran": binary(50, 25)},
                    info={"teleqna": cand_info})
    report = gate(base, cand)
    assert [r.task for r in report.rows] == ["oran"]  # the comparable task is still reported
    with pytest.raises(SlmbenchError) as err:
        report.check()
    message = str(err.value)
    assert "\n" not in message and "task teleqna" in message and needle in message
    allowed = gate(base, cand, allow_mismatch=True)
    assert allowed.check() is True
    assert any("teleqna" in w and needle in w for w in allowed.warnings)
    assert allowed.rows[1].n == (199 if kind == "questions" else 200)


def test_missing_task_names_it_and_keeps_the_rest(tmp_path):
    base = make_run(tmp_path, "base", {"teleqna": binary(), "oran": binary(50, 25)})
    cand = make_run(tmp_path, "cand", {"teleqna": flipped(binary(), lose=30)})
    summary = tmp_path / "gate.md"
    with pytest.raises(SlmbenchError, match="lacks task.*oran"):
        run_gate(base, cand, summary=summary)
    text = summary.read_text()
    assert "ERROR" in text and "| teleqna | 200 |" in text and "oran" in text


def test_task_option_gates_one_category_of_a_wider_baseline(tmp_path, capsys):
    base = make_run(tmp_path, "base", {"teleqna": binary(), "oran": binary(50, 25)})
    oran_better = make_run(tmp_path, "oran_only", {"oran": flipped(binary(50, 25), gain=10)})
    oran_worse = make_run(tmp_path, "oran_worse", {"oran": flipped(binary(50, 25), lose=15)})
    assert main(["regress", "--baseline", str(base), "--candidate", str(oran_better)]) == 2
    assert main(["regress", "--baseline", str(base), "--candidate", str(oran_better),
                 "--task", "oran"]) == 0
    assert main(["regress", "--baseline", str(base), "--candidate", str(oran_worse),
                 "--task", "oran"]) == 1
    capsys.readouterr()
    assert main(["regress", "--baseline", str(base), "--candidate", str(oran_better),
                 "--task", "telemath"]) == 2
    err = capsys.readouterr().err
    assert "--task telemath: not in the baseline base (it has oran, teleqna)" in err


def test_tampered_samples_named(tmp_path):
    base = make_run(tmp_path, "base", {"teleqna": binary(), "oran": binary(50, 25)})
    cand = make_run(tmp_path, "cand", {"teleqna": binary(), "oran": binary(50, 25)})
    samples = cand / "samples" / "teleqna.jsonl"
    samples.write_text(samples.read_text().replace('"score": 1.0', '"score": 0.0', 1))
    report = gate(base, cand)
    assert [r.task for r in report.rows] == ["oran"]
    with pytest.raises(SlmbenchError) as err:
        report.check()
    assert str(samples) in str(err.value) and "sha256 mismatch" in str(err.value)


def test_export_round_trip_and_labels(tmp_path):
    base = make_run(tmp_path, "base", {"teleqna": binary()}, label="main")
    other = make_run(tmp_path, "other", {"teleqna": binary(200, 100)}, label="old")
    exported = export_run(store.load_run(base))
    assert exported["tasks"]["teleqna"]["per_doc"]["q000"] == 1.0
    assert "samples" not in exported["tasks"]["teleqna"] and "environment" in exported
    single = tmp_path / "single.json"
    write_export([base], single)
    assert load_baseline(single).scores == load_baseline(base).scores
    multi = tmp_path / "multi.json"
    write_export([base, other], multi)
    assert load_baseline(multi, "old").label == "old"
    with pytest.raises(SlmbenchError, match="main, old"):
        load_baseline(multi)
    with pytest.raises(SlmbenchError, match="no run labelled 'nope'"):
        load_baseline(multi, "nope")
    # A hand-edited export whose question ids no longer match is refused by name.
    data = json.loads(single.read_text())
    del data["tasks"]["teleqna"]["per_doc"]["q000"]
    single.write_text(json.dumps(data))
    report = compare(load_baseline(single), load_baseline(base))
    assert report.errors and "question_set_sha256" in report.errors[0]


def test_every_flipped_byte_of_an_export_is_refused_or_named(tmp_path):
    """Wherever a byte lands (scores, ids, label, config), the export is not read as written."""
    base = make_run(tmp_path, "base", {"teleqna": binary(6, 3), "oranbench": binary(4, 2)},
                    label="main")
    export = tmp_path / "baseline.json"
    write_export([base], export)
    clean = export.read_bytes()
    accepted = []
    for at in range(len(clean)):
        damaged = bytearray(clean)
        damaged[at] ^= 0x40
        export.write_bytes(bytes(damaged))
        try:
            side = load_baseline(export)
        except SlmbenchError as err:
            assert "\n" not in str(err) and str(export) in str(err)
            continue
        if not side.problems:
            accepted.append(clean[max(0, at - 20):at + 20])
    assert accepted == []
    # An export from before the seal still loads; one whose seal key was damaged does not.
    data = json.loads(clean)
    seal = data.pop("export_sha256")
    export.write_text(json.dumps(data))
    assert load_baseline(export).scores == load_baseline(base).scores
    export.write_text(json.dumps({**data, "export_sha2u6": seal}))
    with pytest.raises(SlmbenchError, match=r"unknown field\(s\) \['export_sha2u6'\]"):
        load_baseline(export)


def test_export_refuses_damaged_run(tmp_path):
    base = make_run(tmp_path, "base", {"teleqna": binary()})
    (base / "samples" / "teleqna.jsonl").write_text("")
    with pytest.raises(SlmbenchError, match="cannot export.*teleqna"):
        export_run(store.load_run(base))


# --- CLI -------------------------------------------------------------------------------------

def test_cli_exit_codes_and_summary(tmp_path, capsys):
    base = make_run(tmp_path, "base", {"teleqna": binary()})
    same = make_run(tmp_path, "same", {"teleqna": flipped(binary(), lose=2, gain=1)})
    worse = make_run(tmp_path, "worse", {"teleqna": flipped(binary(), lose=30)})
    baseline = tmp_path / "baseline.json"
    assert main(["regress", "--export", str(base), "--out", str(baseline)]) == 0
    summary = tmp_path / "out" / "gate.md"
    assert main(["regress", "--baseline", str(baseline), "--candidate", str(same),
                 "--summary", str(summary)]) == 0
    assert "PASSED" in summary.read_text()
    assert main(["regress", "--baseline", str(baseline), "--candidate", str(worse),
                 "--summary", str(summary)]) == 1
    text = summary.read_text()
    assert "FAILED" in text and "**regressed**" in text and "| teleqna | 200 |" in text
    # A multi-run baseline is picked by label.
    both = tmp_path / "both.json"
    assert main(["regress", "--export", str(base), str(worse), "--out", str(both)]) == 0
    assert main(["regress", "--baseline", str(both), "--baseline-label", "worse",
                 "--candidate", str(worse)]) == 0
    assert main(["regress", "--baseline", str(both), "--candidate", str(worse)]) == 2
    # A looser tolerance lets the same drop through.
    assert main(["regress", "--baseline", str(base), "--candidate", str(worse),
                 "--tolerance", "0.2"]) == 0
    capsys.readouterr()


def test_cli_errors_exit_2(tmp_path, capsys):
    base = make_run(tmp_path, "base", {"teleqna": binary()})
    cand = make_run(tmp_path, "cand", {"teleqna": binary()}, info={"teleqna": {"version": 2}})
    capsys.readouterr()
    assert main(["regress", "--baseline", str(base), "--candidate", str(cand)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("slmbench: error: task teleqna: version differs") and "\n" not in err
    assert main(["regress", "--baseline", str(base), "--candidate", str(cand),
                 "--allow-mismatch"]) == 0
    assert main(["regress", "--baseline", str(base)]) == 2
    assert main(["regress", "--export", str(base)]) == 2
    assert main(["regress", "--baseline", str(tmp_path / "nope"), "--candidate", str(cand)]) == 2
