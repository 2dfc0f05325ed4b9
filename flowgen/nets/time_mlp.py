"""Time-conditioned MLP velocity field v(t, x) for low-dimensional data (torchcfm's toy MLP)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowgen.nets.mlp import MLP


class TimeMLP(nn.Module):
    """v(t, x) = MLP([x, t]): x [B, D], t [B] (or scalar) -> [B, D]."""

    def __init__(self, dim: int, hidden_dim: int = 64, num_hidden_layers: int = 3, activation: str = "selu") -> None:
        super().__init__()
        self.net = MLP(dim + 1, dim, hidden_dim, num_hidden_layers, activation, zero_init_last=False)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0]).reshape(-1, 1)
        return self.net(torch.cat([x, t], dim=1))
