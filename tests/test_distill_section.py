"""The distillation page: four arms x free-form metrics, paired against the no-SFT arm."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.evaluation.sample_rows import sample_rows
from harness.report.distill_section import corpus_tests, distill_arms
from harness.report.leaderboard_data import collect
from harness.runs import store
from harness.runs.store import write_run, write_samples

TASK = "teleqna_freeform"
REFERENCES = [f"the gnb forwards the rrc message number {i} to the core" for i in range(60)]


def _answers(arm: str) -> list[str]:
    """no_sft half-right; sft_both nearly right; sft_teacher = no_sft; sft_student noisier."""
    rng = random.Random(arm)
    out = []
    for i, ref in enumerate(REFERENCES):
        words = ref.split()
        if arm == "sft_both":
            keep = words if i % 10 else words[:-2]
        elif arm == "sft_student":
            keep = [w for w in words if rng.random() < 0.45]
        else:  # no_sft and sft_teacher answer the same
            keep = words[: len(words) // 2 + (i % 3)]
        out.append(" ".join(keep))
    return out


def _token_f1(pred: str, ref: str) -> float:
    p, r = pred.split(), ref.split()
    common = sum(min(p.count(w), r.count(w)) for w in set(p))
    return 0.0 if not common else 2 * common / (len(p) + len(r))


def _arm_run(root: Path, arm: str, ids: range = range(60)) -> None:
    folder = root / "eval" / f"run_{arm}"
    folder.mkdir(parents=True)
    rows = []
    for i in ids:
        pred, ref = _answers(arm)[i], REFERENCES[i]
        f1 = _token_f1(pred, ref)
        rows.append({"doc_id": i, "id": f"q{i}", "score": f1,
                     "metrics": {"token_f1": f1, "exact_match": float(pred == ref)},
                     "corpus_pair": [ref, pred]})
    write_samples(folder / f"samples/{TASK}.jsonl", rows)
    info = {TASK: {"metric": "token_f1,none", "filter": "none", "version": 1.0,
                   "value": sum(r["score"] for r in rows) / len(rows), "stderr": 0.01,
                   "benchmark": "teleqna", "split": "test", "n": len(rows),
                   "samples": f"samples/{TASK}.jsonl"}}
    write_run(folder, "eval", f"run_{arm}", {"model": arm}, [f"samples/{TASK}.jsonl"],
              extra={"label": f"distill:{arm}", "tasks": info})


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "hardware", lambda: {"machine": "fixture"})
        mp.setattr(store, "package_versions", lambda: {})
        mp.setattr(store, "git_state", lambda: {"sha": None, "dirty": None})
        for arm in ("no_sft", "sft_teacher", "sft_student", "sft_both"):
            _arm_run(root, arm)
        _arm_run(root, "teacher", ids=range(50))  # another question set: not compared
    section = distill_arms(collect(root), tmp_path_factory.mktemp("out"))
    return section.text


def _row(text: str, table_index: int, arm: str) -> list[str]:
    tables = [t for t in text.split("\n\n") if t.startswith("| arm")]
    line = next(li for li in tables[table_index].splitlines() if li.startswith(f"| {arm} "))
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def test_every_arm_and_metric_is_a_row_and_a_column(page):
    header = next(li for li in page.splitlines() if li.startswith("| arm"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "arm", "exact_match", "token_f1", "bleu", "chrf", "ter"]
    assert "n=60 questions" in page
    for arm in ("no_sft", "sft_teacher", "sft_student", "sft_both"):
        assert _row(page, 0, arm)


def test_paired_tests_call_real_differences_and_only_those(page):
    f1 = {arm: float(_row(page, 0, arm)[2]) for arm in ("no_sft", "sft_both", "sft_teacher")}
    assert f1["sft_both"] > f1["no_sft"] == f1["sft_teacher"]
    both = _row(page, 1, "sft_both")
    assert both[2].endswith("✔") and both[3].endswith("✔")  # token F1, BLEU up
    assert both[5].endswith("✔") and both[5].startswith("-")  # TER down is better
    same = _row(page, 1, "sft_teacher")
    assert all(c.startswith(("+0.000", "+0.00")) and c.endswith("p=1.000") for c in same[1:])
    assert "teacher: scored other questions than no_sft; not compared" in page


def test_corpus_scores_are_sacrebleus_own():
    from sacrebleu.metrics import BLEU, CHRF, TER

    pairs = {arm: list(zip(REFERENCES, _answers(arm), strict=True))
             for arm in ("no_sft", "sft_both")}
    scored = corpus_tests(pairs, "no_sft", n_resamples=200)
    preds = _answers("sft_both")
    assert scored["bleu"]["sft_both"]["value"] == pytest.approx(
        BLEU().corpus_score(preds, [REFERENCES]).score)
    assert scored["chrf"]["sft_both"]["value"] == pytest.approx(
        CHRF().corpus_score(preds, [REFERENCES]).score)
    assert scored["ter"]["sft_both"]["value"] == pytest.approx(
        TER().corpus_score(preds, [REFERENCES]).score)
    assert scored["bleu"]["sft_both"]["p_value"] < 0.05


def test_logged_free_form_samples_keep_every_metric_and_the_corpus_pair():
    """As lm-eval logs a free-form sample: numbers per answer, (ref, pred) for the corpus."""
    sample = {"doc_id": 3, "doc": {"id": "x3"}, "filter": "none", "target": "ref",
              "resps": [["pred"]], "filtered_resps": ["pred"], "token_f1": 0.5,
              "exact_match": 0.0, "rouge1": 0.4, "bleu": ["ref", "pred"], "chrf": ["ref", "pred"]}
    names = ["exact_match", "token_f1", "rouge1", "bleu", "chrf"]
    row = sample_rows([json.loads(json.dumps(sample))], "token_f1", "none", names)[0]
    assert row["score"] == 0.5
    assert row["metrics"] == {"token_f1": 0.5, "exact_match": 0.0, "rouge1": 0.4}
    assert row["corpus_pair"] == ["ref", "pred"]
    mcq = sample_rows([{**sample, "exact_match": 1.0}], "exact_match", "none", ["exact_match"])
    assert "metrics" not in mcq[0] and "corpus_pair" not in mcq[0]
