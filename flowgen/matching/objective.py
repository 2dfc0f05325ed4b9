"""The conditional flow-matching regression objective (Lipman et al. 2023; Tong et al. 2024).

    L(theta) = E_{t ~ p(t), (x0, x1) ~ pi, eps} || v_theta(t, x_t) - u_t(x_t | x0, x1) ||^2,

with (x_t, u_t) from a probability path, pi the independent or minibatch-OT coupling of
source and data samples, and t from a time sampler. The mean is over batch and dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from flowgen.matching.coupling import COUPLINGS, pair
from flowgen.matching.paths import AffinePath
from flowgen.matching.time_sampler import TIME_SAMPLERS, sample_time


class FlowMatchingObjective:
    """Callable ``(velocity, x0, x1, generator, **cond) -> scalar loss``.

    Args:
        path: the conditional probability path.
        coupling: ``independent`` (I-CFM / CondOT) or ``ot`` (OT-CFM: exact minibatch OT).
        time_sampler: ``uniform`` or ``logit_normal`` (with ``time_mean``, ``time_std``).
    """

    def __init__(
        self,
        path: AffinePath,
        coupling: str = "independent",
        time_sampler: str = "uniform",
        time_mean: float = 0.0,
        time_std: float = 1.0,
    ) -> None:
        if coupling not in COUPLINGS:
            raise ValueError(f"unknown coupling {coupling!r}; choose one of {COUPLINGS}")
        if time_sampler not in TIME_SAMPLERS:
            raise ValueError(f"unknown time sampler {time_sampler!r}; choose one of {TIME_SAMPLERS}")
        self.path = path
        self.coupling = coupling
        self.time_sampler = time_sampler
        self.time_kwargs = {"mean": time_mean, "std": time_std}

    def __call__(
        self,
        velocity: Callable[..., Tensor],
        x0: Tensor,
        x1: Tensor,
        generator: torch.Generator | None = None,
        **cond: Any,
    ) -> Tensor:
        x0, x1 = pair(x0, x1, self.coupling)
        t = sample_time(x1.shape[0], self.time_sampler, generator, x1.device, **self.time_kwargs)
        noise = None
        if self.path.noise_std > 0:
            noise = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
        xt, ut = self.path.sample(x0, x1, t, noise)
        return (velocity(t, xt, **cond) - ut).pow(2).mean()
