"""Multi-scale flows (RealNVP, Glow): transform, factor out half the channels, repeat.

With y the dequantised data, x_0 = pre(y), and L levels f_1 .. f_L (each a ``Bijection``):

    for l = 1 .. L-1:   [h_l, z_l] = f_l(x_{l-1})      (split along channels: h_l kept, z_l out)
                        x_l = h_l
    z_L = f_L(x_{L-1})

    log p(y) = sum_{l<L} log p_l(z_l | h_l) + log p_L(z_L) + sum_l log|det J_{f_l}| + log|det J_pre|

in nats. The factored-out latents' densities p_l are part of log p(y): N(0, I) in RealNVP,
a Gaussian whose mean and log-std come from h_l in Glow (``split_prior.ConditionalGaussian``).

``forward(y) -> ([z_1, ..., z_L], logdet)``; ``inverse([z_1, ..., z_L]) -> y`` reconstructs y
from the full list of latents. ``inverse`` also accepts ``None`` entries for l < L: those
latents are drawn from their prior at ``temperature`` given the level above, which is how
``sample`` works (temperature scales every level's prior std).

ActNorm layers anywhere inside are initialised by ``data_init(y)`` (an explicit step, see
``flowgen.flows.actnorm``); ``needs_data_init()`` says whether that is still to be done.

With a class-conditional top prior (``split_prior.ClassConditionalGaussian``, ``num_classes`` > 0),
``log_prob(y, labels)`` is log p(y | c); without labels it is the marginal over a uniform label.
``log_prob_with_penalties(y, labels)`` adds the auxiliary classifier's cross-entropy (nats,
times ``class_loss_weight``) as ``class_loss``; ``sample(..., labels=...)`` draws given labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowgen.flows.actnorm import data_init_mode
from flowgen.flows.actnorm import needs_data_init as _needs_data_init
from flowgen.flows.base import Bijection
from flowgen.flows.split_prior import DiagonalGaussian


def split_channels(x: Tensor) -> tuple[Tensor, Tensor]:
    """[B, C, H, W] -> (kept h [B, C - C//2, ...], factored-out z [B, C//2, ...])."""
    keep = x.shape[1] - x.shape[1] // 2
    return x[:, :keep], x[:, keep:]


class MultiScaleFlow(nn.Module):
    """``levels[l]`` maps the kept activations of level l-1 on; ``priors[l]`` is the density of
    the latent factored out after level l (conditioned on the kept part), ``priors[-1]`` the
    top prior. Latent shapes are the priors' ``shape``."""

    def __init__(
        self,
        preprocess: Bijection,
        levels: Sequence[Bijection],
        priors: Sequence[DiagonalGaussian],
        data_shape: tuple[int, ...],
        class_loss_weight: float = 0.01,
    ) -> None:
        super().__init__()
        self.class_loss_weight = class_loss_weight
        if len(levels) != len(priors) or not levels:
            raise ValueError(f"need one prior per level, got {len(levels)} levels and {len(priors)} priors")
        self.preprocess = preprocess
        self.levels = nn.ModuleList(levels)
        self.priors = nn.ModuleList(priors)
        self.data_shape = tuple(data_shape)

    @property
    def num_scales(self) -> int:
        return len(self.levels)

    @property
    def num_classes(self) -> int:
        """Labels the top prior is conditioned on (0: unconditional)."""
        return int(getattr(self.priors[-1], "num_classes", 0))

    def latent_shapes(self) -> list[tuple[int, ...]]:
        """Shape (without batch) of each z_l, finest level first."""
        return [prior.shape for prior in self.priors]

    def _encode(self, y: Tensor) -> tuple[list[Tensor], list[Tensor | None], Tensor]:
        """Latents z_l, the kept activations h_l they are conditioned on (None for the top), logdet."""
        x, logdet = self.preprocess(y)
        zs: list[Tensor] = []
        conds: list[Tensor | None] = []
        for index, level in enumerate(self.levels):
            x, ld = level(x)
            logdet = logdet + ld
            if index < self.num_scales - 1:
                x, z = split_channels(x)
                zs.append(z)
                conds.append(x)
        zs.append(x)
        conds.append(None)
        return zs, conds, logdet

    def forward(self, y: Tensor) -> tuple[list[Tensor], Tensor]:
        """y [B, *data_shape] -> ([z_1, ..., z_L], log|det dz/dy| Tensor[B], preprocessing included)."""
        zs, _, logdet = self._encode(y)
        return zs, logdet

    def _log_prob(self, zs: list[Tensor], conds: list[Tensor | None], logdet: Tensor, labels: Tensor | None) -> Tensor:
        conds = [*conds[:-1], labels]  # the top prior is conditioned on the labels, if on anything
        log_p = logdet
        for prior, z, cond in zip(self.priors, zs, conds):
            log_p = log_p + prior.log_prob(z, cond)
        return log_p

    def log_prob(self, y: Tensor, labels: Tensor | None = None) -> Tensor:
        """log p(y) in nats, Tensor[B] (every level's prior and every log-det included);
        log p(y | labels) for a class-conditional model given labels."""
        zs, conds, logdet = self._encode(y)
        return self._log_prob(zs, conds, logdet, labels)

    def log_prob_with_penalties(self, y: Tensor, labels: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """(log p(y [| labels]), {"class_loss": weight * cross-entropy}) -- the penalty only for a
        class-conditional model given labels (Glow's auxiliary classifier on the top latent)."""
        zs, conds, logdet = self._encode(y)
        log_p = self._log_prob(zs, conds, logdet, labels)
        if not self.num_classes or labels is None:
            return log_p, {}
        logits = self.priors[-1].class_logits(zs[-1])
        return log_p, {"class_loss": self.class_loss_weight * F.cross_entropy(logits, labels.long())}

    def inverse(
        self, zs: Sequence[Tensor | None], temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """[z_1, ..., z_L] -> y. A ``None`` z_l (l < L) is drawn from p_l(. | h_l) at ``temperature``."""
        if len(zs) != self.num_scales:
            raise ValueError(f"inverse needs {self.num_scales} latents (one per level), got {len(zs)}")
        if zs[-1] is None:
            raise ValueError("inverse needs the top latent z_L; use sample() to draw everything")
        x = zs[-1]
        for index in reversed(range(self.num_scales)):
            if index < self.num_scales - 1:
                z = zs[index]
                if z is None:
                    z = self.priors[index].sample(x.shape[0], x, temperature, generator, x.device)
                x = torch.cat([x, z], dim=1)
            x = self.levels[index].inverse(x)
        return self.preprocess.inverse(x)

    @torch.no_grad()
    def sample(
        self,
        num_samples: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """num_samples draws of y [n, *data_shape]; ``temperature`` scales every prior's std.
        ``labels`` (class-conditional models only; default: uniformly drawn) choose the classes."""
        if labels is not None and not self.num_classes:
            raise ValueError("labels given, but this model's top prior is not class-conditional")
        device = next(self.parameters()).device
        top = self.priors[-1].sample(num_samples, labels, temperature, generator, device)
        return self.inverse([None] * (self.num_scales - 1) + [top], temperature, generator)

    def needs_data_init(self) -> bool:
        """True while some ActNorm has not been initialised from data."""
        return _needs_data_init(self)

    @torch.no_grad()
    def data_init(self, y: Tensor) -> None:
        """Initialise every uninitialised ActNorm from the training batch y (all-reduced over
        ranks); does nothing in eval mode or when everything is initialised."""
        if self.training and self.needs_data_init():
            with data_init_mode(self):
                self._encode(y)


def check_image_shape(model: str, data_shape: tuple[int, ...], is_image: bool, num_scales: int, num_squeezes: int) -> None:
    """ValueError unless data_shape is [C, H, W] image data with H, W divisible by 2**num_squeezes."""
    if not is_image or len(data_shape) != 3:
        raise ValueError(
            f"{model} needs image data of shape [C, H, W]; got data shape {list(data_shape)} (is_image={is_image}). "
            "Use an image dataset (digits, mnist, cifar10, celeba, imagefolder), or model=nice for 2-D data."
        )
    if num_scales < 1:
        raise ValueError(f"{model} needs at least one level, got L={num_scales}")
    _, height, width = data_shape
    factor = 2**num_squeezes
    if height % factor or width % factor:
        largest = 0
        while height % 2 ** (largest + 1) == 0 and width % 2 ** (largest + 1) == 0:
            largest += 1
        raise ValueError(
            f"{model} with L={num_scales} levels squeezes the image {num_squeezes} time(s), so height and width "
            f"must be divisible by 2**{num_squeezes} = {factor}; got image size {height}x{width}. "
            f"Use L <= {largest + num_scales - num_squeezes} for this size, or resize the images."
        )
