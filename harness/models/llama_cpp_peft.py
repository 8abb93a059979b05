"""``llama-cpp-peft``: one GGUF backbone, one LoRA adapter GGUF per task, chosen per request.

The deployment an edge CPU would ship: the backbone (any quantization) is loaded once in
llama.cpp, each zoo adapter is converted once to llama.cpp's LoRA GGUF
(:mod:`harness.quant.gguf_lora`) and loaded beside it, and each task's requests run with its
adapter switched on (``llama_set_adapters_lora``: no reload). Routing, the manifest's sha256
and base checks are ``hf-peft``'s own (:class:`TaskRouting`, :func:`verify_entry`); scoring,
generation, sampling seeds and chat templates are ``llama-cpp``'s.

A GGUF carries no transformers config, so the backbone's identity for the base check is read
from its header: the shape fields from the hyperparameters, the name from ``general.name``
(slmbench's exporter writes the checkpoint folder's name there, which is what ``hf-peft``
compares). ``base=`` names it when the GGUF came from elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.artefacts.zoo_manifest import Manifest, load_manifest, verify_entry
from harness.errors import SlmbenchError
from harness.models.llama_cpp_lm import LlamaCppLM, _resolve_gguf
from harness.models.task_routing import TaskRouting
from harness.quant.gguf_lora import Backbone, cached_adapter_gguf, read_backbone

log = logging.getLogger(__name__)


def backbone_name(pretrained: Any, backbone: Backbone) -> str:
    """The name the zoo's base check compares: ``embedded`` for the embedded model's GGUFs."""
    from harness.artefacts.embedded import checkpoint_dir, gguf_path, is_embedded

    if is_embedded(None if pretrained is None else str(pretrained)):
        return "embedded"
    if backbone.path.resolve() == gguf_path().resolve():
        return "embedded"
    if backbone.name == checkpoint_dir().name:  # exported from the embedded checkpoint
        return "embedded"
    return backbone.name or backbone.path.stem


def zoo_adapter_ggufs(manifest: Manifest, gguf: Path, pretrained: Any = None,
                     base: str | None = None) -> dict[str, Path]:
    """Every adapter of ``manifest`` as a llama.cpp LoRA GGUF fitting the backbone ``gguf``.

    Each entry passes ``hf-peft``'s checks first (base name and shape, weights' sha256); the
    conversion is cached per sha256, so only a new adapter costs a conversion.
    """
    backbone = read_backbone(gguf)
    loaded_as = base or backbone_name(pretrained, backbone)
    out: dict[str, Path] = {}
    for entry in manifest.adapters:
        folder = verify_entry(manifest, entry, loaded_as, backbone.config())
        out[entry.name] = cached_adapter_gguf(folder, entry.sha256, backbone)
    return out


class LlamaCppPeftLM(TaskRouting, LlamaCppLM):
    """A GGUF backbone with the zoo's adapters routed per task, evaluated by llama.cpp.

    Args:
        pretrained: The backbone GGUF; default: the manifest's base (``embedded``: the
            embedded model's shipped GGUF).
        adapters: The zoo manifest (``adapters_zoo/<name>.yaml``).
        base: The backbone's name for the base check, when its ``general.name`` is not the
            name the manifest records.
        **kwargs: ``llama-cpp``'s arguments (n_ctx, n_threads, seed, ...).
    """

    def __init__(self, pretrained: Any = None, adapters: str | None = None,
                 base: str | None = None, **kwargs: Any) -> None:
        if not adapters:
            raise SlmbenchError("llama-cpp-peft: needs adapters=<manifest.yaml> (a zoo "
                                "manifest; for a plain GGUF use --model llama-cpp)")
        self.manifest: Manifest | None = load_manifest(adapters)
        if pretrained is None:
            pretrained = self.manifest.base_model
        self.adapter_ggufs = zoo_adapter_ggufs(self.manifest, _resolve_gguf(pretrained),
                                               pretrained, base)
        self.switch_seconds: list[float] = []
        super().__init__(pretrained=pretrained, **kwargs)
        from harness.models.llama_cpp_load import load_adapters

        handles = load_adapters(self.llm, list(self.adapter_ggufs.values()))
        self._handles = dict(zip(self.adapter_ggufs, handles, strict=True))
        self._active: str | None = None
        log.info("llama-cpp-peft: %d adapters over %s: %s", len(handles), self.gguf_path.name,
                 self.routes_summary())

    def _open(self, path: Path, **settings: Any) -> Any:
        from harness.models.llama_cpp_load import open_llama

        return open_llama(path, adapters=list(self.adapter_ggufs.values()), **settings)

    @contextlib.contextmanager
    def using(self, name: str | None) -> Iterator[None]:
        """Run the body with adapter ``name`` active (None: the plain backbone)."""
        if name != self._active:
            from harness.models.llama_cpp_load import switch

            start = time.perf_counter()
            switch(self.llm, None if name is None else self._handles[name])
            self.switch_seconds.append(time.perf_counter() - start)
            self._active = name
        yield

    def get_model_info(self) -> dict[str, Any]:
        info = super().get_model_info()
        info.update(self.adapters_info())
        info["adapter_ggufs"] = {name: str(path) for name, path in self.adapter_ggufs.items()}
        if self.switch_seconds:
            # the call alone: llama.cpp rebuilds its graph at the next token, which lands in
            # that request's time (``slmbench bench`` times the two together)
            info["adapter_switch_call_ms_max"] = round(max(self.switch_seconds) * 1e3, 3)
        return info
