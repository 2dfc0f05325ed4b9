"""Binary masks for coupling layers (1 = the conditioning part that passes unchanged)."""

from __future__ import annotations

import torch
from torch import Tensor


def alternating_mask(num_dims: int, parity: int) -> Tensor:
    """[D] mask selecting the even (parity 0) or odd (parity 1) entries of a flat vector."""
    return (torch.arange(num_dims) % 2 == parity).float()
