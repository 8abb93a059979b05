"""``slm-hf``: lm-eval's ``hf`` model that understands ``pretrained=embedded``.

``slmbench lm-eval --model hf`` already resolves the embedded model on the command line;
this class gives the same behaviour to Python callers of ``lm_eval.simple_evaluate`` and to
lm-eval versions that discover models through the ``lm_eval.models`` entry point.
"""

from __future__ import annotations

from typing import Any

from lm_eval.models.huggingface import HFLM

from harness.models.embedded import resolve_pretrained


class EmbeddedAwareHFLM(HFLM):
    def __init__(self, pretrained: Any = None, **kwargs: Any) -> None:
        if pretrained is None or isinstance(pretrained, str):
            pretrained = resolve_pretrained(pretrained)
        super().__init__(pretrained=pretrained, **kwargs)
