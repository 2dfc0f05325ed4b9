"""Channel mixing for images [B, C, H, W]: invertible 1x1 convolutions and fixed permutations.

A 1x1 convolution applies one matrix W [C, C] at every position:

    z[:, :, h, w] = W x[:, :, h, w],      log|det dz/dx| = H W log|det W|.

- ``InvConv1x1``: W a free parameter (initialised to a random rotation); log|det W| by
  ``slogdet`` in fp64, O(C^3) per step.
- ``LUInvConv1x1`` (Glow's default): W = P L (U + diag(sign(s) exp(log|s|))) with P a fixed
  permutation, L unit lower triangular, U strictly upper triangular, and the log-det is
  H W sum(log|s|), O(C).
- ``ChannelPermutation``: W a fixed permutation matrix (RealNVP-style ``reverse`` or a seeded
  ``shuffle``), log|det| = 0.

Inverses use W^-1 computed in fp64 from the assembled matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowgen.flows.base import Bijection


def random_rotation(num_channels: int, generator: torch.Generator | None = None) -> Tensor:
    """A random orthogonal [C, C] matrix (Q of the QR decomposition of a Gaussian matrix)."""
    q, _ = torch.linalg.qr(torch.randn(num_channels, num_channels, generator=generator, dtype=torch.float64))
    return q.float()


def _conv1x1(x: Tensor, weight: Tensor) -> Tensor:
    return F.conv2d(x, weight.to(x.dtype).reshape(*weight.shape, 1, 1))


class InvConv1x1(Bijection):
    """Unconstrained W; log|det| = H W slogdet(W) (fp64)."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(random_rotation(num_channels))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logabsdet = torch.linalg.slogdet(self.weight.double()).logabsdet.to(x.dtype)
        return _conv1x1(x, self.weight), (x.shape[2] * x.shape[3] * logabsdet).expand(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return _conv1x1(z, torch.linalg.inv(self.weight.double()))


class LUInvConv1x1(Bijection):
    """W = P L (U + diag(sign_s exp(log_s))); log|det| = H W sum(log_s), O(C).

    Parameters: ``lower`` (strictly lower part used, unit diagonal implied), ``upper`` (strictly
    upper part used), ``log_s`` [C]. Buffers: the permutation ``perm`` [C, C] and ``sign_s`` [C].
    Initialised from the LU decomposition of a random rotation.
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        p, lower, upper = torch.linalg.lu(random_rotation(num_channels).double())
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(num_channels, num_channels), -1))
        self.register_buffer("eye", torch.eye(num_channels))
        self.lower = nn.Parameter(torch.tril(lower, -1).float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())

    def weight(self) -> Tensor:
        """The assembled W [C, C]."""
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = x.shape[2] * x.shape[3] * self.log_s.sum()
        return _conv1x1(x, self.weight()), logdet.to(x.dtype).expand(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return _conv1x1(z, torch.linalg.inv(self.weight().double()))


class ChannelPermutation(Bijection):
    """z = x[:, perm] for a fixed permutation ``perm`` of the C channels; log|det| = 0."""

    def __init__(self, perm: Tensor) -> None:
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        if not torch.equal(torch.sort(perm).values, torch.arange(len(perm))):
            raise ValueError(f"not a permutation of 0..{len(perm) - 1}: {perm.tolist()}")
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return z[:, self.inverse_perm]


def reverse_permutation(num_channels: int) -> ChannelPermutation:
    """Channels in reverse order (RealNVP's alternation of which half is transformed)."""
    return ChannelPermutation(torch.arange(num_channels - 1, -1, -1))


def shuffle_permutation(num_channels: int, generator: torch.Generator | None = None) -> ChannelPermutation:
    """A random (fixed after construction, stored as a buffer) channel permutation."""
    return ChannelPermutation(torch.randperm(num_channels, generator=generator))
