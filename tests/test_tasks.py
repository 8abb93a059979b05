"""Every shipped YAML loads; every task builds on data and renders its prompt."""

from __future__ import annotations

import pytest

from harness.paths import tasks_dir
from harness.validate import check_yaml, validate_tasks

SIX = ["teleqna", "sixg_bench", "three_gpp_tsg", "oranbench", "srsranbench", "teletables"]


def test_every_yaml_loads_and_validates():
    assert validate_tasks() == 0


def test_every_task_builds_on_data_and_renders(data_dir):
    assert validate_tasks(data_dir=str(data_dir)) == 0


def test_validation_catches_a_broken_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: bad\ncustom_dataset: !function harness.data.source.no_such_loader\n")
    assert "no_such_loader" in check_yaml(bad, set())
    group = tmp_path / "g.yaml"
    group.write_text("group: g\ntask: [teleqna, not_a_task]\n")
    assert "not_a_task" in check_yaml(group, {"teleqna"})


@pytest.fixture(scope="module")
def manager():
    from lm_eval.tasks import TaskManager

    import harness.scoring.filters  # noqa: F401

    return TaskManager(include_path=str(tasks_dir()))


def test_groups_hold_the_documented_tasks(manager):
    from lm_eval.tasks._yaml_loader import load_yaml

    def members(group):
        return load_yaml(manager.task_index[group].yaml_path, resolve_func=False)["task"]

    assert members("telecom_all") == SIX
    assert members("telecom_all_maj4") == [f"{t}_maj4" for t in SIX]
    assert members("telecom_all_seen") == [f"{t}_seen" for t in SIX]
    assert members("telecom_full") == [*SIX, "telemath", "telelogs"]
    for variant in ("circular", "circular_maj4", "cloze"):
        assert members(f"telecom_all_{variant}") == [f"{t}_{variant}" for t in SIX]


def test_variants_differ_only_where_they_should(manager):
    from lm_eval.tasks._yaml_loader import load_yaml

    def cfg(name):
        return load_yaml(manager.task_index[name].yaml_path, resolve_func=False)

    pass1, maj4, seen = cfg("teleqna"), cfg("teleqna_maj4"), cfg("teleqna_seen")
    assert pass1["generation_kwargs"]["do_sample"] is False
    assert pass1["test_split"] == "test" and seen["test_split"] == "train"
    assert maj4["repeats"] == 4 and maj4["generation_kwargs"]["do_sample"] is True
    assert maj4["generation_kwargs"]["temperature"] > 0
    assert [f["function"] for f in maj4["filter_list"][0]["filter"]] == [
        "slm_extract", "slm_majority_vote", "take_first"]
    assert cfg("teleqna_mc")["output_type"] == "multiple_choice"
    circular, circular_maj4 = cfg("teleqna_circular"), cfg("teleqna_circular_maj4")
    assert circular["generation_kwargs"] == pass1["generation_kwargs"]
    assert circular["filter_list"] == pass1["filter_list"]
    assert circular_maj4["filter_list"] == maj4["filter_list"]
    assert circular_maj4["repeats"] == 4
    for c in (circular, circular_maj4):
        assert [m["metric"] for m in c["metric_list"]] == [
            "circular_strict", "circular_mean", "unparsed"]
        assert c["process_docs"].endswith("circular.mcq_rotation_docs")
        assert c["process_results"].endswith("circular.process_results_mcq")
    for seen in ("circular", "circular_maj4", "cloze"):
        assert cfg(f"teleqna_{seen}_seen")["test_split"] == "train"
    cloze = cfg("teleqna_cloze")
    assert cloze["output_type"] == "multiple_choice"
    assert cloze["doc_to_text"].endswith("prompts.cloze_prompt")
