"""Dual-space KD across vocabularies (DSKD with cross-model attention, Zhang et al., 2024).

Token-level KD compares two next-token distributions over one vocabulary, position by
position. A teacher with another tokenizer has neither: its tokens split the same text
elsewhere and its distribution ranges over other strings. DSKD makes both comparable by
projecting hidden states, not logits, and by letting attention align the two token sequences:

* Cross-model attention: queries are the student's (input, target) token embeddings, keys the
  teacher's (input, target) token embeddings, so each student position attends to the teacher
  positions that predict the same text. Padding of either side is masked.
* Student space: the attended teacher hidden states, projected to the student's width and put
  through the student's own (frozen) head, give the teacher's distribution over the student's
  vocabulary; the student is distilled toward it (``kd_loss``'s divergence) on its answer
  tokens. A cross-entropy on the labels trains the projectors, so the projected teacher
  predicts the text it was aligned to; the student sees that distribution detached.
* Teacher space: the student's hidden states, attended back onto the teacher's positions and
  projected to its width, go through the teacher's head and are distilled toward the teacher's
  own distribution on its answer tokens.

Only the projectors here are new parameters. They train with the student's optimizer, are
checkpointed with it (so a killed run resumes bit-identically) and are dropped after training:
the product is the student's adapter.

Caveat, as in the paper: the teacher's hidden states are teacher-forced, so the aligned
teacher can read the target text; its student-space distribution is a trained view of the
teacher, and its KL to the student is not comparable with same-vocabulary KD's.

TRL's GOLD trainer does cross-tokenizer distillation with ULD (sorted-probability matching),
not DSKD, and on ``transformers.Trainer``; this module keeps ``slmbench train``'s loop.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from harness.train.distill_losses import kd_loss

CROSS_VOCAB_METHODS = ("dskd",)


class CrossModelAttention(nn.Module):
    """DSKD's projectors: alignment (query/key) and the two hidden-state maps."""

    def __init__(self, student_embed: int, teacher_embed: int, student_hidden: int,
                 teacher_hidden: int) -> None:
        super().__init__()
        width = student_hidden
        self.query = nn.Linear(2 * student_embed, width)
        self.key_norm = nn.LayerNorm(2 * teacher_embed)
        self.key = nn.Linear(2 * teacher_embed, width)
        self.value_norm = nn.LayerNorm(teacher_hidden)
        self.teacher_to_student = nn.Linear(teacher_hidden, student_hidden)
        self.student_to_teacher = nn.Linear(student_hidden, teacher_hidden)

    def alignment(self, student_pairs: torch.Tensor, teacher_pairs: torch.Tensor,
                  teacher_mask: torch.Tensor) -> torch.Tensor:
        """Attention ``[batch, student positions, teacher positions]``, rows sum to 1."""
        q = self.query(student_pairs)
        k = self.key(self.key_norm(teacher_pairs))
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(~teacher_mask[:, None, :], torch.finfo(scores.dtype).min)
        return scores.softmax(-1)


def token_pairs(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Each position's (input, next-token target) embeddings, concatenated; last target = input."""
    embed = model.get_input_embeddings()(input_ids).float()
    nxt = torch.cat([embed[:, 1:], embed[:, -1:]], dim=1)
    return torch.cat([embed, nxt], dim=-1)


def head_inputs(model, call) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``call()``; return its logits and the hidden states the output head was fed."""
    captured: list[torch.Tensor] = []
    hook = model.get_output_embeddings().register_forward_hook(
        lambda _module, args, _out: captured.append(args[0]))
    try:
        out = call()
    finally:
        hook.remove()
    return out, captured[-1]


def dskd_loss(attention: CrossModelAttention, student, teacher, student_batch: dict,
              teacher_batch: dict, student_logits: torch.Tensor, student_hidden: torch.Tensor,
              kind: str, temperature: float, skew_alpha: float) -> dict[str, torch.Tensor]:
    """The KD terms in both spaces and the projectors' alignment loss, for one batch.

    ``*_batch`` are collated examples (``input_ids``, ``attention_mask``, ``labels``) of the
    same texts in each tokenizer; losses are taken where ``labels`` train (next-token shift).
    """
    with torch.no_grad():
        teacher_out, teacher_hidden = head_inputs(teacher, lambda: teacher(
            input_ids=teacher_batch["input_ids"], attention_mask=teacher_batch["attention_mask"]))
    teacher_logits = teacher_out.logits
    t_mask = teacher_batch["attention_mask"].bool()
    align = attention.alignment(token_pairs(student, student_batch["input_ids"]),
                                token_pairs(teacher, teacher_batch["input_ids"]), t_mask)
    s_mask = student_batch["attention_mask"].bool()

    # Student space: the teacher's hidden states aligned to student positions, student's head.
    values = attention.teacher_to_student(attention.value_norm(teacher_hidden.float()))
    teacher_in_student = student.get_output_embeddings()(
        (align @ values).to(student_hidden.dtype)).float()
    s_targets = student_batch["labels"][:, 1:]
    s_train = s_targets != -100
    align_ce = nn.functional.cross_entropy(
        teacher_in_student[:, :-1].transpose(1, 2), s_targets.clamp(min=0), reduction="none")
    align_ce = (align_ce * s_train).sum() / s_train.sum().clamp(min=1)
    kd_student = kd_loss(student_logits[:, :-1], teacher_in_student[:, :-1].detach(), s_train,
                         kind, temperature, skew_alpha)

    # Teacher space: student hidden states aligned back to teacher positions, teacher's head.
    back = align.transpose(1, 2) * s_mask[:, None, :]
    back = back / back.sum(-1, keepdim=True).clamp(min=1e-9)
    student_in_teacher = teacher.get_output_embeddings()(
        (back @ attention.student_to_teacher(student_hidden.float())).to(teacher_hidden.dtype))
    t_train = teacher_batch["labels"][:, 1:] != -100
    kd_teacher = kd_loss(student_in_teacher[:, :-1].float(), teacher_logits[:, :-1], t_train,
                         kind, temperature, skew_alpha)
    return {"kd": (kd_student + kd_teacher) / 2, "align_ce": align_ce,
            "kd_student_space": kd_student, "kd_teacher_space": kd_teacher}
