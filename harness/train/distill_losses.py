"""Token-level distillation losses between a teacher's and a student's next-token logits.

With p the teacher's and q the student's distribution at temperature T, over the positions a
mask selects (the answer tokens under ``--loss answer``):

* ``forward`` KL(p || q), vanilla KD (Hinton et al.): the student covers all the teacher's
  modes;
* ``reverse`` KL(q || p) (MiniLLM): the student fits the teacher's main mode;
* ``skew`` KL(p || a*p + (1-a)*q), the skew KL of DistiLLM (Ko et al., 2024): bounded and
  smoother in early training than forward KL; a = 0 is forward KL.

Each is multiplied by T^2, so gradients keep their scale as the temperature changes, and
averaged over the selected positions. TRL's GKD trainer computes forward and reverse KL as the
ends of its generalized JSD but has no skew KL, runs on ``transformers.Trainer`` (whose
checkpoints and records are not ``slmbench train``'s), and needs one tokenizer for both
models; these few lines keep distillation inside the same resumable loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - torch's own convention

KD_LOSSES = ("forward", "reverse", "skew")


def _masked_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(per_token.dtype)
    return (per_token * weights).sum() / weights.sum().clamp(min=1.0)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
            kind: str = "forward", temperature: float = 1.0,
            skew_alpha: float = 0.1) -> torch.Tensor:
    """Distillation loss; logits ``[batch, positions, vocab]``, mask ``[batch, positions]``."""
    if kind not in KD_LOSSES:
        raise ValueError(f"unknown distillation loss {kind!r} (known: {', '.join(KD_LOSSES)})")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ: same tokenizer needed")
    log_q = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    if kind == "forward":
        per_token = (log_p.exp() * (log_p - log_q)).sum(-1)
    elif kind == "reverse":
        per_token = (log_q.exp() * (log_q - log_p)).sum(-1)
    else:
        if not 0 <= skew_alpha < 1:
            raise ValueError(f"skew alpha must be in [0, 1), got {skew_alpha}")
        mixed = log_q if skew_alpha == 0 else torch.logsumexp(torch.stack(
            [log_p + math.log(skew_alpha), log_q + math.log(1 - skew_alpha)]), dim=0)
        per_token = (log_p.exp() * (log_p - mixed)).sum(-1)
    return _masked_mean(per_token, mask) * temperature**2
