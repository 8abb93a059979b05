"""Routed LoRA decode on llama.cpp against the plain GGUF, at the sub-2B sizes users ship.

Why this exists: on the 135M embedded model, decoding with a zoo adapter switched on runs at
0.63-0.78x the plain GGUF (leaderboards/edge), under issue 24's 0.95x target. llama.cpp adds
two small matmuls per adapted matrix (B·(A·x)); whether a wider backbone hides them, so that
the target holds for a 360M or 1.7B model, is a measurement, not an argument: this script
makes it. (Measured: it does not; the adapter's cost grows with width too.)

Decode speed does not depend on weight values, and no 360M/1.7B checkpoint can be downloaded
here, so each backbone is SmolLM2's published shape (layers, widths, heads) with random
weights and the embedded model's tokenizer, and each of its N adapters is a random rank-16
LoRA on all seven projections, as the zoo's are. ``slmbench bench`` then times the plain
GGUF and the GGUF with all N adapters loaded (one switched on) at each quantization, in the
edge page's bench store, so ``slmbench leaderboard`` shows each size beside the real 135M.

    nice python scripts/routed_decode_scaling.py                 # 360M and 1.7B, f16 + q4_k_m
    SHAPES=smollm2-360m QUANTS=q4_k_m python scripts/routed_decode_scaling.py
    MODULES="q_proj v_proj" SHAPES="smollm2-135m smollm2-1.7b" QUANTS=f16 \
        python scripts/routed_decode_scaling.py                  # adapters on q and v only
    LLAMA_PATCHES=1 STORE=leaderboards/edge/zen3/bench QUANTS="f16 q8_0 q4_k_m" \
        python scripts/routed_decode_scaling.py                  # patched llama.cpp, a CPU's store

LLAMA_PATCHES=1 builds slmbench's patched llama.cpp (scripts/build_llama_cpp_lora_patches.sh)
and switches every patch on, as ``scripts/edge.sh`` does; STORE picks the bench store (each CPU
has its own under leaderboards/edge).

The adapter's cost per token follows the output rows of the matrices it adapts, so the one
lever on it is adapting fewer of them: MODULES picks them (default all seven), and each
choice gets its own zoo and bench run beside the others.

Resumable: built backbones and adapters are reused, a finished bench of a size and zoo on
the same llama.cpp (library and patches) is not repeated (REMEASURE=1 times it again, e.g.
once the bench records something new), and an interrupted one resumes its missing rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path("runs/routed_decode_scaling")  # relative to ROOT, as the records name them
STORE = Path("leaderboards/edge/runs/bench")
ALL_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RANK, ALPHA, N_ADAPTERS = 16, 32, 8
# SmolLM2's published configurations (the embedded model is the 135M one).
SHAPES = {
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3),
    "smollm2-360m": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                         num_attention_heads=15, num_key_value_heads=5),
    "smollm2-1.7b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                         num_attention_heads=32, num_key_value_heads=32),
}


def build_backbone(folder: Path, shape: dict) -> None:
    """A random-weight fp16 Llama of ``shape`` with the embedded tokenizer, written atomically."""
    import shutil

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from harness.artefacts.embedded import ensure_checkpoint

    if (folder / "config.json").is_file():
        return
    tokenizer = AutoTokenizer.from_pretrained(ensure_checkpoint())
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=8192,
                         rope_theta=100000.0, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, **shape)
    torch.manual_seed(0)
    model = LlamaForCausalLM._from_config(config, torch_dtype=torch.float16)
    staged = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staged, ignore_errors=True)
    model.save_pretrained(staged)
    tokenizer.save_pretrained(staged)
    staged.rename(folder)


def zoo_manifest_path(name: str, modules: list[str]) -> Path:
    """All seven projections keep the first measurement's name; a subset names its modules."""
    if modules == ALL_MODULES:
        return WORK / f"{name}-zoo.yaml"
    return WORK / f"{name}-{'-'.join(m.removesuffix('_proj') for m in modules)}-zoo.yaml"


def build_zoo(backbone: Path, manifest: Path, modules: list[str] = ALL_MODULES) -> None:
    """N random rank-16 LoRA adapters on ``modules``, recorded in a zoo manifest."""
    import shutil

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, LlamaForCausalLM

    from harness.artefacts.zoo_manifest import (
        AdapterEntry,
        base_fingerprint,
        describe_weights,
        load_manifest,
        upsert_entry,
    )
    from harness.runs.atomic import replace_dir_atomic

    done = {e.name for e in load_manifest(manifest).adapters} if manifest.is_file() else set()
    names = [f"adapter{i}" for i in range(N_ADAPTERS)]
    if all(name in done for name in names):
        return
    model = get_peft_model(
        LlamaForCausalLM.from_pretrained(backbone, torch_dtype=torch.float16),
        LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=modules,
                   init_lora_weights=False, task_type="CAUSAL_LM"),
        autocast_adapter_dtype=False)  # fp16 weights, as the zoo publishes them
    fingerprint = base_fingerprint(AutoConfig.from_pretrained(backbone))
    for i, name in enumerate(names):
        if name in done:
            continue
        torch.manual_seed(i)
        with torch.no_grad():  # fresh random A and B: each adapter its own weights
            for key, weight in model.named_parameters():
                if ".lora_" in key:
                    torch.nn.init.normal_(weight, std=0.02)
        folder = manifest.parent / manifest.stem / name
        staged = folder.with_name(name + ".tmp")
        shutil.rmtree(staged, ignore_errors=True)
        model.save_pretrained(staged)
        replace_dir_atomic(staged, folder)
        sha, size = describe_weights(folder)
        upsert_entry(manifest, AdapterEntry(
            name=name, task=f"scaling_task{i}", path=f"{manifest.stem}/{name}",
            base_model=str(backbone), base_fingerprint=fingerprint, sha256=sha, rank=RANK,
            alpha=ALPHA, target_modules=modules, size_mb=size))


def finished_bench(backbone: Path, zoo: Path, store: Path = STORE) -> Path | None:
    """A finished bench run (run.json written) of this backbone and zoo in ``store``, if any.

    Only one timed on the llama.cpp this process would load: a stock run does not stand for a
    patched one.
    """
    import json

    from harness.models.llama_cpp_patches import llama_cpp_env

    env = llama_cpp_env()
    for run in sorted(store.glob("*/run.json")):
        config = json.loads(run.read_text()).get("config") or {}
        if config.get("model") != str(backbone) or config.get("zoo") != str(zoo):
            continue
        specs = [json.loads(spec.read_text()) for spec in run.parent.glob("spec_*.json")]
        if specs and all(spec.get("llama_cpp_env", {}) == env for spec in specs):
            return run.parent
    return None


def switch_patches_on() -> None:
    """Build the patched library (once; the script prints its folder) and opt into every patch."""
    from harness.models.llama_cpp_patches import PATCHES

    built = subprocess.run(["bash", "scripts/build_llama_cpp_lora_patches.sh"], check=True,
                           env={**os.environ, "PYTHON": sys.executable},
                           stdout=subprocess.PIPE, text=True).stdout.split()
    os.environ["LLAMA_CPP_LIB_PATH"] = built[-1]
    os.environ.update({env: "1" for _, env in PATCHES.values()})


def main() -> int:
    os.chdir(ROOT)
    shapes = os.environ.get("SHAPES", " ".join(SHAPES)).split()
    quants = os.environ.get("QUANTS", "f16 q4_k_m").split()
    threads = os.environ.get("THREADS", str(os.cpu_count() or 1))
    modules = os.environ.get("MODULES", " ".join(ALL_MODULES)).split()
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        sys.exit(f"routed_decode_scaling: unknown SHAPES {unknown}; known: {sorted(SHAPES)}")
    if not modules or set(modules) - set(ALL_MODULES):
        sys.exit(f"routed_decode_scaling: MODULES {modules}: pick from {ALL_MODULES}")
    modules = [m for m in ALL_MODULES if m in modules]
    store = Path(os.environ.get("STORE", STORE))
    if os.environ.get("LLAMA_PATCHES") == "1":
        switch_patches_on()
    for name in shapes:
        backbone = WORK / f"{name}-shape-random-weights"
        zoo = zoo_manifest_path(name, modules)
        done = None if os.environ.get("REMEASURE") == "1" else finished_bench(backbone, zoo, store)
        if done is not None:
            print(f"{name}, {zoo.name}: measured before in {done}, kept")
            continue
        WORK.mkdir(parents=True, exist_ok=True)
        print(f"{name}: building the backbone and {N_ADAPTERS} adapters on {modules}", flush=True)
        build_backbone(backbone, SHAPES[name])
        build_zoo(backbone, zoo, modules)
        formats = ",".join(f"gguf-{q}{suffix}" for q in quants for suffix in ("", "+lora"))
        # Short timings: a 1.7B f16 decodes a few tokens a second on 2 cores.
        subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--model", str(backbone),
                        "--zoo", str(zoo), "--formats", formats, "--task", "none",
                        "--synthetic", "none", "--threads", threads, "--prompts", "4",
                        "--gen-tokens", os.environ.get("GEN_TOKENS", "32"),
                        "--min-runs", "3", "--min-seconds", "10",
                        "--data-dir", os.environ.get("DATA_DIR", "../shared/data"),
                        "--output-dir", str(store)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
