"""Routed llama.cpp with slmbench's LoRA patches against stock llama.cpp, in one process.

Why this exists: issue 24 asks routed decode for >= 0.95x the plain GGUF and an adapter switch
under 5 ms. Stock llama.cpp builds four graph nodes per adapted matrix (with a rank-16 adapter
on all seven projections of the 135M model, routed decode runs at ~0.75x), and every switch
re-reserves the compute graph (~6 ms on 2 cores). No adapter layout fixes the first
(``lora_layout_probe.py``). ``patches/llama.cpp`` has one patch for each, both opt-in per
process; this script measures what each buys on the same loaded model:

- decode and prefill: the plain backbone, the zoo adapter on stock nodes, on one fused node
  per matrix (``LLAMA_LORA_FUSED=2``) and as the patch runs it (``LLAMA_LORA_FUSED=1``: at
  decode an epilogue of the base matmul, no node of its own), alternating, with the logits of a
  decode step against stock's and the epilogue's against the node's (the step reads the
  prompt's keys and values, which the fused node computed on an x86 CPU with AVX2, so every kernel
  is checked; epilogue and node differ only in summation order, on any backbone);
- switch: adapter to adapter over the whole zoo, each switch with the token after it, with the
  reservation redone (stock) or kept (``LLAMA_LORA_KEEP_RESERVE=1``), alternating, and each
  adapter's logits after a kept-reservation switch against those after a stock one.

    LIB=$(bash scripts/build_llama_cpp_lora_patches.sh)
    nice python scripts/lora_patches_probe.py --lib "$LIB" \
        ~/.cache/slmbench/bench/gguf-*/model-{f16,q8_0,q4_k_m}.gguf

Writes ``lora_patches.json`` (atomically, after each backbone) into --out and prints tables.
Timing is not a test: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lora_layout_probe import DECODE_TOKENS, ROOT, alternate, compare, logits_agree

SWITCH_ROUNDS_PER_MODE = 4  # each round switches once through the whole zoo and back


# mode name: LLAMA_LORA_FUSED's value with the adapter on
FUSED_MODES = {"stock llama.cpp": "0", "fused node": "2", "decode epilogue": "1"}


def decode_modes(engine, handle) -> dict:
    """The plain backbone, then the adapter under each of FUSED_MODES."""
    from harness.models.llama_cpp_load import switch

    def mode(fused: str | None):
        def enter() -> None:
            # The patch reads its variable at each graph build; clearing the adapter first makes
            # llama.cpp build the next graph anew even when the adapter itself is unchanged.
            switch(engine.llm, None)
            os.environ["LLAMA_LORA_FUSED"] = fused or "0"
            if fused is not None:
                switch(engine.llm, handle)
        return enter

    return {"plain": mode(None)} | {name: mode(value) for name, value in FUSED_MODES.items()}


def switch_costs(engine, rounds: int) -> dict:
    """Adapter-to-adapter switches with the reservation redone and kept, alternating.

    Each round runs both modes, the order flipping, so the shared CPU weighs on both alike.
    """
    from harness.bench.stats import summarize

    samples: dict[str, list[float]] = {"stock llama.cpp": [], "kept reservation": []}
    parts: dict[str, dict[str, list[float]]] = {k: {} for k in samples}
    n = len(engine.handles) * 2  # through the zoo twice, ending on the active adapter
    for i in range(rounds):
        order = list(samples) if i % 2 == 0 else list(reversed(samples))
        for key in order:
            os.environ["LLAMA_LORA_KEEP_RESERVE"] = "1" if key == "kept reservation" else "0"
            samples[key] += [1e3 * t for t in engine.switch_seconds(n)]
            for part, values in engine.switch_parts.items():
                parts[key].setdefault(part, []).extend(1e3 * t for t in values)
    os.environ.pop("LLAMA_LORA_KEEP_RESERVE", None)
    out = {}
    for key, values in samples.items():
        total = summarize(values)
        out[key] = {"n": total.n, "p50_ms": round(total.p50, 3), "p95_ms": round(total.p95, 3),
                    "max_ms": round(total.max, 3),
                    "parts_p50_ms": {part.removesuffix("_s"): round(summarize(v).p50, 3)
                                     for part, v in parts[key].items()}}
    return out


def switched_logits_agree(engine) -> dict:
    """Each adapter's logits after a kept-reservation switch, against after a stock one."""
    import numpy as np

    from harness.models.llama_cpp_load import switch

    ids = engine.tokenize("The gNB schedules the UE on the PDSCH.")
    logits: dict[str, dict[str, np.ndarray]] = {"0": {}, "1": {}}
    names = list(engine.handles)
    for keep in logits:
        os.environ["LLAMA_LORA_KEEP_RESERVE"] = keep
        for step in range(len(names) + 1):  # every adapter entered from another one
            name = names[step % len(names)]
            switch(engine.llm, engine.handles[name])
            engine.llm.eval(ids)
            logits[keep][name] = np.array(engine._last_logits(), copy=True)
    os.environ.pop("LLAMA_LORA_KEEP_RESERVE", None)
    switch(engine.llm, engine.handles[engine.active])
    worst = max(float(np.abs(logits["1"][n] - logits["0"][n]).max()) for n in names)
    same = all(np.argmax(logits["1"][n]) == np.argmax(logits["0"][n]) for n in names)
    return {"adapters": len(names), "max_abs_logit_diff": round(worst, 6), "same_top1": same}


def probe(backbone: Path, adapters: dict[str, Path], active: str, rounds: int,
          threads: int) -> dict:
    from harness.bench.engines import LlamaCppLoraEngine
    from harness.models.llama_cpp_patches import llama_cpp_build

    engine = LlamaCppLoraEngine(str(backbone), {k: str(v) for k, v in adapters.items()},
                                active=active, n_threads=threads)
    engine.load()
    # a decode step's logits: the decode kernel's output, over the prompt kernel's cache
    decode, prefill, logits, n_ids = alternate(engine, decode_modes(engine,
                                                                    engine.handles[active]),
                                               rounds, logits_of_a_decode_step=True)
    os.environ.pop("LLAMA_LORA_FUSED", None)
    return {"backbone": str(backbone), "active_adapter": active, "threads": engine.threads(),
            "llama_cpp": llama_cpp_build(), "rounds": rounds, "prompt_tokens": n_ids,
            "decode_tokens": DECODE_TOKENS,
            "plain": {"decode_ms_per_token": round(1000 * decode["plain"], 3),
                      "prefill_tok_s": round(n_ids / prefill["plain"], 1)},
            "adapter_on": compare(decode, prefill, logits, n_ids, "plain", "stock llama.cpp"),
            "epilogue_vs_node": logits_agree(logits, "decode epilogue", "fused node", digits=6),
            "switch": switch_costs(engine, SWITCH_ROUNDS_PER_MODE),
            "switch_logits": switched_logits_agree(engine)}


def print_result(console, result: dict) -> None:
    from rich.table import Table

    name = Path(result["backbone"]).name
    agree = result["epilogue_vs_node"]
    table = Table(title=f"{name}: plain decode {result['plain']['decode_ms_per_token']} "
                        f"ms/token, prefill {result['plain']['prefill_tok_s']} tok/s; decode "
                        f"epilogue vs fused node logits: max |Δ| {agree['max_abs_logit_diff']}, "
                        f"same top-1 {'yes' if agree['same_top1'] else 'no'}")
    for col in ("adapter on", "decode ms/token", "decode ratio", "prefill tok/s",
                "prefill ratio", "max |Δlogit| vs stock", "same top-1"):
        table.add_column(col, justify="left" if col == "adapter on" else "right")
    for mode, row in result["adapter_on"].items():
        table.add_row(mode, f"{row['decode_ms_per_token']:.2f}", f"{row['decode_ratio']:.3f}",
                      f"{row['prefill_tok_s']:.0f}", f"{row['prefill_ratio']:.3f}",
                      f"{row['max_abs_logit_diff']:.4f}", "yes" if row["same_top1"] else "no")
    console.print(table)
    agree = result["switch_logits"]
    table = Table(title=f"{name}: adapter switch with the next token ({agree['adapters']} "
                        f"adapters; kept-reservation logits vs stock: max |Δ| "
                        f"{agree['max_abs_logit_diff']}, same top-1 "
                        f"{'yes' if agree['same_top1'] else 'no'})")
    for col in ("switch", "n", "p50 ms", "p95 ms", "max ms", "call p50 ms", "token p50 ms",
                "token without switch p50 ms"):
        table.add_column(col, justify="left" if col == "switch" else "right")
    for mode, row in result["switch"].items():
        parts = row["parts_p50_ms"]
        table.add_row(mode, str(row["n"]), f"{row['p50_ms']:.2f}", f"{row['p95_ms']:.2f}",
                      f"{row['max_ms']:.2f}", f"{parts['call']:.3f}",
                      f"{parts['first_token']:.2f}", f"{parts['token_without_switch']:.2f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ggufs", nargs="+", type=Path, help="backbone GGUFs to time on")
    parser.add_argument("--lib", type=Path, required=True,
                        help="the patched libraries (scripts/build_llama_cpp_lora_patches.sh)")
    parser.add_argument("--zoo", default="adapters_zoo/embedded.yaml")
    parser.add_argument("--adapter", default="teleqna", help="the zoo entry decode is timed on")
    parser.add_argument("--pretrained", default=None,
                        help="the checkpoint the GGUFs were exported from, for the zoo's base "
                             "check (default: the name in the GGUF; the embedded model's are "
                             "known)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="decode and batch threads (default: every core)")
    parser.add_argument("--out", type=Path, default=Path("leaderboards/edge/probes"))
    args = parser.parse_args()
    if not (args.lib / "libllama.so").is_file():
        parser.error(f"--lib {args.lib}: no libllama.so there "
                     "(build it with scripts/build_llama_cpp_lora_patches.sh)")
    os.environ["LLAMA_CPP_LIB_PATH"] = str(args.lib.resolve())  # read when llama_cpp loads

    from harness.artefacts.zoo_manifest import load_manifest
    from harness.console import wide_console
    from harness.errors import SlmbenchError
    from harness.models.llama_cpp_patches import PATCHES, fused_options, llama_cpp_build
    from harness.models.llama_cpp_peft import zoo_adapter_ggufs
    from harness.runs.atomic import write_json_atomic

    missing = sorted(set(PATCHES) - set(llama_cpp_build()["patches"]))
    if missing:
        parser.error(f"--lib {args.lib}: its libllama.so lacks {', '.join(missing)} "
                     "(rebuild it with scripts/build_llama_cpp_lora_patches.sh)")
    try:
        manifest = load_manifest(args.zoo)
    except SlmbenchError as err:
        parser.error(str(err))
    if args.adapter not in {entry.name for entry in manifest.adapters}:
        parser.error(f"--adapter {args.adapter}: {args.zoo} has no such entry")
    if len(manifest.adapters) < 2:
        parser.error(f"--zoo {args.zoo}: a switch needs two adapters or more")
    report = {"zoo": args.zoo, "adapter": args.adapter, "lib": str(args.lib),
              "patches": sorted(str(p.relative_to(ROOT))
                                for p in (ROOT / "patches" / "llama.cpp").glob("*.patch")),
              # a kernel cap (LLAMA_LORA_FUSED_ISA) makes another measurement
              "options": fused_options(),
              "results": []}
    console = wide_console()
    for backbone in args.ggufs:
        try:
            adapters = zoo_adapter_ggufs(manifest, backbone, args.pretrained)
        except (SlmbenchError, OSError) as err:
            parser.error(f"{backbone}: {err}")
        result = probe(backbone, adapters, args.adapter, args.rounds, args.threads)
        report["results"].append(result)
        print_result(console, result)
        args.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.out / "lora_patches.json", report)  # after each backbone


if __name__ == "__main__":
    main()
