"""Multi-layer perceptron used as a coupling network, and activations by name."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class _SELUFunction(torch.autograd.Function):
    """SELU forward as scale relu(x) + scale alpha (exp(min(x, 0)) - 1); gradient by torch's elu_backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        # below -60, exp(x) - 1 == -1 in float32 and float64: the clamp avoids denormal exp results
        negative = torch.clamp(x, min=-60.0, max=0.0).exp_().sub_(1.0).mul_(SELU_SCALE * SELU_ALPHA)
        return torch.relu(x).mul_(SELU_SCALE).add_(negative)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return torch.ops.aten.elu_backward(grad, SELU_ALPHA, SELU_SCALE, 1.0, False, x)


class SELU(nn.Module):
    """SELU(x) = scale x (x > 0), scale alpha (e^x - 1) (x <= 0) (Klambauer et al. 2017), the
    function and gradient of ``nn.SELU``. On CPU float tensors the forward uses exp instead of
    torch's elu kernel, whose expm1 is ~10x slower than exp there (a quarter of a 2-D flow-
    matching MLP step); elsewhere it is ``F.selu``."""

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
            return _SELUFunction.apply(x)
        return F.selu(x)


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "elu": nn.ELU, "selu": SELU, "silu": nn.SiLU}


def activation(name: str) -> nn.Module:
    """An activation module by name (one of ``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Sequential):
    """in_dim -> hidden (x num_hidden_layers, activation) -> out_dim.

    ``zero_init_last`` zeroes the output layer so a coupling built on it starts as the
    identity map, which keeps the first training steps stable.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int,
        num_hidden_layers: int,
        activation_name: str = "relu",
        zero_init_last: bool = True,
    ) -> None:
        if num_hidden_layers < 1:
            raise ValueError(f"num_hidden_layers must be >= 1, got {num_hidden_layers}")
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(num_hidden_layers):
            layers += [nn.Linear(width, hidden_dim), activation(activation_name)]
            width = hidden_dim
        last = nn.Linear(width, out_dim)
        if zero_init_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        super().__init__(*layers)
