"""LoRA training on a tiny backbone and a learnable fixture task (seconds per run on CPU)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import assert_stopped_at_last_good, build_tiny_base, run_until_killed

from harness.errors import SlmbenchError
from harness.train.config import TrainConfig
from harness.train.data import build_examples
from harness.train.lora import BEST, CHECKPOINT, RECORD, TRAIN_OPTIONS, LoraTrainer

LETTERS = "ABCD"


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """A tiny base and a 'teletables' task whose answer is written in the question."""
    root = tmp_path_factory.mktemp("train")
    base_dir, _ = build_tiny_base(root / "base", hidden_size=64, init_range=0.3)
    data = root / "data" / "teletables"
    data.mkdir(parents=True)
    with (data / "teletables.jsonl").open("w") as fh:
        for i in range(240):
            answer = i % 4
            fh.write(json.dumps({"question": f"Row {i}: the table says {LETTERS[answer]}.",
                                 "choices": ["low", "mid", "high", "max"],
                                 "answer": answer}) + "\n")
    return base_dir, root / "data"


def _config(tiny_setup, out, **overrides) -> TrainConfig:
    base_dir, data_dir = tiny_setup
    values = dict(benchmarks=["teletables"], output_dir=str(out), base_model=str(base_dir),
                  data_dir=str(data_dir), rank=4, alpha=8, lr=5e-3, max_steps=12, batch_size=8,
                  eval_every=4, max_val_examples=32, patience=10, loss="answer",
                  chat_template=False)
    values.update(overrides)
    return TrainConfig(**values)


def test_training_drives_validation_loss_down(tiny_setup, tmp_path):
    cfg = _config(tiny_setup, tmp_path / "run", max_steps=None, epochs=2, lr=1e-2)
    record = LoraTrainer(cfg).run()
    curve = record["train"]["val_curve"]
    assert curve[0]["step"] == 0
    assert record["train"]["best_val_loss"] < 0.5 * curve[0]["val_loss"]
    assert (tmp_path / "run" / BEST / "adapter_model.safetensors").is_file()
    saved = json.loads((tmp_path / "run" / RECORD).read_text())
    assert saved["train"]["tokens_per_s"] > 0 and saved["data"]["n_train"] == 144
    assert saved["train"]["energy"]["joules"] is None or saved["train"]["energy"]["source"]


def test_kill_and_resume_matches_an_uninterrupted_run(tiny_setup, tmp_path):
    # 40 examples: 5 steps an epoch, so the resumed run crosses two epochs of new option orders.
    def config(name):
        return _config(tiny_setup, tmp_path / name, max_train_examples=40, epochs=3)

    LoraTrainer(config("straight")).run()
    run_until_killed(LoraTrainer(config("killed")), at_step=6)
    state = torch.load(tmp_path / "killed" / CHECKPOINT / "trainer_state.pt", weights_only=True)
    assert json.loads(state["state_json"])["step"] == 4  # lost only the last interval
    LoraTrainer(config("killed")).run()

    a = load_file(tmp_path / "straight" / CHECKPOINT / "adapter_model.safetensors")
    b = load_file(tmp_path / "killed" / CHECKPOINT / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    curve = json.loads((tmp_path / "killed" / RECORD).read_text())["train"]["loss_curve"]
    assert [p["step"] for p in curve] == list(range(1, 13))


def test_each_epoch_trains_on_a_new_option_order(tiny_setup):
    from transformers import AutoTokenizer

    from harness.train.data import ExampleSet, load_sources

    cfg = _config(tiny_setup, "unused", max_train_examples=40)
    train = ExampleSet(cfg, AutoTokenizer.from_pretrained(cfg.base_model),
                       load_sources(cfg, "train", None))
    trainer = LoraTrainer(cfg)
    epochs = []
    for epoch in range(3):
        batches = [trainer._batch_at(step, train, 5) for step in range(5 * epoch, 5 * epoch + 5)]
        assert all(any(e is x for x in train.epoch(epoch)) for b in batches for e in b)
        epochs.append({e.prompt.split("\n")[2]: (e.prompt, e.completion)
                       for b in batches for e in b})
    assert epochs[0].keys() == epochs[1].keys() == epochs[2].keys()  # every question once
    moved = sum(epochs[0][q][0] != epochs[1][q][0] for q in epochs[0])
    assert moved > 30  # of 40; a 4-option order repeats with p = 1/24
    letters = [e.completion for e in train.epoch(0)] + [e.completion for e in train.epoch(1)]
    assert set(letters) == set(LETTERS)
    assert [e.prompt for e in train.epoch(1)] == [e.prompt for e in train.epoch(1)]
    assert train.base != train.epoch(1)


def test_option_shuffling_is_recorded_in_the_record_the_adapter_and_the_zoo(tiny_setup,
                                                                            tmp_path):
    from harness.artefacts.zoo_manifest import load_manifest
    from harness.train.workflow import train_and_publish

    zoo = tmp_path / "zoo.yaml"
    for permute in (True, False):
        out = tmp_path / f"run_{permute}"
        cfg = _config(tiny_setup, out, max_steps=2, eval_every=2, max_train_examples=40,
                      permute_options=permute)
        record = train_and_publish(cfg, f"tt_{permute}", zoo=zoo)
        options = record["data"]["option_permutation"]
        assert record["run"]["config"]["permute_options"] is options["permute_options"] is permute
        assert options["train_examples"] == {"permuted" if permute else "none": 40}
        assert options["benchmarks"] == (["teletables"] if permute else [])
        assert json.loads((out / RECORD).read_text())["data"]["option_permutation"] == options
        assert json.loads((out / BEST / TRAIN_OPTIONS).read_text()) == options
        assert json.loads((zoo.parent / "zoo" / f"tt_{permute}" / TRAIN_OPTIONS).read_text()) \
            == options
    entries = {e.name: e for e in load_manifest(zoo).adapters}
    assert entries["tt_True"].permute_options is True
    assert entries["tt_False"].permute_options is False


def test_resume_refuses_a_changed_config(tiny_setup, tmp_path):
    LoraTrainer(_config(tiny_setup, tmp_path / "run", max_steps=4)).run()
    with pytest.raises(SlmbenchError, match="different configuration"):
        LoraTrainer(_config(tiny_setup, tmp_path / "run", max_steps=4, rank=8)).run()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_setup, tmp_path):
    class Poisoned(LoraTrainer):
        def _forward(self, model, batch, step):
            loss = super()._forward(model, batch, step)
            return loss * float("nan") if step >= 5 else loss

    assert_stopped_at_last_good(Poisoned(_config(tiny_setup, tmp_path / "run")),
                                tmp_path / "run", bad_step=6, good_step=4)


def test_answer_only_masking_hides_the_prompt(tiny_setup):
    from transformers import AutoTokenizer

    cfg = _config(tiny_setup, "unused")
    tokenizer = AutoTokenizer.from_pretrained(cfg.base_model)
    answer, _ = build_examples(cfg, tokenizer, "train", 8)
    full, _ = build_examples(_config(tiny_setup, "unused", loss="full"), tokenizer, "train", 8)
    for a, f in zip(answer, full, strict=True):
        assert a.input_ids == f.input_ids
        assert all(t == -100 for t in a.labels[:a.answer_start])
        assert a.labels[a.answer_start:] == f.labels[f.answer_start:] != []
        assert f.labels == f.input_ids
        assert tokenizer.decode(a.input_ids[a.answer_start:]).strip()[0] in LETTERS


@pytest.mark.parametrize(("overrides", "message"), [
    ({"rank": 0}, "--rank must be > 0"),
    ({"loss": "tokens"}, "--loss must be full or answer"),
    ({"benchmarks": ["nope"]}, "unknown benchmark 'nope'"),
])
def test_bad_config_is_refused(tiny_setup, overrides, message):
    with pytest.raises(SlmbenchError, match=message):
        _config(tiny_setup, "unused", **overrides)


def test_unknown_target_module_is_named(tiny_setup, tmp_path):
    with pytest.raises(SlmbenchError, match="target module 'qkv_proj' does not exist"):
        LoraTrainer(_config(tiny_setup, tmp_path, target_modules=["q_proj", "qkv_proj"])).run()


def test_tiny_train_split_is_refused(tiny_setup, tmp_path):
    base_dir, _ = tiny_setup
    data = tmp_path / "data" / "teletables"
    data.mkdir(parents=True)
    rows = [{"question": f"q{i}", "choices": ["a", "b"], "answer": 0} for i in range(6)]
    (data / "teletables.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(SlmbenchError, match="train split has 3 examples"):
        LoraTrainer(_config(tiny_setup, tmp_path / "run", data_dir=str(tmp_path / "data"))).run()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_qlora_without_cuda_says_why(tiny_setup, tmp_path):
    with pytest.raises(SlmbenchError, match="--qlora needs a CUDA GPU"):
        LoraTrainer(_config(tiny_setup, tmp_path, qlora=True)).run()


def test_a_benchmark_without_a_freeform_variant_and_a_missing_sft_adapter_are_one_line_errors(
        tiny_setup, tmp_path):
    from transformers import AutoTokenizer

    from harness.train.student import fold_student_adapter

    base_dir, data = tiny_setup
    cfg = TrainConfig(benchmarks=["teletables"], data_dir=str(data), answer_format="freeform")
    with pytest.raises(SlmbenchError, match=r"^train: teletables has no freeform variant "
                                            r"\(no lm-eval task 'teletables_freeform'\)"):
        build_examples(cfg, AutoTokenizer.from_pretrained(base_dir), "train", None)
    with pytest.raises(SlmbenchError, match=r"^train: --answer-format must be choice or freeform"):
        TrainConfig(benchmarks=["teletables"], answer_format="essay")
    with pytest.raises(SlmbenchError, match=r"--student-adapter .*nowhere has no "
                                            r"adapter_model.safetensors"):
        fold_student_adapter(base_dir, tmp_path / "nowhere")


def test_a_saved_adapter_is_byte_identical_whatever_the_hash_seed(tiny_setup, tmp_path):
    """peft saves target_modules from a set; unsorted, one adapter hashed two ways."""
    import os
    import subprocess
    import sys

    base_dir, _ = tiny_setup
    script = ("import sys; from pathlib import Path; from peft import LoraConfig, "
              "get_peft_model; from transformers import LlamaForCausalLM; "
              "from harness.train.lora import _save_adapter; import torch; "
              "torch.manual_seed(0); m = LlamaForCausalLM.from_pretrained(sys.argv[1]); "
              "c = LoraConfig(r=4, target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', "
              "'gate_proj', 'up_proj', 'down_proj'], task_type='CAUSAL_LM'); "
              "_save_adapter(get_peft_model(m, c), Path(sys.argv[2]))")
    texts = set()
    for seed in ("1", "2", "3"):
        out = tmp_path / f"seed{seed}"
        subprocess.run([sys.executable, "-c", script, str(base_dir), str(out)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        texts.add((out / "adapter_config.json").read_text())
    assert len(texts) == 1
