"""Constant-answer baselines and the collapse flag, on known answers and committed records."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.runs.store import load_run
from harness.scoring import baselines

LETTERS4 = ["A", "B", "C", "D"]
STUDY = Path(__file__).resolve().parents[1] / "leaderboards" / "study" / "runs" / "eval"


def _row(i: int, target: str, answer: str, options=LETTERS4, **extra) -> dict:
    return {"id": f"q{i}", "doc_id": i, "target": target, "options": list(options),
            "parsed": [answer], "correct": answer == target, **extra}


def test_always_a_on_a_skewed_key_is_the_constant_and_collapses():
    targets = ["A"] * 75 + ["B"] * 10 + ["C"] * 10 + ["D"] * 5
    b = baselines.compute([_row(i, t, "A") for i, t in enumerate(targets)])
    assert b.score == pytest.approx(0.75)
    assert b.chance == pytest.approx(0.25)
    assert b.always_first == pytest.approx(0.75)
    assert (b.majority_key, b.majority_key_score) == ("A", pytest.approx(0.75))
    assert (b.best_constant, b.best_constant_score) == ("A", pytest.approx(0.75))
    assert (b.top_answer, b.top_share, b.entropy) == ("A", 1.0, 0.0)
    assert b.vs_constant_delta == 0 and b.collapse is True


def test_a_model_that_knows_beats_the_constant_paired():
    targets = ["A"] * 75 + ["B"] * 10 + ["C"] * 10 + ["D"] * 5
    b = baselines.compute([_row(i, t, t) for i, t in enumerate(targets)])
    assert b.score == 1.0 and b.best_constant_score == pytest.approx(0.75)
    assert b.vs_constant_gained == 25 and b.vs_constant_lost == 0
    assert b.vs_constant_p < 1e-6 and b.collapse is False
    # spread over the options as the key is, not evenly: entropy strictly between 0 and 1
    assert 0 < b.entropy < 1


def test_chance_follows_each_questions_option_count():
    rows = [_row(0, "A", "A", LETTERS4), _row(1, "E", "A", [*LETTERS4, "E"])]
    b = baselines.compute(rows)
    assert b.chance == pytest.approx((1 / 4 + 1 / 5) / 2)
    # "E" exists only in the second question: the best constant is still a single answer
    assert b.best_constant in ("A", "E") and b.best_constant_score == pytest.approx(0.5)


def test_circular_constant_letter_is_never_right_in_every_rotation():
    rows, i = [], 0
    for q in range(20):
        gold = q % 4
        for rotation in range(4):
            target = LETTERS4[(gold + rotation) % 4]
            rows.append(_row(i, target, "A", circular_id=f"c{q}", rotation=rotation))
            i += 1
    b = baselines.compute(rows)
    assert b.n == 20 and b.prompts == 80
    assert b.score == 0.0 and b.best_constant_score == 0.0 and b.always_first == 0.0
    assert b.chance == pytest.approx(0.25 ** 4)
    assert b.collapse is True


def test_circular_constant_label_keeps_its_prior():
    labels = ["RAN1", "SA2", "CT1"]
    rows, i = [], 0
    for q, gold in enumerate(["RAN1"] * 6 + ["SA2"] * 4):
        for rotation in range(3):
            options = labels[rotation:] + labels[:rotation]
            rows.append(_row(i, gold, "RAN1", options, circular_id=f"c{q}", rotation=rotation))
            i += 1
    b = baselines.compute(rows)
    assert b.best_constant == "RAN1" and b.best_constant_score == pytest.approx(0.6)
    assert b.score == pytest.approx(0.6) and b.collapse is True


def test_loglikelihood_rows_take_the_likeliest_option():
    row = {"id": "q", "doc_id": 0, "target": 2, "options": LETTERS4, "correct": True,
           "parsed": [[-3.0, False], [-2.5, False], [-0.1, True], [-4.0, False]]}
    b = baselines.compute([row])
    assert b.top_answer == "C" and b.score == 1.0


def test_unparsed_answers_count_against_the_model_not_the_distribution():
    rows = [_row(0, "A", "A"), {**_row(1, "B", "x"), "parsed": ["[unparsed] no letter"]}]
    b = baselines.compute(rows)
    assert b.unparsed_share == 0.5 and b.top_answer == "A" and b.top_share == 1.0


def test_numeric_constants_match_within_tolerance():
    rows = [{"id": f"q{i}", "target": gold, "parsed": [answer], "correct": ok}
            for i, (gold, answer, ok) in enumerate([("0", "0", True), ("0.001", "0", True),
                                                    ("12.5", "0", False), ("3", "3", True)])]
    b = baselines.compute(rows)
    assert b.chance is None and b.always_first is None
    assert (b.best_constant, b.best_constant_score) == ("0", pytest.approx(0.5))
    assert (b.top_answer, b.top_share) == ("0", 0.75)


def test_free_form_rows_have_no_baseline():
    assert baselines.compute([{"id": "q", "target": "the gNB", "parsed": ["an eNB"],
                               "correct": False}]) is None


def test_records_without_options_read_them_from_the_prompt():
    prompt = "Question: x\nA. one\nB. two\nC. three\nAnswer:"
    row = {"id": "q", "doc_id": 0, "target": "B", "parsed": ["B"], "correct": True,
           "prompt": prompt}
    assert baselines.answers_of([row])[0].options == ("A", "B", "C")
    label_prompt = "text\n\nReply with exactly one label from: CT1, RAN1, SA2.\nAnswer:"
    row = {"id": "q", "doc_id": 0, "target": "RAN1", "parsed": ["RAN1"], "correct": True,
           "prompt": label_prompt}
    assert baselines.answers_of([row])[0].options == ("CT1", "RAN1", "SA2")


@pytest.mark.skipif(not STUDY.is_dir(), reason="committed study records absent")
@pytest.mark.parametrize("run_id,task,score,majority,top,share", [
    # the numbers issue 23 measured on the committed study (Pass@1, n=100)
    ("3d46fac01557edc1", "srsranbench", 0.74, 0.74, "A", 1.0),
    ("3d46fac01557edc1", "oranbench", 0.36, 0.34, "B", 0.53),
    ("3d46fac01557edc1", "sixg_bench", 0.33, 0.34, "B", 0.99),
    ("3d46fac01557edc1", "teletables", 0.34, 0.29, "E", 0.55),
    ("3d46fac01557edc1", "three_gpp_tsg", 0.13, 0.10, "RAN1", 0.86),
    ("7a8308fac4d3ec3f", "oranbench", 0.31, 0.34, None, None),
    ("3d46fac01557edc1", "telemath", 0.06, 0.04, "0", 0.46),
])
def test_committed_study_runs_sit_at_their_answer_prior(run_id, task, score, majority, top,
                                                        share):
    run = load_run(STUDY / run_id)
    b = baselines.compute(run.jsonl(run.tasks()[task]["samples"]))
    assert b.n == 100
    assert b.score == pytest.approx(score)
    assert b.majority_key_score == pytest.approx(majority)
    if top is not None:
        assert b.top_answer == top and math.isclose(b.top_share, share, abs_tol=0.006)
    assert b.collapse is True  # none of them beats always giving the most frequent key


def test_the_verdict_says_below_when_the_constant_beats_the_model_paired():
    """A score significantly under the constant answer is not "≈ constant"."""
    from harness.scoring.baselines import table_cells

    def verdict(delta, p, collapse):
        return table_cells("t", {"n": 10, "vs_constant_delta": delta, "vs_constant_p": p,
                                 "collapse": collapse})[7].split(") ", 1)[1]

    assert verdict(-0.18, 1e-6, True) == "below it"
    assert verdict(-0.02, 0.5, True) == "≈ constant"
    assert verdict(0.10, 0.01, False) == "beats it"


def test_a_model_that_always_gives_one_answer_shows_entropy_zero_not_minus_zero():
    """-(1 * log 1) is -0.0, which pages printed as "-0.000"; records made before hold it."""
    from harness.scoring.baselines import table_cells

    b = baselines.compute([_row(i, t, "A") for i, t in enumerate("ABCD")])
    assert math.copysign(1.0, b.entropy) == 1.0
    assert table_cells("t", b.as_dict())[-1] == "0.000"
    assert table_cells("t", {**b.as_dict(), "entropy": -0.0})[-1] == "0.000"


def test_a_p_value_recorded_as_zero_reads_as_under_the_records_precision():
    """as_dict keeps six decimals; a vanishing p is "p<1e-06" on the page, never "p=0"."""
    from harness.scoring.baselines import table_cells

    targets = ["B"] * 90 + ["A"] * 10  # always "A": 10 gained, 90 lost against always "B"
    found = baselines.compute([_row(i, t, "A") for i, t in enumerate(targets)]).as_dict()
    assert found["vs_constant_p"] == 0.0  # about 1e-16, rounded away
    assert table_cells("t", found)[7] == "-0.800 (p<1e-06) below it"
    assert table_cells("t", {**found, "vs_constant_p": 0.0123})[7] == "-0.800 (p=0.0123) below it"


def test_circular_mean_puts_a_constant_letter_at_chance_and_a_label_at_its_share():
    rows, i = [], 0
    for q in range(8):  # always "A": right in exactly one rotation of each question
        gold = q % 4
        for rotation in range(4):
            target = LETTERS4[(gold + rotation) % 4]
            answer = target if q < 2 else "A"  # two questions known in every rotation
            rows.append(_row(i, target, answer, circular_id=f"c{q}", rotation=rotation,
                             n_rotations=4))
            i += 1
    rows.append(_row(i, "B", "B", circular_id="cut", rotation=0, n_rotations=4))  # --limit cut
    m = baselines.circular_mean(rows)
    assert m.n == 8 and set(m.per_question) == {f"c{q}" for q in range(8)}
    assert m.per_question["c0"] == 1.0 and m.per_question["c5"] == 0.25
    assert m.score == pytest.approx((2 * 1.0 + 6 * 0.25) / 8)
    assert m.chance == pytest.approx(0.25) and m.best_constant_score == pytest.approx(0.25)

    labels = ["RAN1", "SA2", "CT1"]
    rows = [_row(3 * q + r, gold, "RAN1", labels[r:] + labels[:r], circular_id=f"c{q}",
                 rotation=r, n_rotations=3)
            for q, gold in enumerate(["RAN1"] * 6 + ["SA2"] * 4) for r in range(3)]
    m = baselines.circular_mean(rows)
    assert (m.best_constant, m.best_constant_score) == ("RAN1", pytest.approx(0.6))
    assert m.chance == pytest.approx(1 / 3)
    assert baselines.circular_mean([_row(0, "A", "A")]) is None  # not a circular task
