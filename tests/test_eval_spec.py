"""One evaluation path: a spec built in code and the same command line are the same run.

Training, sweeps and bench build an ``EvalSpec`` directly; ``slmbench lm-eval`` builds one from
lm-eval's parsed arguments. Both must land on the same run id, so a user's command finds the
run training already made (and the reverse).
"""

from __future__ import annotations

import sys

import pytest

from harness.evaluation.identity import id_of, identity
from harness.evaluation.run import with_defaults
from harness.evaluation.spec import EvalSpec


def _parsed(argv: list[str]) -> EvalSpec:
    from lm_eval._cli import HarnessCLI

    saved = sys.argv
    sys.argv = ["slmbench lm-eval", "run", *argv]
    try:
        args = HarnessCLI().parse_args()
    finally:
        sys.argv = saved
    return EvalSpec.from_namespace(args)


def _run_id(spec: EvalSpec) -> str:
    return id_of(identity(with_defaults(spec)))


def test_a_spec_built_in_code_is_the_command_lines_run(tmp_path, data_dir):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    made = EvalSpec(model="hf", model_args={"pretrained": "embedded", "peft": str(adapter)},
                    tasks=("teletables", "oranbench"), limit=4, batch_size="8",
                    metadata={"data_dir": str(data_dir)}, output_path=str(tmp_path / "o"))
    typed = _parsed(["--model", "hf", "--model_args", f"pretrained=embedded,peft={adapter}",
                     "--tasks", "teletables,oranbench", "--limit", "4", "--batch_size", "8",
                     "--metadata", f"data_dir={data_dir}", "--output_path", str(tmp_path)])
    assert _run_id(made) == _run_id(typed)
    assert _run_id(made.with_(limit=5)) != _run_id(typed)


def test_typed_model_arguments_match_what_lm_evals_parser_makes(tmp_path):
    """bench passes gptqmodel=True as a bool; the parser turns the text "True" into one."""
    made = EvalSpec(model="hf", model_args={"pretrained": str(tmp_path), "gptqmodel": True},
                    tasks=("teletables",), device="cpu", apply_chat_template=True)
    typed = _parsed(["--model", "hf", "--model_args", f"pretrained={tmp_path},gptqmodel=True",
                     "--tasks", "teletables", "--device", "cpu", "--apply_chat_template"])
    assert typed.model_args["gptqmodel"] is True
    assert _run_id(made) == _run_id(typed)


def test_embedded_model_gets_its_chat_template_unless_told_otherwise():
    spec = with_defaults(EvalSpec(tasks=("teleqna",)))
    assert spec.model == "slm-hf" and spec.apply_chat_template is True
    assert with_defaults(EvalSpec(tasks=("teleqna",), no_chat_template=True)
                         ).apply_chat_template is None
    assert spec.include_path[0].endswith("tasks") and spec.device


def _named_gguf(path, name):
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


def test_a_gguf_exported_from_the_embedded_model_gets_its_chat_template(tmp_path):
    """`slmbench gguf --model embedded` names its files after the checkpoint; evaluating one
    must not silently drop the template (95% unparsed, as the issue found)."""
    exported = _named_gguf(tmp_path / "model-f16.gguf", "SmolLM2-135M-Instruct-Q4_1-v1")
    foreign = _named_gguf(tmp_path / "other.gguf", "Qwen3-0.6B")
    chat = [with_defaults(EvalSpec(model="llama-cpp", model_args={"pretrained": p},
                                   tasks=("teleqna",))).apply_chat_template
            for p in (exported, foreign)]
    assert chat == [True, None]
    assert with_defaults(EvalSpec(model="llama-cpp", model_args={"pretrained": exported},
                                  tasks=("teleqna",), no_chat_template=True)
                         ).apply_chat_template is None


def test_lm_evals_own_defaults_apply_to_what_is_not_given():
    from lm_eval.config.evaluate_config import EvaluatorConfig

    spec = EvalSpec(model="hf", tasks=("teleqna",), output_path="/tmp/x",
                    options={"log_samples": True, "write_out": True})
    cfg = EvaluatorConfig.from_cli(spec.lm_eval_namespace())
    assert cfg.batch_size == EvaluatorConfig().batch_size and cfg.seed == EvaluatorConfig().seed
    assert cfg.write_out is True and cfg.log_samples is True and cfg.apply_chat_template is False


def test_bad_metadata_and_no_tasks_are_one_line_errors():
    import argparse

    from harness.errors import SlmbenchError
    from harness.evaluation.run import run_eval

    with pytest.raises(SlmbenchError, match="--metadata must be key=value pairs"):
        EvalSpec.from_namespace(argparse.Namespace(tasks=["teleqna"], metadata="oops"))
    with pytest.raises(SlmbenchError, match="--tasks is required"):
        run_eval(EvalSpec())


def test_registering_twice_adds_the_log_filter_once():
    import logging

    from harness.evaluation.run import register_components

    register_components()
    register_components()
    names = [type(f).__name__ for f in logging.getLogger("lm_eval.api.task").filters]
    assert names.count("_QuietCustomDatasetHint") == 1
