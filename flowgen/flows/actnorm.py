"""ActNorm (Glow): a per-channel affine map with data-dependent initialisation.

For x [B, C, *S] (S spatial dims, possibly none) and per-channel b, s in R^C:

    z = (x + b) * exp(s),        log|det dz/dx| = |S| * sum_c s_c   (nats, the same for every sample)

where |S| = prod(S) (H*W for images). The initialisation is an explicit step: inside
``data_init_mode(model)`` a forward pass of a training batch sets, for every ActNorm not yet
initialised and in training mode, b = -mean and s = log(scale / (std + eps)) over batch and
spatial positions, so its output on that batch has zero mean and std ``scale`` per channel (a channel with
std <= ``min_std``, constant on the batch, is only centred: s = 0).
Under torch.distributed the sums are all-reduced first, so every rank gets the same
parameters. A uint8 buffer ``initialized`` records the step; checkpoints carry it and a loaded
model is never re-initialised. Outside ``data_init_mode``, in eval mode, or once initialised,
the forward pass never changes the parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import Tensor, nn

from flowgen.flows.base import Bijection


class ActNorm(Bijection):
    """Per-channel z = (x + b) exp(s) on [B, C, *S]; see the module docstring for the init."""

    def __init__(self, num_channels: int, scale: float = 1.0, eps: float = 1e-6, min_std: float = 1e-4) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.scale = scale
        self.eps = eps
        self.min_std = min_std
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.log_scale = nn.Parameter(torch.zeros(num_channels))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))
        self.init_pending = False  # set only by ``data_init_mode``

    @property
    def is_initialized(self) -> bool:
        return bool(self.initialized.item())

    def _view(self, p: Tensor, x: Tensor) -> Tensor:
        return p.reshape(1, -1, *([1] * (x.dim() - 2)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.init_pending and self.training and not self.is_initialized:
            self.initialize(x)
        z = (x + self._view(self.bias, x)) * torch.exp(self._view(self.log_scale, x))
        num_positions = math.prod(x.shape[2:])
        return z, (num_positions * self.log_scale.sum()).expand(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return z * torch.exp(-self._view(self.log_scale, z)) - self._view(self.bias, z)

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set b, s from the per-channel moments of x (all-reduced over ranks); mark initialised."""
        dims = [0, *range(2, x.dim())]
        x64 = x.detach().double()
        total = x64.sum(dims)
        stats = torch.stack([total, x64.pow(2).sum(dims), torch.full_like(total, x64.numel() / x.shape[1])])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)  # sums, sums of squares and counts over every rank's batch
        total, total_sq, count = stats
        mean = total / count
        std = (total_sq / count - mean.pow(2)).clamp_min(0.0).sqrt()
        # a constant channel (e.g. a coupling network's input that is all masked) is only centred
        std = torch.where(std > self.min_std, std + self.eps, torch.full_like(std, self.scale))
        self.bias.copy_(-mean)
        self.log_scale.copy_(torch.log(self.scale / std))
        self.initialized.fill_(1)


def actnorms(module: nn.Module) -> list[ActNorm]:
    """Every ActNorm inside ``module`` (itself included), in registration order."""
    return [m for m in module.modules() if isinstance(m, ActNorm)]


def needs_data_init(module: nn.Module) -> bool:
    """True while some ActNorm in ``module`` has not been initialised."""
    return any(not m.is_initialized for m in actnorms(module))


@contextmanager
def data_init_mode(module: nn.Module) -> Iterator[None]:
    """Within this block, a forward pass initialises each uninitialised ActNorm in training mode
    from the batch it sees (in forward order, so later layers see normalised inputs)."""
    norms = actnorms(module)
    for m in norms:
        m.init_pending = True
    try:
        yield
    finally:
        for m in norms:
            m.init_pending = False
