"""Free-form QA metrics against their reference implementations and hand-computed values."""

from __future__ import annotations

import pytest

from harness.scoring import freeform


def _corpus(name: str, pairs: list[tuple[str, str]]) -> float:
    """lm-eval's own aggregation of the items our process_results emits."""
    import lm_eval.api.metrics as metrics

    return getattr(metrics, name)([freeform.answer_scores(p, r)[name] for p, r in pairs])


def test_corpus_metrics_are_sacrebleus_through_lm_evals_aggregations():
    import sacrebleu

    pairs = [("the cell reselects to the strongest neighbour", "the UE reselects to the "
              "strongest neighbour cell"), ("reset the APN", "reset the APN settings")]
    preds, refs = [p for p, _ in pairs], [[r for _, r in pairs]]
    assert _corpus("bleu", pairs) == pytest.approx(sacrebleu.corpus_bleu(preds, refs).score)
    assert _corpus("chrf", pairs) == pytest.approx(sacrebleu.corpus_chrf(preds, refs).score)
    assert _corpus("ter", pairs) == pytest.approx(sacrebleu.corpus_ter(preds, refs).score)
    same = [("the cat is on the mat", "the cat is on the mat")]
    assert _corpus("bleu", same) == pytest.approx(100.0)
    assert _corpus("chrf", same) == pytest.approx(100.0)
    assert _corpus("ter", same) == pytest.approx(0.0)


def test_per_answer_metrics_on_known_strings():
    # ROUGE-1: "the cat sat" in "the cat sat on the mat": P 3/3, R 3/6 -> F 2/3
    assert freeform.rouge("the cat sat", "the cat sat on the mat")["rouge1"] == \
        pytest.approx(2 / 3)
    # ROUGE-2: bigrams {the cat, cat sat} both in the reference's 5 -> P 1, R 2/5 -> F 4/7
    assert freeform.rouge("the cat sat", "the cat sat on the mat")["rouge2"] == \
        pytest.approx(4 / 7)
    # METEOR of an identical 6-word answer: one chunk, Fmean 1, penalty 0.5 * (1/6)^3
    assert freeform.meteor("a b c d e f", "a b c d e f") == pytest.approx(1 - 0.5 / 216)
    # stems match without WordNet: "resets"/"reset" share the Porter stem
    assert freeform.meteor("resets", "reset") > 0.4
    assert freeform.meteor("", "reset") == 0.0
    assert freeform.exact_match("Reset the APN.", "reset APN") == 1.0
    assert freeform.exact_match("reset", "reset APN") == 0.0


def test_meteor_matches_nltk_with_the_same_wordnet():
    from nltk.translate.meteor_score import meteor_score

    hyp, ref = "the handover failed at the target cell", "handover to the target cell failed"
    assert freeform.meteor(hyp, ref) == pytest.approx(
        meteor_score([ref.split()], hyp.split(), wordnet=freeform.wordnet()))


def test_a_bad_wordnet_folder_falls_back_to_exact_and_stem_matches(tmp_path, monkeypatch,
                                                                   caplog):
    monkeypatch.setenv("SLMBENCH_WORDNET", str(tmp_path / "no-wordnet"))
    freeform.wordnet.cache_clear()
    try:
        assert freeform.wordnet().synsets("signal") == []
        assert "METEOR without WordNet synonyms" in caplog.text
        assert freeform.meteor("resets", "reset") > 0.4
    finally:
        freeform.wordnet.cache_clear()


def test_debians_wordnet_gives_meteor_its_synonyms(tmp_path, monkeypatch):
    """scripts/wordnet_from_debian.sh: the synonym stage credits "transmits" for "sends"."""
    import subprocess
    from pathlib import Path

    from nltk.translate.meteor_score import meteor_score

    if not Path("/usr/share/wordnet/data.noun").is_file():
        pytest.skip("Debian's wordnet-base is not installed")
    script = Path(__file__).parents[1] / "scripts" / "wordnet_from_debian.sh"
    folder = subprocess.run(["bash", str(script), str(tmp_path / "wn")], check=True,
                            capture_output=True, text=True).stdout.strip()
    hyp, ref = "the cell tower transmits the signal", "the base station sends the signal"
    without = freeform.meteor(hyp, ref) if not freeform.wordnet().synsets("send") else None
    monkeypatch.setenv("SLMBENCH_WORDNET", folder)
    freeform.wordnet.cache_clear()
    try:
        reader = freeform.wordnet()
        assert reader.synsets("signal")
        score = freeform.meteor(hyp, ref)
        assert score == pytest.approx(meteor_score([ref.split()], hyp.split(), wordnet=reader))
        assert without is None or score > without
    finally:
        freeform.wordnet.cache_clear()


def test_embedding_cosine_is_one_for_the_same_text_and_lower_for_another():
    same = freeform.embedding_cosine("restart the router", "restart the router")
    other = freeform.embedding_cosine("restart the router", "the invoice is overdue")
    assert same == pytest.approx(1.0, abs=1e-5) and other < same


def test_teleqna_reference_is_the_option_text_and_the_explanation():
    doc = {"choices": ["NOMA", "SCMA"], "answer": 1,
           "explanation": "SCMA uses message passing."}
    assert freeform.teleqna_reference(doc) == "SCMA. SCMA uses message passing."
    assert freeform.teleqna_reference({**doc, "explanation": ""}) == "SCMA"


def test_explanation_is_loaded_only_for_the_task_that_asks_and_never_changes_the_hash():
    from conftest import shared_data_or_skip

    from harness.data import source
    from harness.errors import SlmbenchError

    data = shared_data_or_skip()
    plain, plain_report = source.load_splits_and_report("teleqna", data)
    rich, rich_report = source.load_splits_and_report("teleqna", data, fields=["explanation"])
    assert "explanation" not in plain["test"][0]
    assert rich_report.sha256 == plain_report.sha256
    assert [r["id"] for r in rich["test"]] == [r["id"] for r in plain["test"]]
    explained = [r for r in rich["test"] if r["explanation"]]
    assert len(explained) > 0.9 * len(rich["test"])
    with pytest.raises(SlmbenchError, match="'rationale' is not an optional field"):
        source.load_splits("teleqna", data, fields=["rationale"])


def test_teleqna_freeform_end_to_end_on_the_embedded_model(tmp_path):
    """Every metric lands in lm-eval's results, and the run store headlines token F1."""
    import json
    import subprocess
    import sys

    from conftest import shared_data_or_skip

    data = shared_data_or_skip()
    store = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "lm-eval", "--tasks",
                           "teleqna_freeform", "--limit", "3", "--store", str(store),
                           "--metadata", json.dumps({"data_dir": str(data)})],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [folder] = list((store / "eval").glob("[0-9a-f]*"))
    results = json.loads((folder / "results.json").read_text())["results"]["teleqna_freeform"]
    for metric in (*freeform.PER_ANSWER, *freeform.PER_CORPUS):
        assert f"{metric},none" in results, metric
    run = json.loads((folder / "run.json").read_text())["tasks"]["teleqna_freeform"]
    assert run["metric"] == "token_f1,none" and run["n"] == 3
    rows = [json.loads(line) for line in (folder / run["samples"]).read_text().splitlines()]
    assert all(". " in row["target"] for row in rows)  # option text, then the explanation
