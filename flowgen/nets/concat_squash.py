"""Concat-squash MLP: FFJORD's time-conditioned vector field for 2-D and tabular data.

A concat-squash layer gates a linear map of x by a function of time and adds a time bias,

    h = (W x + b) * sigmoid(W_g t + b_g) + W_b t,

and the field stacks such layers with an activation (tanh or softplus) in between:
v(t, x) = L_out(act(... act(L_1(t, x)))). The last layer starts at zero (W = b = W_b = 0),
so v = 0 and the flow is the identity at initialisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from flowgen.continuous.vector_field import VectorField
from flowgen.nets.mlp import activation


def time_column(t: Tensor, x: Tensor) -> Tensor:
    """t as [1, 1] (one time for the batch) or [B, 1] (one per sample), in x's dtype/device."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.reshape(-1, 1)


class ConcatSquashLinear(nn.Module):
    """(W x + b) * sigmoid(W_g t + b_g) + W_b t for x [B, in_dim], t [1 or B, 1]."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.gate = nn.Linear(1, out_dim)
        self.time_bias = nn.Linear(1, out_dim, bias=False)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.linear(x) * torch.sigmoid(self.gate(t)) + self.time_bias(t)

    def zero_(self) -> ConcatSquashLinear:
        for p in (self.linear.weight, self.linear.bias, self.time_bias.weight):
            nn.init.zeros_(p)
        return self


class ConcatSquashMLP(VectorField):
    """v(t, x) for x [B, dim]: ``hidden_dims`` concat-squash layers with ``activation_name``."""

    def __init__(self, dim: int, hidden_dims: Sequence[int] = (64, 64, 64), activation_name: str = "tanh",
                 zero_init_last: bool = True) -> None:
        super().__init__()
        widths = [dim, *hidden_dims, dim]
        self.layers = nn.ModuleList(ConcatSquashLinear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activations = nn.ModuleList(activation(activation_name) for _ in hidden_dims)
        if zero_init_last:
            self.layers[-1].zero_()

    def forward(self, t: Tensor, x: Tensor, **cond: Any) -> Tensor:
        if cond:
            raise TypeError(f"ConcatSquashMLP takes no conditioning, got {sorted(cond)}")
        tc = time_column(t, x)
        h = x
        for layer, act in zip(self.layers[:-1], self.activations):
            h = act(layer(tc, h))
        return self.layers[-1](tc, h)
