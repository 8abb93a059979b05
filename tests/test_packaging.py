"""A built wheel, installed outside the checkout, finds every task YAML and resource.

Also the quiet-install promise: building the package prints no setuptools warning (package
discovery and package data are configured, not guessed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _source_copy(dest: Path) -> Path:
    """The package sources alone, so the build leaves nothing in the checkout."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "harness", dest / "harness",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def test_wheel_outside_the_checkout_finds_tasks_and_resources(tmp_path):
    src = _source_copy(tmp_path / "src")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    noise = [line for line in (build.stdout + build.stderr).splitlines()
             if "Warning" in line or "would be ignored" in line or "deprecated" in line]
    assert not noise, noise[:5]
    [wheel] = list((tmp_path / "dist").glob("slmbench-*.whl"))
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                              "--target", str(target), str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]

    shipped = {p.relative_to(REPO / "harness" / "tasks").as_posix()
               for p in (REPO / "harness" / "tasks").rglob("*") if p.is_file()
               and "__pycache__" not in p.parts}
    probe = """
import harness, json
from pathlib import Path
from harness.paths import tasks_dir
from harness.runs.store import git_state
from lm_eval.tasks import TaskManager
from harness.data.synth.benchmarks import generated_records
root = tasks_dir()
manager = TaskManager(include_path=str(root))
print(json.dumps({
    "package": harness.__file__,
    "tasks": sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()),
    "known": sorted(t for t in manager.all_tasks if t.startswith(("telecom", "teleqna"))),
    "intents": len(generated_records("ecommerce_intent")[1]),
    "git": git_state(),
}))
"""
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["package"].startswith(str(target))
    assert set(found["tasks"]) == shipped
    assert {"telecom_all", "telecom_all_maj4", "teleqna", "teleqna_seen"} <= set(found["known"])
    assert found["intents"] > 0
    # A wheel has no commit; git must not report the repository around the virtualenv.
    assert found["git"] == {"sha": None, "dirty": None}
