"""``slmbench embedded`` and ``slmbench gguf``: the model files other commands load."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embedded", help="materialize the embedded default model and print paths")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached checkpoint")
    p.set_defaults(func=embedded)
    p = sub.add_parser("gguf", help="a checkpoint as a GGUF of a given type (cached); prints "
                       "its path", description="Export a transformers checkpoint to GGUF and "
                       "quantize it with llama.cpp, once per checkpoint content; the file "
                       "`slmbench bench` times and `--model llama-cpp(-peft)` loads.")
    p.add_argument("--model", default="embedded", help="'embedded' or a checkpoint folder")
    p.add_argument("--type", default="q4_k_m",
                   help="comma-separated: f32, f16, q8_0, q5_k_m, q4_k_m, q4_0")
    p.set_defaults(func=gguf)


def embedded(args: argparse.Namespace) -> int:
    from harness.artefacts.embedded import ensure_checkpoint, gguf_path

    print(f"gguf:       {gguf_path()}")
    print(f"checkpoint: {ensure_checkpoint(force=args.rebuild)}")
    return 0


def gguf(args: argparse.Namespace) -> int:
    """Print one path per type: the line a script reads (``$(slmbench gguf ... | tail -1)``)."""
    from pathlib import Path

    from harness.artefacts.embedded import resolve_pretrained
    from harness.cli.flags import comma_list
    from harness.quant.gguf_cache import cached_gguf

    source = Path(resolve_pretrained(args.model))
    for gguf_type in comma_list(args.type):
        print(cached_gguf(source, gguf_type))
    return 0
