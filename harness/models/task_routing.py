"""Per-task adapter routing shared by ``hf-peft``, ``llama-cpp-peft`` and ``vllm-peft``.

lm-eval hands every request its task name (``Instance.task_name``) and sends the requests of
all tasks together. A routed model splits each call by the adapter its task routes to, runs
each group with that adapter active, and puts the answers back in request order, so the
engine's own batching, tokenization and chat templates apply unchanged within a group.
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import Callable
from typing import Any

from harness.artefacts.zoo_manifest import Manifest


class TaskRouting(abc.ABC):
    """Mixin: subclasses set ``manifest`` and implement ``using(name)``.

    Abstract, so an engine that forgets ``using`` fails when built rather than answering
    every task on the plain backbone while its pages say "routed".
    """

    manifest: Manifest | None = None
    single_adapter: str | None = None  # lm-eval's own one-adapter-for-every-task mode
    # Seconds spent answering and requests answered, per request type: an engine's evaluation
    # speed without the imports, data loading and model load that a run's wall time also holds
    # (and, counted, without the requests a resumed run took from its response cache).
    request_seconds: dict[str, float] | None = None
    request_counts: dict[str, int] | None = None

    def adapter_for(self, task_name: str | None) -> str | None:
        """Adapter name serving ``task_name``; None runs the plain backbone."""
        if self.manifest is None:
            return self.single_adapter
        entry = self.manifest.route(task_name)
        return entry.name if entry else None

    @abc.abstractmethod
    def using(self, name: str | None) -> contextlib.AbstractContextManager[None]:
        """A context in which the engine answers with adapter ``name`` (None: the backbone)."""

    def routed(self, method: Callable[..., list], requests: list, **kwargs: Any) -> list:
        start = time.perf_counter()
        groups: dict[str | None, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(self.adapter_for(request.task_name), []).append(i)
        results: list[Any] = [None] * len(requests)
        for name, indices in groups.items():
            with self.using(name):
                outputs = method([requests[i] for i in indices], **kwargs)
            for i, output in zip(indices, outputs, strict=True):
                results[i] = output
        name = method.__name__
        seconds = self.request_seconds = dict(self.request_seconds or {})
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        counts = self.request_counts = dict(self.request_counts or {})
        counts[name] = counts.get(name, 0) + len(requests)
        return results

    # lm-eval's three request types, each split by adapter. The mixin comes first in a routed
    # model's bases, so ``super()`` here is the engine's own LM (hf, llama.cpp, vLLM).
    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
        return self.routed(super().loglikelihood, requests, disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list:
        return self.routed(super().loglikelihood_rolling, requests, disable_tqdm=disable_tqdm)

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list:
        return self.routed(super().generate_until, requests, disable_tqdm=disable_tqdm)

    def routes_summary(self) -> str:
        """``name<-route|route, ...`` for the log line a routed model prints on load."""
        if self.manifest is None:
            return ""
        return ", ".join(f"{a.name}<-{'|'.join(a.routes)}" for a in self.manifest.adapters)

    def adapters_info(self) -> dict[str, Any]:
        """What ``get_model_info`` adds: the manifest's adapters, for the results JSON."""
        timing = ({"request_seconds": {k: round(v, 3) for k, v in self.request_seconds.items()},
                   "request_counts": dict(self.request_counts or {})}
                  if self.request_seconds else {})
        if self.manifest is None:
            return timing
        return {**timing, "adapters": [{"name": a.name, "task": a.task, "routes": a.routes,
                              "sha256": a.sha256, "rank": a.rank, "base_model": a.base_model}
                             for a in self.manifest.adapters],
                "adapter_manifest": str(self.manifest.path)}
