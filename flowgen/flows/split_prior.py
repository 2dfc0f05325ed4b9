"""Diagonal Gaussian priors of the latents of a multi-scale flow.

Each prior is N(mean, diag(exp(log_std))^2) over a latent z [B, C, H, W], with (mean, log_std)
fixed, learned, or computed from the part of the activations that stays in the flow (``cond``):

    log p(z | cond) = sum_i [ -(z_i - mean_i)^2 / (2 exp(2 log_std_i)) - log_std_i - ln(2 pi) / 2 ]

(Tensor[B], nats). Sampling at temperature T draws z = mean + T exp(log_std) eps, eps ~ N(0, I);
likelihoods are always at T = 1.

- ``StandardGaussian``: N(0, I) (RealNVP's factored-out latents and top prior).
- ``LearnedGaussian``: a learned per-channel mean and log-std (Glow's learned top prior),
  zero-initialised, so it starts as N(0, I).
- ``ConditionalGaussian``: (mean, log_std) = ZeroConv2d(cond) (Glow's split prior: the factored-out
  half given the half that stays), also N(0, I) at initialisation.
- ``ClassConditionalGaussian``: the learned top prior shifted by a label embedding, with an
  auxiliary classifier (Glow's class-conditional model); ``cond`` is the label tensor.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flowgen.flows.base import sum_except_batch
from flowgen.nets.glow_net import ZeroConv2d


class DiagonalGaussian(nn.Module):
    """Base class: subclasses give ``params(cond, batch_size)`` -> (mean, log_std) broadcastable
    to [B, *shape]; ``shape`` is the latent shape without batch."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def params(self, cond: Tensor | None, batch_size: int) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def log_prob(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        mean, log_std = self.params(cond, z.shape[0])
        log_p = -0.5 * ((z - mean) * torch.exp(-log_std)).pow(2) - log_std - 0.5 * math.log(2.0 * math.pi)
        return sum_except_batch(log_p.expand_as(z))

    def sample(
        self,
        num_samples: int,
        cond: Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> Tensor:
        mean, log_std = self.params(cond, num_samples)
        eps = torch.randn((num_samples, *self.shape), generator=generator, device=device or mean.device, dtype=mean.dtype)
        return mean + temperature * torch.exp(log_std) * eps


class StandardGaussian(DiagonalGaussian):
    """N(0, I) on latents of ``shape``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__(shape)
        self.register_buffer("zero", torch.zeros(()))

    def params(self, cond: Tensor | None, batch_size: int) -> tuple[Tensor, Tensor]:
        return self.zero, self.zero


class LearnedGaussian(DiagonalGaussian):
    """Per-channel learned mean and log-std, shared over positions (Glow's ``learntop``)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__(shape)
        self.mean = nn.Parameter(torch.zeros(shape[0]))
        self.log_std = nn.Parameter(torch.zeros(shape[0]))

    def params(self, cond: Tensor | None, batch_size: int) -> tuple[Tensor, Tensor]:
        view = (1, -1, *([1] * (len(self.shape) - 1)))
        return self.mean.reshape(view), self.log_std.reshape(view)


class ConditionalGaussian(DiagonalGaussian):
    """(mean, log_std) = ZeroConv2d(cond) for z [B, C, H, W] given cond [B, C_cond, H, W]."""

    def __init__(self, shape: tuple[int, int, int], cond_channels: int) -> None:
        super().__init__(shape)
        self.net = ZeroConv2d(cond_channels, 2 * shape[0])

    def params(self, cond: Tensor | None, batch_size: int) -> tuple[Tensor, Tensor]:
        if cond is None:
            raise ValueError("ConditionalGaussian needs the conditioning activations")
        mean, log_std = self.net(cond).chunk(2, dim=1)
        return mean, log_std


class ClassConditionalGaussian(LearnedGaussian):
    """Glow's class-conditional top prior (Kingma & Dhariwal 2018, appendix): per-channel mean and
    log-std plus a learned, zero-initialised embedding of the label c,

        (mean, log_std) = (m, s) + E[c],      E in R^{num_classes x 2C};

    and a small auxiliary classifier, logits = W mean_{h,w}(z) + b, whose cross-entropy (weighted)
    is added to the training loss. ``cond`` is the label tensor (int64 [B]); without labels the
    density is the mixture over a uniform label, log p(z) = logsumexp_c log p(z | c) - log C.
    """

    def __init__(self, shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__(shape)
        if num_classes < 2:
            raise ValueError(f"class conditioning needs num_classes >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.embedding = nn.Embedding(num_classes, 2 * shape[0])
        nn.init.zeros_(self.embedding.weight)
        self.classifier = nn.Linear(shape[0], num_classes)

    def params(self, cond: Tensor | None, batch_size: int) -> tuple[Tensor, Tensor]:
        if cond is None:
            raise ValueError("ClassConditionalGaussian.params needs labels")
        view = (-1, self.shape[0], *([1] * (len(self.shape) - 1)))
        mean, log_std = self.embedding(cond.long()).chunk(2, dim=1)
        return self.mean.reshape(view) + mean.reshape(view), self.log_std.reshape(view) + log_std.reshape(view)

    def log_prob(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        if cond is not None:
            return super().log_prob(z, cond)
        conditional = super().log_prob
        labels = torch.arange(self.num_classes, device=z.device)
        per_class = torch.stack([conditional(z, c.expand(z.shape[0])) for c in labels], dim=1)
        return torch.logsumexp(per_class, dim=1) - math.log(self.num_classes)

    def sample(self, num_samples: int, cond: Tensor | None = None, temperature: float = 1.0,
               generator: torch.Generator | None = None, device: torch.device | None = None) -> Tensor:
        device = device or self.mean.device
        if cond is None:
            cond = torch.randint(0, self.num_classes, (num_samples,), generator=generator, device=device)
        return super().sample(num_samples, cond.to(device), temperature, generator, device)

    def class_logits(self, z: Tensor) -> Tensor:
        """Logits [B, num_classes] of the auxiliary classifier from the spatial mean of z."""
        return self.classifier(z.reshape(z.shape[0], z.shape[1], -1).mean(dim=2))
