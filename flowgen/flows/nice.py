"""NICE (Dinh et al. 2015): additive couplings on the flattened input and a diagonal scale.

    y --pre--> x --flatten--> [additive coupling (even | odd halves, alternating)] x L
      --> z = exp(s) * h,    log p(y) = log p_Z(z) + sum_i s_i + log|det pre|

Each coupling is volume preserving, so the only log-det terms are the final scaling and
the preprocessing. The prior is logistic (paper) or Gaussian.
"""

from __future__ import annotations

from flowgen.flows.base import Chain, Flatten
from flowgen.flows.coupling import AdditiveCoupling
from flowgen.flows.flow_model import FlowModel
from flowgen.flows.masks import alternating_mask
from flowgen.flows.preprocess import build_preprocess
from flowgen.flows.priors import build_prior
from flowgen.flows.scaling import DiagonalScale
from flowgen.nets.mlp import MLP


def build_nice(
    data_shape: tuple[int, ...],
    is_image: bool,
    num_couplings: int = 4,
    hidden_dim: int = 1000,
    num_hidden_layers: int = 5,
    activation: str = "relu",
    prior: str = "logistic",
    preprocess: str = "logit",
    logit_alpha: float = 0.05,
    zero_init: bool = False,
) -> FlowModel:
    """NICE for data of shape ``data_shape``; ``preprocess`` applies to image data only.

    ``zero_init`` starts every coupling at the identity. It is off by default: on symmetric
    data (e.g. 8gaussians, E[x2 | x1] = 0) the identity is a saddle point of the likelihood
    of additive couplings, and training never leaves it.
    """
    if num_couplings < 2:
        raise ValueError(f"NICE needs num_couplings >= 2 so every dimension is transformed, got {num_couplings}")
    num_dims = 1
    for size in data_shape:
        num_dims *= size
    couplings = [
        AdditiveCoupling(
            alternating_mask(num_dims, parity=i % 2),
            MLP(num_dims, num_dims, hidden_dim, num_hidden_layers, activation, zero_init_last=zero_init),
        )
        for i in range(num_couplings)
    ]
    transform = Chain([Flatten(data_shape), *couplings, DiagonalScale((num_dims,))])
    pre = build_preprocess(preprocess if is_image else "identity", logit_alpha)
    return FlowModel(pre, transform, build_prior(prior), data_shape)
