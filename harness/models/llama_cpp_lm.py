"""``llama-cpp``: an lm-eval model that runs a GGUF file in process through ``llama_cpp.Llama``.

lm-eval's own ``gguf`` model talks HTTP to a llama.cpp server and scores from ``echo`` and
prompt logprobs, which current llama-server no longer returns: it silently scores at chance.
Here the model is loaded with ``logits_all=True`` and log-likelihoods are computed from the
per-position logits directly, so the accuracy of a quantized format is measured on the same
engine that is timed.

``logits_all=True`` makes llama-cpp-python keep an ``n_ctx x n_vocab`` float32 array
(about 400 MB for SmolLM2 at ``n_ctx=2048``); raise ``n_ctx`` with that in mind.

Generation asks for the last position's logits only (every position's costs an output-layer
matmul per prompt token, a third of a small model's prefill), runs requests sorted by prompt
and keeps the cached keys and values of the prefix a prompt shares with the previous one (the
task's instruction; all of it for Maj@k's repeated prompts), as llama.cpp's server does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from lm_eval import utils
from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import (
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from tqdm import tqdm

from harness.errors import SlmbenchError
from harness.flags import as_bool
from harness.models import GGUF
from harness.models.llama_cpp_load import llama_cpp_record

log = logging.getLogger(__name__)

_GGUF_MAGIC = b"GGUF"
# Generation kwargs that map onto llama.cpp's sampler; anything else is reported once.
_SAMPLING_KEYS = {"do_sample", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                  "seed"}
# Appended to the final message so that its end can be found after rendering
# (transformers' ``continue_final_message`` does the same).
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "


def _resolve_gguf(pretrained: Any) -> Path:
    from harness.artefacts.embedded import gguf_path, is_embedded

    if pretrained is None or is_embedded(str(pretrained)):
        return gguf_path()
    path = Path(str(pretrained)).expanduser()
    if not path.is_file():
        raise SlmbenchError(f"llama-cpp: GGUF file not found: {path}")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != _GGUF_MAGIC:
        raise SlmbenchError(f"llama-cpp: {path} is not a GGUF file (bad magic {magic!r})")
    return path


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64, copy=False)
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


class LlamaCppLM(TemplateLM):
    """A GGUF model evaluated in process by llama.cpp.

    Args:
        pretrained: Path to a ``.gguf`` file; ``"embedded"`` or None for the embedded
            SmolLM2-135M-Instruct GGUF.
        n_ctx: Context window in tokens; longer inputs are truncated from the left.
        n_threads: CPU threads (default: all cores).
        n_batch: Prompt tokens per llama.cpp decode call.
        n_gpu_layers: Layers to offload when llama.cpp was built with a GPU backend.
        flash_attn: llama.cpp's fused attention kernel (off by default, as in llama-cpp-python);
            it changes the order of floating-point sums, so answers may differ slightly.
        use_mmap: Map the GGUF (llama.cpp's default) rather than read it into memory. Where
            llama.cpp's extra buffer types repack weights (AMX), the mapped pages they were read
            from stay resident beside the copy: off, they cost their memory once.
        seed: Seeds the per-request sampling seeds, so sampled runs are reproducible while
            repeats of one prompt (Maj@k) still draw different samples.
        max_gen_toks: Default generation budget when a task sets none.
        batch_size, max_batch_size, device: Accepted for lm-eval's CLI and ignored:
            requests run one at a time and the device follows ``n_gpu_layers``.
        verbose: Let llama.cpp print its load and timing logs.
    """

    backend = "causal"
    PRETRAINED_FORMAT = GGUF  # pretrained= is a .gguf file (slmbench's defaults read this)

    def __init__(
        self,
        pretrained: str | os.PathLike | None = None,
        n_ctx: int | str = 2048,
        n_threads: int | str | None = None,
        n_batch: int | str = 512,
        n_gpu_layers: int | str = 0,
        flash_attn: bool | str = False,
        use_mmap: bool | str = True,
        seed: int | str | None = 1234,
        max_gen_toks: int | str = 256,
        batch_size: Any = None,
        max_batch_size: Any = None,
        device: Any = None,
        verbose: bool | str = False,
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise SlmbenchError(
                f"llama-cpp: unknown model argument(s) {', '.join(sorted(unknown))} (known: "
                "pretrained, n_ctx, n_threads, n_batch, n_gpu_layers, flash_attn, use_mmap, "
                "seed, max_gen_toks)"
            )
        try:
            import llama_cpp
        except ImportError as err:
            raise SlmbenchError(
                "llama-cpp: llama-cpp-python is not installed (pip install 'slmbench[llama-cpp]')"
            ) from err
        self.gguf_path = _resolve_gguf(pretrained)
        self.n_threads = int(n_threads) if n_threads not in (None, "") else os.cpu_count() or 1
        self.flash_attn = as_bool(flash_attn, "llama-cpp: flash_attn")
        self.use_mmap = as_bool(use_mmap, "llama-cpp: use_mmap")
        self.seed = int(seed) if seed not in (None, "") else None
        self._max_gen_toks = int(max_gen_toks)
        self._rng = random.Random(self.seed)
        self._device = "cpu" if int(n_gpu_layers) == 0 else "gpu"
        self.llm = self._open(
            self.gguf_path, n_ctx=int(n_ctx), n_threads=self.n_threads, n_batch=int(n_batch),
            n_gpu_layers=int(n_gpu_layers), flash_attn=self.flash_attn,
            use_mmap=self.use_mmap,
            seed=self.seed if self.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED,
            logits_all=True, verbose=as_bool(verbose, "llama-cpp: verbose"),
        )
        # The context actually granted (capped at the trained context; 0 means that one).
        self.n_ctx = int(self.llm.n_ctx())
        self._unknown_gen_keys_warned: set[str] = set()

    def _open(self, path: Path, **settings: Any) -> Any:
        """The ``llama_cpp.Llama`` this model runs (a subclass adds what the probe must load)."""
        from harness.models.llama_cpp_load import open_llama

        return open_llama(path, **settings)

    # -- tokenizer ---------------------------------------------------------------------------

    @property
    def eot_token_id(self) -> int:
        return int(self.llm.token_eos())

    @property
    def prefix_token_id(self) -> int:
        # As in HFLM: an empty context is conditioned on BOS where the model has one.
        bos = int(self.llm.token_bos())
        return bos if bos >= 0 else self.eot_token_id

    @property
    def max_length(self) -> int:
        return self.n_ctx

    @property
    def max_gen_toks(self) -> int:
        return self._max_gen_toks

    def tok_encode(
        self, string: str, add_special_tokens: bool | None = None, **kwargs: Any
    ) -> list[int]:
        # ``special=True`` parses chat markers such as <|im_start|> as single tokens, as the
        # HF tokenizer does; BOS is added only when asked and when the GGUF wants one.
        return self.llm.tokenize(
            string.encode("utf-8"), add_bos=bool(add_special_tokens), special=True
        )

    def tok_decode(self, tokens: int | list[int], skip_special_tokens: bool = True) -> str:
        tokens = [tokens] if isinstance(tokens, int) else list(tokens)
        raw = self.llm.detokenize(tokens, special=not skip_special_tokens)
        return raw.decode("utf-8", errors="replace")

    def _token_text(self, token_id: int) -> str:
        return "" if token_id < 0 else self.tok_decode(token_id, skip_special_tokens=False)

    # -- scoring -----------------------------------------------------------------------------

    def _eval_reusing_prefix(self, tokens: list[int]) -> None:
        """Evaluate ``tokens``, keeping the KV cache of a prefix shared with the last request.

        Multiple-choice requests repeat one context with several continuations; the shared
        positions have the same tokens at the same places, so their cached keys, values and
        logits are exactly what a fresh evaluation would produce.
        """
        # Only the first n_tokens are in the KV cache: the array keeps older, longer requests'
        # tokens past that point, whose keys and values are gone (matching them left a hole
        # that llama.cpp refuses, or read a stale request's logits when nothing was left to
        # evaluate).
        cached = self.llm.input_ids[:self.llm.n_tokens].tolist()
        common = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        if common == len(tokens):
            return
        self.llm.n_tokens = common
        self.llm.eval(tokens[common:])

    def _score(self, context_enc: list[int], continuation_enc: list[int]) -> tuple[float, bool]:
        if not continuation_enc:
            return 0.0, True
        whole = (list(context_enc) + list(continuation_enc))[-(self.n_ctx + 1):]
        inp = whole[:-1]
        n_cont = len(continuation_enc)
        if n_cont > len(inp):
            raise SlmbenchError(
                f"llama-cpp: continuation of {n_cont} tokens does not fit in n_ctx={self.n_ctx}"
            )
        self._eval_reusing_prefix(inp)
        logits = np.asarray(self.llm.scores[len(inp) - n_cont:len(inp)], dtype=np.float64)
        targets = np.asarray(continuation_enc, dtype=np.int64)
        logprobs = _log_softmax(logits)[np.arange(n_cont), targets]
        is_greedy = bool((logits.argmax(axis=-1) == targets).all())
        return float(logprobs.sum()), is_greedy

    def _loglikelihood_tokens(
        self,
        requests: list[tuple[tuple[str, str] | None, list[int], list[int]]],
        disable_tqdm: bool = False,
        **kwargs: Any,
    ) -> list[tuple[float, bool]]:
        # Sorting puts requests that share a context next to each other, so that the prefix
        # cache pays off; results are returned in the caller's order.
        order = sorted(range(len(requests)),
                       key=lambda i: tuple(requests[i][1]) + tuple(requests[i][2]))
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        self.llm.reset()
        for i in tqdm(order, disable=disable_tqdm, desc="llama-cpp loglikelihood"):
            cache_key, context_enc, continuation_enc = requests[i]
            results[i] = self._score(context_enc, continuation_enc)
            if cache_key is not None:
                self.cache_hook.add_partial("loglikelihood", cache_key, results[i])
        return results  # type: ignore[return-value]

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        totals = []
        for (string,) in tqdm([req.args for req in requests], disable=disable_tqdm,
                              desc="llama-cpp loglikelihood_rolling"):
            windows = [
                (None, *utils.make_disjoint_window(window))
                for window in utils.get_rolling_token_windows(
                    token_list=self.tok_encode(string),
                    prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length,
                    context_len=1,
                )
            ]
            scores = self._loglikelihood_tokens(windows, disable_tqdm=True)
            total = sum(logprob for logprob, _ in scores)
            totals.append(total)
            self.cache_hook.add_partial("loglikelihood_rolling", (string,), total)
        return totals

    # -- generation --------------------------------------------------------------------------

    def _sampling_args(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        for key in set(kwargs) - _SAMPLING_KEYS - self._unknown_gen_keys_warned:
            log.warning("llama-cpp: generation kwarg %r is not supported and is ignored", key)
            self._unknown_gen_keys_warned.add(key)
        # As in transformers, do_sample without a temperature samples at 1.0.
        temperature = float(kwargs.get("temperature", 1.0))
        if not kwargs.get("do_sample") or temperature <= 0.0:
            return {"temperature": 0.0}  # llama.cpp's greedy sampler
        seed = kwargs.get("seed")
        return {
            "temperature": temperature,
            # HF semantics: a filter is off unless asked for (llama.cpp defaults to
            # top_k=40, top_p=0.95, min_p=0.05).
            "top_p": float(kwargs.get("top_p") or 1.0),
            "top_k": int(kwargs.get("top_k") or 0),
            "min_p": float(kwargs.get("min_p") or 0.0),
            "repeat_penalty": float(kwargs.get("repetition_penalty") or 1.0),
            # A fresh seed per request: Maj@k repeats one prompt k times and needs k samples.
            "seed": int(seed) if seed is not None else self._rng.randrange(2**31),
        }

    def _generate_one(self, context: str, gen_kwargs: dict[str, Any]) -> str:
        kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
        eos = self._token_text(self.eot_token_id)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos or None)
        max_gen_toks = int(kwargs.pop("max_gen_toks"))
        kwargs.pop("max_length", None)
        if max_gen_toks <= 0:
            return ""
        max_ctx_len = self.n_ctx - max_gen_toks
        if max_ctx_len <= 0:
            raise SlmbenchError(
                f"llama-cpp: max_gen_toks={max_gen_toks} leaves no room for a prompt in "
                f"n_ctx={self.n_ctx}"
            )
        prompt = self.tok_encode(context)[-max_ctx_len:] or [self.prefix_token_id]
        # No reset: llama-cpp-python reuses the cached prefix this prompt shares with the last.
        out = self.llm.create_completion(
            prompt=prompt,
            max_tokens=max_gen_toks,
            # An empty stop string would match at once; lm-eval ignores it, so do we.
            stop=[s for s in until if s],
            **self._sampling_args(kwargs),
        )
        text = out["choices"][0]["text"]
        return postprocess_generated_text(text, stop=until, think_end_token=None)

    @contextlib.contextmanager
    def _last_logits_only(self) -> Iterator[None]:
        """Decode without the per-position logits that only loglikelihood scoring reads.

        The rows of ``scores`` for what is evaluated meanwhile are not written, so the cached
        tokens are forgotten on the way out: scoring must not take them for its prefix.
        """
        saved = getattr(self.llm, "_logits_all", None)
        if saved is not None:
            self.llm._logits_all = False
        try:
            yield
        finally:
            if saved is not None:
                self.llm._logits_all = saved
                self.llm.reset()

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        args = [req.args for req in requests]
        # Prompts that share a prefix run back to back; answers go back in the caller's order.
        order = sorted(range(len(args)), key=lambda i: args[i][0])
        results: list[str] = [""] * len(args)
        with self._last_logits_only():
            for i in tqdm(order, disable=disable_tqdm, desc="llama-cpp generate_until"):
                context, gen_kwargs = args[i]
                results[i] = self._generate_one(context, dict(gen_kwargs or {}))
                self.cache_hook.add_partial("generate_until", (context, gen_kwargs), results[i])
        return results

    # -- chat template -----------------------------------------------------------------------

    @property
    def tokenizer_name(self) -> str:
        return self.gguf_path.stem.replace("/", "__")

    @property
    def gguf_chat_template(self) -> str | None:
        return self.llm.metadata.get("tokenizer.chat_template")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        """The GGUF's template; lm-eval calls this to log what ``--apply_chat_template`` used."""
        if chat_template is False or chat_template is None:
            return None
        return self.gguf_chat_template

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """Render ``chat_history`` with the GGUF's template, as transformers would.

        lm-eval passes ``add_generation_prompt=False`` when the last message is an assistant
        prefix to continue (``gen_prefix``); like HFLM, the rendering then stops right after
        that message's text instead of closing the turn.
        """
        template = self.gguf_chat_template
        if not template:
            raise SlmbenchError(
                f"llama-cpp: {self.gguf_path.name} has no tokenizer.chat_template; "
                "run without --apply_chat_template"
            )
        import jinja2

        try:
            return self._render(template, chat_history, add_generation_prompt)
        except jinja2.exceptions.TemplateError:
            log.warning("llama-cpp: chat template failed; retrying without the system role")
            chat_history = [m for m in chat_history if m["role"] != "system"]
            return self._render(template, chat_history, add_generation_prompt)

    def _render(
        self, template: str, chat_history: list[dict[str, str]], add_generation_prompt: bool
    ) -> str:
        messages = [dict(m) for m in chat_history]
        continue_final = not add_generation_prompt and bool(messages)
        if continue_final:
            final = messages[-1]["content"]
            messages[-1]["content"] = final + _CONTINUE_TAG
        rendered = _compile(template).render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=self._token_text(int(self.llm.token_bos())),
            eos_token=self._token_text(self.eot_token_id),
        )
        if continue_final:
            tag = _CONTINUE_TAG.strip()
            if tag not in rendered:
                raise SlmbenchError(
                    "llama-cpp: the chat template drops the final message, so it cannot be "
                    "continued"
                )
            loc = rendered.rindex(tag)
            if rendered[loc:loc + len(_CONTINUE_TAG)] == _CONTINUE_TAG:
                rendered = rendered[:loc]
            else:
                rendered = rendered[:loc].rstrip()
        return rendered

    def get_model_info(self) -> dict[str, Any]:
        meta = self.llm.metadata
        return {
            "model_gguf": str(self.gguf_path),
            "model_gguf_size": self.gguf_path.stat().st_size,
            "model_name": meta.get("general.name", ""),
            "model_file_type": meta.get("general.file_type", ""),
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "flash_attn": self.flash_attn,
            "use_mmap": self.use_mmap,
            "llama_cpp": llama_cpp_record(),
        }


_TEMPLATES: dict[str, Any] = {}


def _compile(template: str) -> Any:
    """Compile a chat template the way transformers does (sandboxed, trimmed blocks)."""
    if template in _TEMPLATES:
        return _TEMPLATES[template]
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None,
               separators: Any = None, sort_keys: bool = False) -> str:
        # Jinja's own tojson escapes HTML characters; chat templates expect plain JSON.
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    _TEMPLATES[template] = env.from_string(template)
    return _TEMPLATES[template]
