"""What the storage layout of a LoRA GGUF (matrix type, padded rank) costs routed on llama.cpp.

Why this exists: routed decode with the zoo's rank-16 f16 adapters runs at ~0.75x the plain
GGUF on this CPU (leaderboards/edge), against issue 24's 0.95x. A profile (perf, one thread)
puts most of the added time in ggml's f16 dot product on 16-long rows: llama.cpp computes
B·(A·x), and each of B's output rows is a dot product over the rank, which is shorter than
ggml's SIMD step (32 floats with AVX2, 64 with AVX-512), so it runs in the scalar tail. The
levers that stay inside stock llama.cpp are the adapter file's layout: the type of its
matrices (f16, f32, bf16, q8_0) and its rank, zero-padded to the SIMD step (B·A unchanged;
``adapter.lora.alpha`` scaled so alpha / rank is too). This script writes those variants of
one zoo adapter and times each against the plain backbone, alternating in one process, with
the logits of each variant against the adapter as converted (f16, its own rank).

    nice python scripts/lora_layout_probe.py ~/.cache/slmbench/bench/gguf-*/model-f16.gguf \
        --zoo adapters_zoo/embedded.yaml --adapter teleqna --out leaderboards/edge/probes

Writes ``lora_layout.json`` (atomically) into --out, one entry per backbone GGUF, and prints
a table. Timing is not a test: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name -> (rank, type of lora_a, type of lora_b); rank 0 keeps the adapter's own, a larger one
# zero-pads it, a smaller one cuts it (the first components: another adapter, kept only to
# time fewer bytes per token; rank 8 reads half, what a q8_0 adapter would read, and ranks 4
# and 2 leave each of two threads fewer than four of A's rows at decode, which the patched
# kernels once computed in plain C)
VARIANTS = {
    "as converted (f16)": (0, "f16", "f16"),
    "f32": (0, "f32", "f32"),
    "f16, rank padded to 64": (64, "f16", "f16"),
    "q8_0, rank padded to 32": (32, "q8_0", "q8_0"),
    "bf16, rank padded to 32": (32, "bf16", "bf16"),
    "f16, rank cut to 8 (half the bytes; another adapter)": (8, "f16", "f16"),
    "f16, rank cut to 4 (another adapter)": (4, "f16", "f16"),
    "f16, rank cut to 2 (another adapter)": (2, "f16", "f16"),
}
PROMPT_TOKENS, DECODE_TOKENS = 300, 48


def write_variant(source: Path, out: Path, pad: int, a_type: str, b_type: str) -> None:
    """The adapter of ``source`` with its matrices re-typed and its rank zero-padded or cut."""
    import gguf
    import numpy as np
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import quantize

    from harness.quant.gguf_export import write_gguf_atomic

    reader = gguf.GGUFReader(source)
    alpha = float(reader.fields["adapter.lora.alpha"].parts[-1][0])
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    tensors = [(t.name, np.array(t.data, dtype=np.float32)) for t in reader.tensors]
    rank = next(m.shape[0] for name, m in tensors if name.endswith(".lora_a"))
    pad = pad or rank
    typed = {"f16": Q.F16, "f32": Q.F32, "bf16": Q.BF16, "q8_0": Q.Q8_0}

    def fill(writer) -> None:
        writer.add_type("adapter")
        writer.add_name(f"{source.stem}-{pad}-{a_type}-{b_type}")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", alpha * pad / rank)  # alpha / rank kept
        for name, matrix in tensors:
            is_a = name.endswith(".lora_a")  # numpy (rank, in); lora_b is (out, rank)
            grow = max(0, pad - rank)
            matrix = np.pad(matrix, ((0, grow), (0, 0)) if is_a else ((0, 0), (0, grow)))
            matrix = matrix[:pad] if is_a else matrix[:, :pad]
            kind = typed[a_type if is_a else b_type]
            if kind == Q.F32:
                writer.add_tensor(name, np.ascontiguousarray(matrix))
            elif kind == Q.F16:
                writer.add_tensor(name, np.ascontiguousarray(matrix.astype(np.float16)))
            else:
                writer.add_tensor(name, quantize(matrix, kind), raw_dtype=kind)

    write_gguf_atomic(out, arch, fill)


def alternate(engine, modes: dict, rounds: int, logits_of_a_decode_step: bool = False
              ) -> tuple[dict, dict, dict, int]:
    """Per mode: decode s/token and prefill s (medians), and the first round's last logits.

    Each mode is a callable that puts the loaded engine in that state. Every round runs every
    mode, the order flipping each round, so what the shared CPU does meanwhile and any trend
    within the run fall on all modes alike; two processes minutes apart drift by more than an
    adapter costs. The logits are the prompt's last position's, or with
    ``logits_of_a_decode_step`` those of one more token evaluated alone after it, for modes
    that differ only in how llama.cpp decodes.
    """
    import numpy as np

    llm = engine.llm
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tokens = engine.tokenize(text)
    ids, next_token = tokens[:PROMPT_TOKENS], tokens[PROMPT_TOKENS:PROMPT_TOKENS + 1]
    decode: dict = {k: [] for k in modes}
    prefill: dict = {k: [] for k in modes}
    logits = {}
    for i in range(rounds):
        order = list(modes) if i % 2 == 0 else list(reversed(modes))  # trends cancel
        for key in order:
            modes[key]()
            timing = engine.timed_request(ids[:64], DECODE_TOKENS)
            decode[key].append(timing.decode_s / (DECODE_TOKENS - 1))
            llm.reset()
            start = time.perf_counter()
            llm.eval(ids)
            prefill[key].append(time.perf_counter() - start)
            if i == 0:
                if logits_of_a_decode_step:
                    llm.eval(next_token)
                logits[key] = np.array(engine._last_logits(), copy=True)
    return ({k: statistics.median(v) for k, v in decode.items()},
            {k: statistics.median(v) for k, v in prefill.items()}, logits, len(ids))


def logits_agree(logits: dict, key, reference, digits: int = 4) -> dict:
    """Mode ``key``'s logits against mode ``reference``'s: the largest gap and the same top-1."""
    import numpy as np

    gap = float(np.abs(logits[key] - logits[reference]).max())
    return {"max_abs_logit_diff": round(gap, digits),
            "same_top1": bool(np.argmax(logits[key]) == np.argmax(logits[reference]))}


def compare(decode: dict, prefill: dict, logits: dict, n_ids: int, base, reference) -> dict:
    """Each mode's speed against ``base`` and its logits against ``reference``."""
    return {key: {"decode_ms_per_token": round(1000 * decode[key], 3),
                  "decode_ratio": round(decode[base] / decode[key], 3),
                  "prefill_tok_s": round(n_ids / prefill[key], 1),
                  "prefill_ratio": round(prefill[base] / prefill[key], 3),
                  **logits_agree(logits, key, reference)}
            for key in decode if key != base}


def probe(backbone: Path, variants: dict[str, Path], rounds: int, threads: int) -> dict:
    from harness.bench.engines import LlamaCppLoraEngine
    from harness.models.llama_cpp_load import switch
    from harness.models.llama_cpp_patches import llama_cpp_build

    engine = LlamaCppLoraEngine(str(backbone), {k: str(v) for k, v in variants.items()},
                                active=next(iter(variants)), n_threads=threads)
    engine.load()
    handles = {None: None, **engine.handles}
    modes = {key: (lambda h=handle: switch(engine.llm, h)) for key, handle in handles.items()}
    decode, prefill, logits, n_ids = alternate(engine, modes, rounds)
    rows = compare(decode, prefill, logits, n_ids, None, next(iter(variants)))
    for key, row in rows.items():
        row["file_mb"] = round(variants[key].stat().st_size / 1e6, 2)
    return {"backbone": str(backbone), "threads": engine.threads(), "rounds": rounds,
            "llama_cpp": llama_cpp_build(),  # stock, or which of slmbench's patches were on
            "prompt_tokens": n_ids, "decode_tokens": DECODE_TOKENS,
            "plain": {"decode_ms_per_token": round(1000 * decode[None], 3),
                      "prefill_tok_s": round(n_ids / prefill[None], 1)},
            "variants": rows}


def main() -> None:
    from rich.table import Table

    from harness.artefacts.zoo_manifest import load_manifest
    from harness.console import wide_console
    from harness.errors import SlmbenchError
    from harness.models.llama_cpp_peft import zoo_adapter_ggufs
    from harness.paths import cache_dir
    from harness.runs.atomic import write_json_atomic

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ggufs", nargs="+", type=Path, help="backbone GGUFs to time on")
    parser.add_argument("--zoo", default="adapters_zoo/embedded.yaml")
    parser.add_argument("--adapter", default="teleqna", help="the zoo entry to re-lay out")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="decode and batch threads (default: every core, as the bench's "
                             "torch count on this machine)")
    parser.add_argument("--out", type=Path, default=Path("leaderboards/edge/probes"))
    args = parser.parse_args()

    try:
        manifest = load_manifest(args.zoo)
    except SlmbenchError as err:
        parser.error(str(err))
    if args.adapter not in {entry.name for entry in manifest.adapters}:
        parser.error(f"--adapter {args.adapter}: {args.zoo} has no such entry (it has "
                     f"{', '.join(entry.name for entry in manifest.adapters)})")
    report = {"zoo": args.zoo, "adapter": args.adapter, "results": []}
    console = wide_console()
    folder = cache_dir() / "lora_layout_probe"
    folder.mkdir(parents=True, exist_ok=True)
    for backbone in args.ggufs:
        try:
            source = zoo_adapter_ggufs(manifest, backbone)[args.adapter]
        except SlmbenchError as err:
            parser.error(f"{backbone}: {err}")
        variants = {}
        for name, (pad, a_type, b_type) in VARIANTS.items():
            variants[name] = folder / f"{source.stem}-{pad}-{a_type}-{b_type}.gguf"
            if not variants[name].is_file():
                write_variant(source, variants[name], pad, a_type, b_type)
        result = probe(backbone, variants, args.rounds, args.threads)
        report["results"].append(result)
        table = Table(title=f"{backbone.name}: plain decode "
                            f"{result['plain']['decode_ms_per_token']} ms/token, prefill "
                            f"{result['plain']['prefill_tok_s']} tok/s")
        for col in ("adapter layout", "MB", "decode ms/token", "decode ratio", "prefill tok/s",
                    "prefill ratio", "max |Δlogit|", "same top-1"):
            table.add_column(col, justify="left" if col == "adapter layout" else "right")
        for name, row in result["variants"].items():
            table.add_row(name, f"{row['file_mb']:.1f}", f"{row['decode_ms_per_token']:.2f}",
                          f"{row['decode_ratio']:.3f}", f"{row['prefill_tok_s']:.0f}",
                          f"{row['prefill_ratio']:.3f}", f"{row['max_abs_logit_diff']:.4f}",
                          "yes" if row["same_top1"] else "no")
        console.print(table)
        args.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.out / "lora_layout.json", report)  # after each backbone


if __name__ == "__main__":
    main()
