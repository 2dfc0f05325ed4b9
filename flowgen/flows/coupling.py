"""Coupling layers: split x by a fixed binary mask, transform one part given the other.

With mask m (1 = conditioning part, kept) and a network ``net`` that sees only the kept part:

- additive (NICE):  z = x + (1 - m) t,                      log|det dz/dx| = 0;
- affine (RealNVP, Glow): (h, t) = net(kept part), split along dim 1,
                    z = m x + (1 - m) (x + t) s(h),        log|det dz/dx| = sum (1 - m) log s(h).

Inverses: x = z - (1 - m) t, and x = m z + (1 - m) (z / s(h) - t), with the network applied to
the kept part of z, which equals the kept part of x. Shifting before scaling (Glow's order)
keeps the inverse accurate in fp32 when s is small: the shift's rounding error is not divided
by s.

Two ways to feed the network, chosen from the mask's shape:

- *split mode*, for per-channel masks [1, C, 1, 1] (``channel_mask``): the network maps the
  C_kept kept channels to (2x) C_free values for the transformed channels only (Glow's form;
  half the input and output channels of a masked network);
- *mask mode*, for every other mask (checkerboard [1, 1, H, W], flat [D] for NICE): the network
  maps m * x, all C channels, to (2x) C values, and the kept part is masked out of its output.

``coupling_channels(mask, C)`` gives the network's (input, output-per-quantity) channels.

Scale maps s(h) > 0, given as log s (``build_scale_map``):
- ``sigmoid``  (Glow):    s = sigmoid(h + 2), in (0, 1), about 0.88 at h = 0;
- ``exp_tanh`` (RealNVP): s = exp(a_c tanh(h)), a learned per-channel a_c (initialised to 1).

``checkpoint=True`` recomputes the network in the backward pass (gradient checkpointing):
less activation memory for one extra forward of the network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as checkpoint_fn

from flowgen.flows.base import Bijection, sum_except_batch

SCALE_MAPS = ("sigmoid", "exp_tanh")


def channel_split(mask: Tensor) -> tuple[Tensor, Tensor] | None:
    """(kept, transformed) channel indices of a per-channel mask [1, C, 1, ...]; None otherwise."""
    if mask.dim() < 3 or mask.shape[0] != 1 or any(size != 1 for size in mask.shape[2:]):
        return None
    flat = mask.reshape(-1)
    return torch.nonzero(flat != 0).flatten(), torch.nonzero(flat == 0).flatten()


def coupling_channels(mask: Tensor, num_channels: int) -> tuple[int, int]:
    """(input channels, channels per predicted quantity) of a coupling network for ``mask`` on
    inputs with ``num_channels`` channels: (C_kept, C_free) in split mode, (C, C) in mask mode."""
    split = channel_split(mask)
    if split is None:
        return num_channels, num_channels
    return len(split[0]), len(split[1])


def _run_net(net: nn.Module, x: Tensor, checkpoint: bool) -> Tensor:
    """net(x) in x's dtype (an autocast network may return bf16), checkpointed when asked and training."""
    if checkpoint and net.training and torch.is_grad_enabled():
        out = checkpoint_fn(net, x, use_reentrant=False)
    else:
        out = net(x)
    return out.to(x.dtype)


class _Coupling(Bijection):
    """Shared mask handling: ``_parts`` gives (network input, part to transform), ``_join``
    puts the transformed part back (see the module docstring for the two modes)."""

    def __init__(self, mask: Tensor, net: nn.Module, checkpoint: bool) -> None:
        super().__init__()
        self.register_buffer("mask", mask.float())
        self.net = net
        self.checkpoint = checkpoint
        split = channel_split(mask)
        self.split_mode = split is not None
        if split is not None:
            kept, free = split
            order = torch.cat([kept, free])
            self.register_buffer("kept_index", kept)
            self.register_buffer("free_index", free)
            self.reorder = not torch.equal(order, torch.arange(len(order)))
            self.register_buffer("join_index", torch.argsort(order))

    def _parts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.split_mode:
            return x[:, self.kept_index], x[:, self.free_index]
        return x * self.mask, x

    def _masked(self, value: Tensor) -> Tensor:
        """Network outputs apply to the transformed part only (mask mode); as is in split mode."""
        return value if self.split_mode else (1.0 - self.mask) * value

    def _join(self, x: Tensor, transformed: Tensor) -> Tensor:
        if not self.split_mode:
            return transformed  # the kept part passed through unchanged: shift 0, log-scale 0
        z = torch.cat([x[:, self.kept_index], transformed], dim=1)
        return z[:, self.join_index] if self.reorder else z


class AdditiveCoupling(_Coupling):
    """Volume-preserving coupling z = x + (1 - m) t(kept part)."""

    def __init__(self, mask: Tensor, net: nn.Module, checkpoint: bool = False) -> None:
        super().__init__(mask, net, checkpoint)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        kept, free = self._parts(x)
        shift = self._masked(_run_net(self.net, kept, self.checkpoint))
        return self._join(x, free + shift), x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        kept, free = self._parts(z)
        shift = self._masked(_run_net(self.net, kept, self.checkpoint))
        return self._join(z, free - shift)


class SigmoidScale(nn.Module):
    """log s = log sigmoid(h + 2) (Glow): s in (0, 1), so a coupling never expands volume."""

    def forward(self, h: Tensor) -> Tensor:
        return F.logsigmoid(h + 2.0)


class TanhScale(nn.Module):
    """log s = a_c tanh(h) with a learned per-channel a_c (RealNVP); |log s| <= |a_c|."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))

    def forward(self, h: Tensor) -> Tensor:
        return self.weight.reshape(1, -1, *([1] * (h.dim() - 2))) * torch.tanh(h)


def build_scale_map(name: str, num_channels: int) -> nn.Module:
    """One of ``SCALE_MAPS`` by name, for ``num_channels`` transformed channels (dim 1)."""
    if name == "sigmoid":
        return SigmoidScale()
    if name == "exp_tanh":
        return TanhScale(num_channels)
    raise ValueError(f"unknown scale map {name!r}; choose one of {SCALE_MAPS}")


class AffineCoupling(_Coupling):
    """z = m x + (1 - m)(x + t) s(h), (h, t) = net(kept part): ``net`` outputs h then t."""

    def __init__(self, mask: Tensor, net: nn.Module, scale_map: nn.Module, checkpoint: bool = False) -> None:
        super().__init__(mask, net, checkpoint)
        self.scale_map = scale_map

    def _log_scale_and_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        h, shift = _run_net(self.net, kept, self.checkpoint).chunk(2, dim=1)
        return self._masked(self.scale_map(h)), self._masked(shift)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        kept, free = self._parts(x)
        log_s, shift = self._log_scale_and_shift(kept)
        return self._join(x, (free + shift) * torch.exp(log_s)), sum_except_batch(log_s)

    def inverse(self, z: Tensor) -> Tensor:
        kept, free = self._parts(z)
        log_s, shift = self._log_scale_and_shift(kept)
        return self._join(z, free * torch.exp(-log_s) - shift)
