"""Classifier-free guidance (Ho & Salimans 2022) for a class-conditional velocity field.

A field trained with labels replaced by the null label (index ``num_classes``) with
probability p learns both v(t, x | y) and the unconditional v(t, x | null). Sampling follows

    v_w(t, x | y) = v(t, x | null) + w (v(t, x | y) - v(t, x | null)),

w = 1: the conditional field; w = 0: the unconditional one; w > 1: sharper, less diverse
samples. Both evaluations run as one network call on a doubled batch, which counts as one
function evaluation (NFE) of the ODE solve.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class GuidedField(nn.Module):
    """``v_w(t, x) `` for fixed labels [B] and guidance scale w (see module docstring)."""

    def __init__(self, field: nn.Module, labels: Tensor, null_label: int, scale: float) -> None:
        super().__init__()
        self.field = field
        self.labels = labels
        self.null_label = null_label
        self.scale = float(scale)

    def forward(self, t: Tensor, x: Tensor, **cond: Any) -> Tensor:
        if self.scale == 1.0:
            return self.field(t, x, y=self.labels)
        null = torch.full_like(self.labels, self.null_label)
        both = self.field(t, torch.cat([x, x]), y=torch.cat([self.labels, null]))
        conditional, unconditional = both.chunk(2)
        return unconditional + self.scale * (conditional - unconditional)


def drop_labels(labels: Tensor, null_label: int, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Labels with each one replaced by ``null_label`` with probability p (CFG training)."""
    if p <= 0:
        return labels
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, null_label), labels)
