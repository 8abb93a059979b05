"""``hf-peft``: one frozen backbone, one LoRA adapter per task, chosen per request.

lm-eval hands every request its task name (``Instance.task_name``) and sends the requests of
all tasks to the model together. This class splits each batch of requests by the adapter its
task routes to, activates that adapter (``PeftModel.set_adapter``: a pointer swap, no reload)
or disables adapters for unmapped tasks, and lets lm-eval's ``HFLM`` do the actual scoring, so
tokenization, batching and chat templates are exactly those of ``--model hf``.

``adapters=adapters_zoo/<name>.yaml`` loads a verified manifest (sha256, base model,
safetensors only); ``peft=<path>`` keeps lm-eval's own single-adapter behaviour, applied to
every task.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from harness.artefacts.zoo_manifest import Manifest, load_manifest, verify_entry
from harness.errors import SlmbenchError
from harness.models.hf_lm import EmbeddedAwareHFLM
from harness.models.task_routing import TaskRouting

log = logging.getLogger(__name__)


class RoutedPeftLM(TaskRouting, EmbeddedAwareHFLM):
    def __init__(self, pretrained: Any = None, adapters: str | None = None,
                 peft: str | None = None, **kwargs: Any) -> None:
        if adapters and peft:
            raise SlmbenchError("hf-peft: pass adapters=<manifest.yaml> or peft=<path>, not both")
        self.manifest: Manifest | None = load_manifest(adapters) if adapters else None
        if pretrained is None and self.manifest is not None:
            pretrained = self.manifest.base_model
        super().__init__(pretrained=pretrained, peft=peft, **kwargs)
        self.single_adapter = "peft" if peft else None
        self.switch_seconds: list[float] = []
        if self.manifest is not None:
            self._attach_adapters(self.manifest)

    def _attach_adapters(self, manifest: Manifest) -> None:
        from peft import PeftModel

        model = self._model
        for i, entry in enumerate(manifest.adapters):
            folder = verify_entry(manifest, entry, self.pretrained, model.config)
            if i == 0:
                model = PeftModel.from_pretrained(model, str(folder), adapter_name=entry.name)
            else:
                model.load_adapter(str(folder), adapter_name=entry.name)
        model.eval()
        self._model = model
        log.info("hf-peft: %d adapters over one backbone: %s", len(manifest.adapters),
                 self.routes_summary())

    @contextlib.contextmanager
    def using(self, name: str | None) -> Iterator[None]:
        """Run the body with adapter ``name`` active (None: adapters disabled)."""
        if self.manifest is None:
            yield
            return
        if name is None:
            with self._model.disable_adapter():
                yield
            return
        # Ask peft, not a cached name: anyone holding the model may have switched it.
        if self._model.active_adapter != name:
            start = time.perf_counter()
            self._model.set_adapter(name, inference_mode=True)
            self.switch_seconds.append(time.perf_counter() - start)
        yield

    def get_model_info(self) -> dict:
        info = super().get_model_info()
        info.update(self.adapters_info())
        if self.switch_seconds:
            info["adapter_switch_ms_max"] = round(max(self.switch_seconds) * 1e3, 3)
        return info
