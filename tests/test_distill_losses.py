"""Distillation losses against torch.distributions and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from harness.train.distill_losses import kd_loss


def _logits(seed: int, shape=(2, 3, 7)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2


def test_forward_and_reverse_kl_are_torchs_kl_averaged_over_the_mask():
    student, teacher = _logits(0), _logits(1)
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    p, q = Categorical(logits=teacher), Categorical(logits=student)
    forward, reverse = kl_divergence(p, q), kl_divergence(q, p)
    chosen = mask.bool()
    assert kd_loss(student, teacher, mask, "forward") == pytest.approx(
        float(forward[chosen].mean()), rel=1e-5)
    assert kd_loss(student, teacher, mask, "reverse") == pytest.approx(
        float(reverse[chosen].mean()), rel=1e-5)


def test_temperature_softens_both_and_scales_by_its_square():
    student, teacher = _logits(2), _logits(3)
    mask = torch.ones(2, 3)
    t = 2.0
    expected = kl_divergence(Categorical(logits=teacher / t),
                             Categorical(logits=student / t)).mean() * t * t
    assert kd_loss(student, teacher, mask, "forward", temperature=t) == pytest.approx(
        float(expected), rel=1e-5)


def test_skew_kl_by_hand_and_its_limits():
    # One position, two tokens: p = (0.8, 0.2), q = (0.5, 0.5), a = 0.1
    # mix = 0.1 p + 0.9 q = (0.53, 0.47); KL(p || mix) = 0.8 ln(0.8/0.53) + 0.2 ln(0.2/0.47)
    teacher = torch.log(torch.tensor([[[0.8, 0.2]]]))
    student = torch.log(torch.tensor([[[0.5, 0.5]]]))
    mask = torch.ones(1, 1)
    by_hand = 0.8 * math.log(0.8 / 0.53) + 0.2 * math.log(0.2 / 0.47)
    assert kd_loss(student, teacher, mask, "skew", skew_alpha=0.1) == pytest.approx(by_hand)
    assert kd_loss(student, teacher, mask, "skew", skew_alpha=0.0) == pytest.approx(
        float(kd_loss(student, teacher, mask, "forward")))
    # the skew KL is bounded where forward KL is not: a student that rules a token out
    hard = torch.tensor([[[0.0, -60.0]]])
    assert kd_loss(hard, teacher, mask, "forward") > 10
    assert kd_loss(hard, teacher, mask, "skew", skew_alpha=0.1) < -0.2 * math.log(0.1) + 0.1


def test_identical_distributions_cost_nothing_and_bad_requests_fail():
    logits = _logits(4)
    mask = torch.ones(2, 3)
    for kind in ("forward", "reverse", "skew"):
        assert kd_loss(logits, logits, mask, kind) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="unknown distillation loss 'jsd'"):
        kd_loss(logits, logits, mask, "jsd")
    with pytest.raises(ValueError, match="same tokenizer needed"):
        kd_loss(logits, _logits(5, (2, 3, 9)), mask)


def test_gradient_reaches_the_student_only():
    student = _logits(6).requires_grad_()
    teacher = _logits(7).requires_grad_()
    kd_loss(student, teacher.detach(), torch.ones(2, 3), "forward").backward()
    assert student.grad is not None and float(student.grad.abs().sum()) > 0
