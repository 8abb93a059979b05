"""``slm-hf``: lm-eval's ``hf`` that knows ``pretrained=embedded`` and prefills repeats once.

``slmbench lm-eval --model hf`` already resolves the embedded model on the command line;
this class gives the same behaviour to Python callers of ``lm_eval.simple_evaluate`` and to
lm-eval versions that discover models through the ``lm_eval.models`` entry point.

Maj@k sends every prompt k times (``repeats: k``), and lm-eval batches the k copies together.
On a CPU the prompt's prefill is most of the cost of a short answer, so identical rows of a
batch are prefilled once and their KV cache is shared by index before sampling continues;
the sampled tokens come from exactly the same distribution, at about half the time for Maj@4.
"""

from __future__ import annotations

from typing import Any

import torch
from lm_eval.models.huggingface import HFLM

from harness.artefacts.embedded import resolve_pretrained
from harness.models import TRANSFORMERS


class EmbeddedAwareHFLM(HFLM):
    PRETRAINED_FORMAT = TRANSFORMERS  # as lm-eval's HFLM (slmbench's defaults read this)

    def __init__(self, pretrained: Any = None, **kwargs: Any) -> None:
        if pretrained is None or isinstance(pretrained, str):
            pretrained = resolve_pretrained(pretrained)
        super().__init__(pretrained=pretrained, **kwargs)
        self._cpu_data_parallel()

    def _cpu_data_parallel(self) -> None:
        """Split requests over ``accelerate launch`` processes on CPU as lm-eval does on GPUs.

        lm-eval's HFLM sets up data parallelism only when it counts more than one GPU; on CPU
        every launched process would score every request. With several processes and no GPU,
        take rank and world size from the accelerator (gloo), so lm-eval shards the requests
        and gathers the answers on rank 0.
        """
        accelerator = getattr(self, "accelerator", None)
        if (accelerator is None or accelerator.num_processes < 2 or self._world_size > 1
                or accelerator.device.type != "cpu"):
            return
        self._rank = accelerator.process_index
        self._world_size = accelerator.num_processes

    def _model_generate(self, context, max_length: int, stop: list[str], **generation_kwargs):
        mask = generation_kwargs.get("attention_mask")
        if (self.backend != "causal" or mask is None or context.shape[0] < 2
                or context.shape[1] < 2 or "past_key_values" in generation_kwargs):
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        width = context.shape[1]
        rows = torch.cat([context, mask.to(context.dtype)], dim=1)
        unique, inverse = torch.unique(rows, dim=0, return_inverse=True)
        if unique.shape[0] == context.shape[0]:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        ids, unique_mask = unique[:, :width], unique[:, width:]
        # the positions generate() derives from a left-padded mask
        positions = (unique_mask.long().cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            prefix = self.model(input_ids=ids[:, :-1], attention_mask=unique_mask[:, :-1],
                                position_ids=positions[:, :-1], use_cache=True)
        cache = prefix.past_key_values
        cache.batch_select_indices(inverse.to(context.device))
        return super()._model_generate(context, max_length, stop, past_key_values=cache,
                                       **generation_kwargs)
