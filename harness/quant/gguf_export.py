"""Convert a transformers causal-LM checkpoint into a GGUF file that llama.cpp loads.

llama.cpp's own ``convert_hf_to_gguf.py`` is not installed with llama-cpp-python, so this module
re-implements the part of it that slmbench needs, with nothing but the ``gguf`` package:
Llama, Qwen2, Qwen3, EXAONE 4 and Gemma 3 (text) decoders with a byte-level BPE tokenizer,
written as F32 or F16.
Quantized types are made afterwards from that file by llama.cpp itself
(:mod:`harness.quant.quantize`), so the k-quant mixes are exactly llama.cpp's.

Things that must match llama.cpp's converter, or the file loads but computes nonsense:

- llama.cpp runs Llama with interleaved ("normal") RoPE, whereas HF checkpoints store q/k rows
  in the rotate-half order; q_proj/k_proj (and their biases) are reverse-permuted exactly as
  ``LlamaModel.permute`` does. Qwen2/Qwen3 use NeoX RoPE in llama.cpp and are left alone.
- Gemma's RMSNorm multiplies by ``1 + w``; llama.cpp multiplies by the stored weight, so every
  Gemma 3 norm weight is written shifted by one, as the converter does.
- llama.cpp fixes some Gemma 3 / EXAONE 4 choices by architecture rather than reading them
  (query scale 1/sqrt(head_dim), the sliding layers' RoPE base); a config that departs from
  them is refused, not exported into a file that computes something else.
- 1-D tensors (norms, biases) stay F32 in an F16 file, as llama.cpp's converter keeps them.
- With tied embeddings no ``output.weight`` is written; llama.cpp then reuses ``token_embd``.
- ``tokenizer.ggml.pre`` picks llama.cpp's pre-tokenizer regex. It is recognised the way the
  converter does it (hash of the tokens of a fixed probe text), with a structural fallback;
  an unknown one is refused rather than guessed, because a wrong regex tokenizes silently
  differently from transformers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import SlmbenchError

log = logging.getLogger(__name__)

# HF ``architectures[0]`` -> gguf architecture name.
SUPPORTED_ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Exaone4ForCausalLM": "exaone4",
    "Gemma3ForCausalLM": "gemma3",
}
# Activation each architecture's llama.cpp graph hard-codes.
_ACTIVATION = {"Gemma3ForCausalLM": "gelu_pytorch_tanh"}
# RoPE scalings that are exported (and tested) per architecture.
_ROPE_TYPES = {"LlamaForCausalLM": {"default", "linear", "llama3"},
               "Exaone4ForCausalLM": {"default", "llama3"},
               "Gemma3ForCausalLM": {"default"}}
# llama.cpp's Gemma 3 runs its sliding-window layers with this RoPE base, whatever the file.
_GEMMA3_SWA_ROPE_THETA = 10000.0
DTYPES = ("f32", "f16")

# The probe text of llama.cpp's convert_hf_to_gguf.py ``get_vocab_base_pre``: the sha256 of
# ``str(tokenizer.encode(_CHKTXT))`` identifies a pre-tokenizer together with its vocabulary.
_CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis "
    "concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
    "កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български "
    "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? "
    "'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)
# Hashes taken from llama.cpp's converter, for the tokenizer families slmbench exports.
_PRE_BY_HASH = {
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",
}
# Split regexes of tokenizer.json, for a retrained vocabulary whose hash is not listed.
_QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_LLAMA3_REGEX = _QWEN2_REGEX.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
_WEIGHT_SKIP_SUFFIXES = (".rotary_emb.inv_freq",)


def export_gguf(model_dir: Path, out_path: Path, dtype: str = "f16",
                pre: str | None = None) -> Path:
    """Write ``model_dir`` (safetensors + tokenizer) as a GGUF file at ``out_path``.

    The file is written beside ``out_path`` and renamed into place, so an interrupted export
    never leaves a truncated GGUF that a later benchmark would load.

    Args:
        model_dir: A transformers checkpoint folder (config.json, *.safetensors, tokenizer).
        out_path: Where the GGUF goes; its folder is created.
        dtype: ``f32`` or ``f16`` for the matrices; 1-D tensors are always F32.
        pre: llama.cpp pre-tokenizer name; None recognises it (smollm, qwen2, llama-bpe).

    Returns:
        ``out_path``.

    Raises:
        SlmbenchError: unsupported architecture, RoPE scaling or tokenizer, unknown
            pre-tokenizer, or weights that do not match the config.
    """
    import gguf

    model_dir, out_path = Path(model_dir), Path(out_path)
    dtype = dtype.strip().lower()
    if dtype not in DTYPES:
        raise SlmbenchError(f"gguf export: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    hf_arch = _architecture_of(model_dir)
    arch_name = SUPPORTED_ARCHITECTURES[hf_arch]
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch_name)
    hp = _hparams(model_dir, hf_arch)

    def fill(writer) -> None:
        _add_hparams(writer, hp, model_dir, dtype)
        _add_vocab(writer, model_dir, hp, pre)
        _add_tensors(writer, model_dir, arch, hp, dtype)

    write_gguf_atomic(out_path, arch_name, fill)
    log.info("gguf export: %s -> %s (%s, %s)", model_dir, out_path, arch_name, dtype)
    return out_path


def _architecture_of(model_dir: Path) -> str:
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise SlmbenchError(f"gguf export: {config_file} is missing (not a transformers folder)")
    try:
        archs = json.loads(config_file.read_text()).get("architectures") or []
    except ValueError as err:
        raise SlmbenchError(f"gguf export: {config_file} is not valid JSON ({err})") from err
    hf_arch = archs[0] if archs else "<none>"
    if hf_arch not in SUPPORTED_ARCHITECTURES:
        raise SlmbenchError(
            f"gguf export: architecture {hf_arch} of {model_dir} is not supported by "
            f"slmbench's GGUF exporter for llama.cpp "
            f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
        )
    return hf_arch


def _hparams(model_dir: Path, hf_arch: str) -> dict[str, Any]:
    """The config values the GGUF needs, with transformers' class defaults filled in.

    transformers 5 keeps RoPE settings in ``rope_parameters``; 4.x had ``rope_theta`` and
    ``rope_scaling``. Both are read.
    """
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model_dir)
    n_head = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
    all_rope = dict(getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None)
                    or {})
    # Gemma 3 keeps one RoPE per layer type; the global (full-attention) one is the model's.
    rope = dict(all_rope.get("full_attention", all_rope))
    theta = rope.get("rope_theta", getattr(cfg, "rope_theta", None)) or 10000.0
    rope_type = str(rope.get("rope_type", rope.get("type", "default")) or "default").lower()
    act = getattr(cfg, "hidden_activation", None) or getattr(cfg, "hidden_act", "silu")
    want_act = _ACTIVATION.get(hf_arch, "silu")
    if act != want_act:
        raise SlmbenchError(f"gguf export: {model_dir}: activation {act!r} is not supported "
                            f"for {hf_arch} ({want_act} only)")
    if getattr(cfg, "mlp_bias", False):
        raise SlmbenchError(f"gguf export: {model_dir}: mlp_bias=True is not supported")
    if getattr(cfg, "use_sliding_window", False):
        raise SlmbenchError(f"gguf export: {model_dir}: sliding-window attention is not "
                            "supported (llama.cpp's qwen2 runs full attention)")
    allowed_rope = _ROPE_TYPES.get(hf_arch, {"default", "linear"})
    if rope_type not in allowed_rope:
        raise SlmbenchError(f"gguf export: {model_dir}: RoPE type {rope_type!r} is not supported "
                            f"for {hf_arch} (supported: {', '.join(sorted(allowed_rope))})")
    layer_types = list(getattr(cfg, "layer_types", None) or [])
    sliding = [t == "sliding_attention" for t in layer_types]
    if hf_arch == "Exaone4ForCausalLM" and getattr(cfg, "sliding_window", None) and any(sliding):
        raise _unsupported(model_dir, "exaone4's hybrid sliding-window attention (the 32B's)",
                           "global attention only")
    if hf_arch == "Gemma3ForCausalLM":
        _check_gemma3(cfg, model_dir, all_rope, head_dim)
    return {
        "hf_arch": hf_arch,
        "sliding_window": getattr(cfg, "sliding_window", None) if any(sliding) else None,
        "sliding_pattern": sliding,
        "n_vocab": cfg.vocab_size,
        "n_ctx": cfg.max_position_embeddings,
        "n_embd": cfg.hidden_size,
        "n_layer": cfg.num_hidden_layers,
        "n_ff": cfg.intermediate_size,
        "n_head": n_head,
        "n_head_kv": getattr(cfg, "num_key_value_heads", None) or n_head,
        "head_dim": head_dim,
        "rms_eps": cfg.rms_norm_eps,
        "rope_theta": float(theta),
        "rope_type": rope_type,
        "rope": rope,
        "tied": bool(getattr(cfg, "tie_word_embeddings", False)),
    }


def _check_gemma3(cfg: Any, model_dir: Path, all_rope: dict, head_dim: int) -> None:
    """Refuse Gemma 3 settings that llama.cpp's graph does not read from the file."""
    for name in ("final_logit_softcapping", "attn_logit_softcapping"):
        if getattr(cfg, name, None) is not None:
            raise _unsupported(model_dir, f"gemma3 {name}", "llama.cpp's gemma3 has none")
    if getattr(cfg, "query_pre_attn_scalar", head_dim) != head_dim:
        raise _unsupported(model_dir, f"gemma3 query_pre_attn_scalar "
                           f"{cfg.query_pre_attn_scalar} != head_dim {head_dim}",
                           "llama.cpp scales queries by 1/sqrt(head_dim)")
    local = all_rope.get("sliding_attention") or {}
    local_theta = float(local.get("rope_theta", getattr(cfg, "rope_local_base_freq",
                                                        _GEMMA3_SWA_ROPE_THETA)))
    if local_theta != _GEMMA3_SWA_ROPE_THETA or str(local.get("rope_type", "default")) != "default":
        raise _unsupported(model_dir, f"gemma3 sliding-layer RoPE {local}",
                           f"llama.cpp uses base {_GEMMA3_SWA_ROPE_THETA:g}")


def _unsupported(model_dir: Path, what: str, why: str) -> SlmbenchError:
    """One line naming the architecture's feature and the engine that lacks it."""
    return SlmbenchError(f"gguf export: {model_dir}: {what} is not supported by slmbench's "
                         f"GGUF exporter for llama.cpp ({why})")


def _add_hparams(writer: Any, hp: dict[str, Any], model_dir: Path, dtype: str) -> None:
    import gguf

    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(model_dir.resolve().name)
    writer.add_context_length(hp["n_ctx"])
    writer.add_embedding_length(hp["n_embd"])
    writer.add_block_count(hp["n_layer"])
    writer.add_feed_forward_length(hp["n_ff"])
    writer.add_head_count(hp["n_head"])
    writer.add_head_count_kv(hp["n_head_kv"])
    # Qwen3 sets head_dim independently of hidden_size / n_head, so always write it.
    writer.add_key_length(hp["head_dim"])
    writer.add_value_length(hp["head_dim"])
    writer.add_rope_dimension_count(hp["head_dim"])
    writer.add_rope_freq_base(hp["rope_theta"])
    writer.add_layer_norm_rms_eps(hp["rms_eps"])
    writer.add_vocab_size(hp["n_vocab"])
    if hp["sliding_window"]:
        writer.add_sliding_window(int(hp["sliding_window"]))
        writer.add_sliding_window_pattern(hp["sliding_pattern"])
    if hp["rope_type"] == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(hp["rope"]["factor"]))
    ftype = gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16
    writer.add_file_type(ftype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def detect_pretokenizer(tokenizer: Any, tokenizer_json: dict | None = None) -> str | None:
    """llama.cpp's name for the tokenizer's pre-tokenizer, or None when it is not known.

    The probe-text hash is exact for the published vocabularies; the structural match covers
    retrained vocabularies of the same families. The structure is read from the tokenizer
    transformers actually built, not from tokenizer.json: transformers 5 picks the class from
    the model type, and e.g. ``Qwen2Tokenizer`` imposes Qwen's split regex whatever the file
    says.
    """
    chkhsh = sha256(str(tokenizer.encode(_CHKTXT)).encode()).hexdigest()
    if chkhsh in _PRE_BY_HASH:
        return _PRE_BY_HASH[chkhsh]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        tokenizer_json = json.loads(backend.to_str())
    pre_tok = (tokenizer_json or {}).get("pre_tokenizer") or {}
    steps = pre_tok.get("pretokenizers", [pre_tok])
    kinds = [s.get("type") for s in steps]
    if (kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits")
            and steps[1].get("use_regex", True)):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        regex = (steps[0].get("pattern") or {}).get("Regex")
        if regex == _QWEN2_REGEX:
            return "qwen2"
        if regex == _LLAMA3_REGEX:
            return "llama-bpe"
    return None


def _tokenizer_json(tokenizer: Any, model_dir: Path) -> dict | None:
    """The tokenizer as transformers built it (see :func:`detect_pretokenizer`)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return json.loads(backend.to_str())
    tok_file = model_dir / "tokenizer.json"
    return json.loads(tok_file.read_text(encoding="utf-8")) if tok_file.is_file() else None


def _add_vocab(writer: Any, model_dir: Path, hp: dict[str, Any], pre: str | None) -> None:
    """Token list, types, merges, special ids, add-bos flag and chat template.

    The add-bos/add-eos flags are measured from what the HF tokenizer does, so llama.cpp's
    ``tokenize(add_bos=True)`` matches ``tokenizer(text)`` whatever the config files say.
    """
    import gguf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tok_json = _tokenizer_json(tokenizer, model_dir)
    model_type = ((tok_json or {}).get("model") or {}).get("type")
    if model_type not in (None, "BPE") or "ByteLevel" not in json.dumps(
            (tok_json or {}).get("decoder")):
        raise SlmbenchError(f"gguf export: {model_dir}: only byte-level BPE tokenizers are "
                            f"supported (tokenizer.json model {model_type!r})")
    if pre is None:
        pre = detect_pretokenizer(tokenizer, tok_json)
        if pre is None:
            chkhsh = sha256(str(tokenizer.encode(_CHKTXT)).encode()).hexdigest()
            raise SlmbenchError(
                f"gguf export: {model_dir}: unknown BPE pre-tokenizer (chkhsh {chkhsh[:16]}...); "
                "pass pre= with llama.cpp's name for it (smollm, qwen2, llama-bpe, gpt-2, ...)"
            )

    n_vocab = hp["n_vocab"]
    vocab = tokenizer.get_vocab()
    if max(vocab.values()) >= n_vocab:
        raise SlmbenchError(f"gguf export: {model_dir}: tokenizer has id {max(vocab.values())} "
                            f"but the model's vocab_size is {n_vocab}")
    added = tokenizer.added_tokens_decoder
    by_id = {i: t for t, i in vocab.items()}
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        if i not in by_id:  # embedding rows beyond the tokenizer (Qwen pads to 151936)
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(added[i].content)
            types.append(gguf.TokenType.CONTROL if added[i].special
                         else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)

    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=n_vocab)
    if not special.merges:
        raise SlmbenchError(f"gguf export: {model_dir}: tokenizer has no BPE merges")
    plain = tokenizer("Hello world", add_special_tokens=False)["input_ids"]
    full = tokenizer("Hello world")["input_ids"]
    grew = len(full) > len(plain)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    special.add_special_token["bos"] = grew and bos is not None and full[0] == bos
    special.add_special_token["eos"] = grew and eos is not None and full[-1] == eos
    if special.chat_template is None and getattr(tokenizer, "chat_template", None):
        special.chat_template = tokenizer.chat_template
    special.add_to_gguf(writer, quiet=True)


def _safetensors_files(model_dir: Path) -> list[Path]:
    files = sorted(p for p in model_dir.glob("*.safetensors")
                   if not p.name.startswith("adapter_"))
    if not files:
        raise SlmbenchError(f"gguf export: {model_dir} holds no *.safetensors weights")
    return files


def _iter_weights(model_dir: Path) -> Iterator[tuple[str, Any]]:
    from safetensors import safe_open

    for path in _safetensors_files(model_dir):
        with safe_open(str(path), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118 - safe_open is not a dict
                yield name, fh.get_tensor(name)


def write_gguf_atomic(out_path: Path, arch_name: str, fill: Callable[[Any], None]) -> Path:
    """Write a GGUF through a temporary file beside ``out_path`` and rename it into place.

    ``fill(writer)`` adds the key-values and tensors. A crash or a refusal midway leaves no
    half-written GGUF that a later run could mistake for a finished one.
    """
    import gguf

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp",
                                    dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    writer = gguf.GGUFWriter(tmp, arch_name)
    try:
        fill(writer)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_path)
    finally:
        writer.close()
        if tmp.exists():
            tmp.unlink()
    return out_path


def permute_qk(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """Undo HF's rotate-half row order for llama.cpp's interleaved RoPE.

    Same arithmetic as llama.cpp's ``LlamaModel.permute``; k_proj is permuted per KV head.
    """
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def _llama3_rope_factors(hp: dict[str, Any]) -> np.ndarray:
    """Per-frequency divisors llama.cpp reads from ``rope_freqs`` for Llama-3.1 RoPE."""
    rope, dim = hp["rope"], hp["head_dim"]
    freqs = 1.0 / (hp["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    factor = float(rope.get("factor", 8.0))
    low, high = float(rope.get("low_freq_factor", 1.0)), float(rope.get("high_freq_factor", 4.0))
    old_ctx = float(rope.get("original_max_position_embeddings", 8192))
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def _add_tensors(writer: Any, model_dir: Path, arch: Any, hp: dict[str, Any],
                 dtype: str) -> None:
    import gguf
    import torch

    name_map = gguf.get_tensor_name_map(arch, hp["n_layer"])
    is_llama = hp["hf_arch"] == "LlamaForCausalLM"
    seen: set[str] = set()
    for name, tensor in _iter_weights(model_dir):
        if name.endswith(_WEIGHT_SKIP_SUFFIXES) or (hp["tied"] and name == "lm_head.weight"):
            continue
        data = tensor.to(torch.float32).numpy()
        if is_llama and name.endswith(("q_proj.weight", "q_proj.bias")):
            data = permute_qk(data, hp["n_head"], hp["n_head"])
        elif is_llama and name.endswith(("k_proj.weight", "k_proj.bias")):
            data = permute_qk(data, hp["n_head"], hp["n_head_kv"])
        if hp["hf_arch"] == "Gemma3ForCausalLM" and name.endswith("norm.weight"):
            data = data + 1.0  # Gemma's RMSNorm scales by (1 + w)
        new_name = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise SlmbenchError(f"gguf export: {model_dir}: tensor {name} has no GGUF name "
                                f"for {hp['hf_arch']}")
        if dtype == "f16" and data.ndim > 1 and not new_name.endswith("_norm.weight"):
            data = data.astype(np.float16)
        writer.add_tensor(new_name, np.ascontiguousarray(data))
        seen.add(new_name)
    if "token_embd.weight" not in seen:
        raise SlmbenchError(f"gguf export: {model_dir}: no embedding weights found")
    if not hp["tied"] and "output.weight" not in seen:
        raise SlmbenchError(f"gguf export: {model_dir}: tie_word_embeddings is false but "
                            "lm_head.weight is missing")
    if hp["rope_type"] == "llama3":
        name = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"
        writer.add_tensor(name, _llama3_rope_factors(hp))
