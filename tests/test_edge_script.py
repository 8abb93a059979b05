"""``scripts/edge.sh``'s plumbing: which commands it runs, on which tasks, with which labels.

The real runs take an hour on 2 cores; what breaks cheaply is the script's choice of tasks
(circular only where a ``<task>_circular.yaml`` exists, none with ``CIRCULAR_LIMIT=0``), the
pairing of each llama.cpp run with its GGUF and label, and the bench's formats. A fake
interpreter records each ``harness.cli`` call instead of running it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
ALL_TASKS = "teleqna,oranbench,sixg_bench,srsranbench,teletables,telemath,three_gpp_tsg"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _edge_calls(tmp_path: Path, **env: str) -> list[list[str]]:
    """The ``harness.cli`` argument lists edge.sh would run, in order."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    # `gguf` prints one path per quantization, as the real command does
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'shift 2; printf "%s\\x1f" "$@" >> {calls}; echo >> {calls}\n'
        'if [ "$1" = gguf ]; then for q in ${QUANTS:-f16 q8_0 q4_k_m}; do '
        'echo "/gguf/model-$q.gguf"; done; fi\n')
    fake.chmod(0o755)
    base = {k: v for k, v in os.environ.items()
            if k not in {"TASKS", "LIMIT", "CIRCULAR_LIMIT", "QUANTS", "BENCH", "FORCE",
                         "LLAMA_PATCHES", "LLAMA_ARGS", "ZOO", "ZOO_LABEL", "MODEL",
                         "THREADS", "EVAL", "ALT_ROUNDS", "INTERLEAVED_PAIRS"}}
    base.update(PY=str(fake), STORE=str(tmp_path / "runs"), OUT=str(tmp_path / "page"),
                THREADS="2")
    done = subprocess.run(["bash", str(ROOT / "scripts" / "edge.sh")], env={**base, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return [line.rstrip("\x1f").split("\x1f") for line in calls.read_text().splitlines()]


def _arg(call: list[str], flag: str) -> str:
    return call[call.index(flag) + 1]


def test_every_category_then_the_circular_ones_then_the_bench_and_the_page(tmp_path):
    calls = _edge_calls(tmp_path)
    assert calls[0][:2] == ["gguf", "--model"] and _arg(calls[0], "--type") == "f16,q8_0,q4_k_m"
    evals = [c for c in calls if c[0] == "lm-eval"]
    assert len(evals) == 8  # hf-peft and three GGUFs, twice
    circular = sorted(p.parent.name for p in (ROOT / "harness" / "tasks").glob(
        "*/*_circular.yaml") if p.parent.name in ALL_TASKS.split(","))
    assert "telemath" not in circular and len(circular) == 6
    for run, tasks in ((evals[:4], ALL_TASKS),
                       (evals[4:], ",".join(f"{t}_circular" for t in ALL_TASKS.split(",")
                                            if t in circular))):
        assert [_arg(c, "--tasks") for c in run] == [tasks] * 4
        assert [_arg(c, "--model") for c in run] == ["hf-peft"] + ["llama-cpp-peft"] * 3
        assert [_arg(c, "--label") for c in run] == [
            "embedded+zoo:hf-peft", "embedded-f16+zoo:llama.cpp",
            "embedded-q8_0+zoo:llama.cpp", "embedded-q4_k_m+zoo:llama.cpp"]
        for quant, call in zip(("f16", "q8_0", "q4_k_m"), run[1:], strict=True):
            assert _arg(call, "--model_args").startswith(
                f"pretrained=/gguf/model-{quant}.gguf,adapters=adapters_zoo/embedded.yaml,"
                "n_threads=2,flash_attn=true")
        assert all(_arg(c, "--limit") == "150" and "--fresh" not in c for c in run)
    bench = next(c for c in calls if c[0] == "bench")
    assert _arg(bench, "--formats") == (
        "gguf-f16,gguf-f16+lora,gguf-q8_0,gguf-q8_0+lora,gguf-q4_k_m,gguf-q4_k_m+lora")
    assert _arg(bench, "--alternating-rounds") == "8"
    assert _arg(bench, "--interleaved-pairs") == "40"
    assert calls[-1][0] == "leaderboard" and _arg(calls[-1], "--out") == str(tmp_path / "page")


def test_circular_limit_zero_and_a_task_without_circular_scoring_run_no_circular_pass(tmp_path):
    for name, env in (("zero", {"CIRCULAR_LIMIT": "0"}), ("telemath", {"TASKS": "telemath"})):
        calls = _edge_calls(tmp_path / name, BENCH="0", QUANTS="q8_0", FORCE="1", **env)
        evals = [c for c in calls if c[0] == "lm-eval"]
        assert len(evals) == 2 and not any("_circular" in _arg(c, "--tasks") for c in evals)
        assert all("--fresh" in c for c in evals)
        assert not any(c[0] == "bench" for c in calls)


def test_alt_rounds_and_interleaved_pairs_reach_the_bench(tmp_path):
    calls = _edge_calls(tmp_path, QUANTS="q8_0", CIRCULAR_LIMIT="0", ALT_ROUNDS="40",
                        INTERLEAVED_PAIRS="200")
    bench = next(c for c in calls if c[0] == "bench")
    assert _arg(bench, "--alternating-rounds") == "40"
    assert _arg(bench, "--interleaved-pairs") == "200"


def test_a_circular_limit_of_its_own(tmp_path):
    calls = _edge_calls(tmp_path, TASKS="teleqna,telemath", LIMIT="20", CIRCULAR_LIMIT="40",
                        BENCH="0", QUANTS="q4_k_m")
    evals = [c for c in calls if c[0] == "lm-eval"]
    assert [(_arg(c, "--tasks"), _arg(c, "--limit")) for c in evals] == [
        ("teleqna,telemath", "20")] * 2 + [("teleqna_circular", "40")] * 2


def test_another_zoo_runs_under_a_label_of_its_own(tmp_path):
    calls = _edge_calls(tmp_path, ZOO="runs/zoo_r4/embedded_r4.yaml", ZOO_LABEL="zoo-r4",
                        BENCH="0", CIRCULAR_LIMIT="0", QUANTS="q8_0")
    evals = [c for c in calls if c[0] == "lm-eval"]
    assert [_arg(c, "--label") for c in evals] == [
        "embedded+zoo-r4:hf-peft", "embedded-q8_0+zoo-r4:llama.cpp"]
    assert "adapters=runs/zoo_r4/embedded_r4.yaml" in _arg(evals[0], "--model_args")
    assert "adapters=runs/zoo_r4/embedded_r4.yaml," in _arg(evals[1], "--model_args")


def _zoo_ranks_calls(tmp_path: Path, cut_exists: bool,
                     partial_cut: bool = False) -> tuple[list[list[str]], str]:
    """The ``harness.cli`` calls of edge_zoo_ranks.sh, with a fake lm-eval that leaves a
    run.json labelled as asked, so the gate's pairing of runs by label is exercised."""
    import sys

    tmp_path.mkdir(parents=True)
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'if [ "$1" = -c ]; then exec {sys.executable} "$@"; fi\n'
        f'shift 2; printf "%s\\x1f" "$@" >> {calls}; echo >> {calls}\n'
        'if [ "$1" = gguf ]; then for q in ${QUANTS:-f16 q8_0 q4_k_m}; do '
        'echo "/gguf/model-$q.gguf"; done; fi\n'
        'if [ "$1" = lm-eval ]; then label=; store=; prev=; for a in "$@"; do '
        '[ "$prev" = --label ] && label=$a; [ "$prev" = --store ] && store=$a; prev=$a; done; '
        'd="$store/eval/$(echo "$label" | md5sum | cut -c1-8)"; mkdir -p "$d"; '
        'printf \'{"label": "%s"}\' "$label" > "$d/run.json"; fi\n'
        'if [ "$1" = regress ]; then case "$*" in *q4_k_m*) exit 1;; esac; fi\n')
    fake.chmod(0o755)
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text((ROOT / "adapters_zoo" / "embedded.yaml").read_text())
    cut = tmp_path / "zoo_r4.yaml"
    if cut_exists:  # the same adapters' entries (the fake cut reads none of their weights)
        cut.write_text(zoo.read_text())
    if partial_cut:  # what an interrupted cut leaves: the manifest with its first entry only
        entries = zoo.read_text().split("\n- name: ")
        cut.write_text(entries[0] + "\n- name: " + entries[1] + "\n")
    env = {k: v for k, v in os.environ.items()
           if k not in {"TASKS", "LIMIT", "CIRCULAR_LIMIT", "QUANTS", "BENCH", "FORCE",
                        "LLAMA_PATCHES", "LLAMA_ARGS", "ZOO", "ZOO_LABEL", "MODEL", "RANK",
                        "CUT", "ROOT", "STORE", "OUT", "THREADS"}}
    env.update(PY=str(fake), ZOO=str(zoo), ROOT=str(tmp_path / "ranks"), THREADS="2",
               BENCH="0", QUANTS="q8_0 q4_k_m", PYTHONPATH=str(ROOT))
    done = subprocess.run(["bash", str(ROOT / "scripts" / "edge_zoo_ranks.sh")], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return [line.rstrip("\x1f").split("\x1f") for line in calls.read_text().splitlines()], \
        done.stdout


def test_zoo_ranks_cuts_once_runs_both_zoos_apart_and_gates_each_engine(tmp_path):
    calls, printed = _zoo_ranks_calls(tmp_path / "fresh", cut_exists=False)
    cut = str(tmp_path / "fresh" / "zoo_r4.yaml")
    assert calls[0] == ["reduce-rank", "--zoo", str(tmp_path / "fresh" / "zoo.yaml"),
                        "--rank", "4", "--out", cut]
    evals = [c for c in calls if c[0] == "lm-eval"]
    assert [_arg(c, "--label") for c in evals] == [
        "embedded+zoo-r16:hf-peft", "embedded-q8_0+zoo-r16:llama.cpp",
        "embedded-q4_k_m+zoo-r16:llama.cpp", "embedded+zoo-r4:hf-peft",
        "embedded-q8_0+zoo-r4:llama.cpp", "embedded-q4_k_m+zoo-r4:llama.cpp"]
    assert all(f"adapters={cut}" in _arg(c, "--model_args") for c in evals[3:])
    assert {_arg(c, "--tasks") for c in evals} == {
        "teleqna,oranbench,sixg_bench,srsranbench,teletables,three_gpp_tsg"}
    ranks = tmp_path / "fresh" / "ranks"
    gates = [c for c in calls if c[0] == "regress"]
    assert len(gates) == 3
    for gate in gates:  # each pairs one engine's rank-16 run with the same engine's rank-4 run
        base = json.loads((Path(_arg(gate, "--baseline")) / "run.json").read_text())["label"]
        cand = json.loads((Path(_arg(gate, "--candidate")) / "run.json").read_text())["label"]
        assert cand == base.replace("+zoo-r16:", "+zoo-r4:")
        assert Path(_arg(gate, "--baseline")).parent == ranks / "r16" / "eval"
        assert Path(_arg(gate, "--summary")).parent == ranks / "gate"
    assert "embedded-q4_k_m-llama.cpp: exit 1 (0 held, 1 regressed)" in printed
    assert "embedded-hf-peft: exit 0" in printed
    calls, _ = _zoo_ranks_calls(tmp_path / "kept", cut_exists=True)
    assert not any(c[0] == "reduce-rank" for c in calls)
    calls, _ = _zoo_ranks_calls(tmp_path / "partial", cut_exists=False, partial_cut=True)
    assert calls[0][0] == "reduce-rank"  # an interrupted cut is cut again


def test_eval_0_benches_and_renders_a_store_without_evaluating_it(tmp_path):
    calls = _edge_calls(tmp_path, EVAL="0", INTERLEAVED_PAIRS="400")
    assert [c[0] for c in calls] == ["gguf", "bench", "leaderboard"]
    assert _arg(calls[1], "--interleaved-pairs") == "400"
    assert _arg(calls[2], "--runs") == str(tmp_path / "runs")


@pytest.mark.parametrize("switch", ["EVAL", "BENCH"])
def test_a_switch_that_is_neither_0_nor_1_is_refused_in_one_line(tmp_path, switch):
    env = {k: v for k, v in os.environ.items() if k not in {"EVAL", "BENCH"}}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "edge.sh")],
                          env={**env, "PY": "/nonexistent/python", switch: "yes",
                               "STORE": str(tmp_path / "runs"), "OUT": str(tmp_path / "page")},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == f"edge.sh: {switch} must be 0 or 1, not 'yes'\n"
