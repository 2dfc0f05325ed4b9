"""A continuous flow trained by flow matching: the FFJORD core plus a regression objective.

The model is a ``ContinuousFlow`` with one CNF block whose field is the velocity network, so
likelihood (reverse solve with exact or Hutchinson divergence) and sampling (forward solve)
are the same code as FFJORD's; only training differs:

    matching_loss(y) = E || v(t, x_t) - u_t ||^2,   x1 = pre(y), x0 ~ source (the prior).

Images are centred to [-1, 1] by default (log|det| = D ln 2 enters log p(y)), so bpd follows
the FM papers' convention: bpd = -log p(x) / (D ln 2) + log2(K) - 1 (7 for 8-bit data).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from flowgen.continuous.block import CNFBlock
from flowgen.continuous.cnf import ContinuousFlow
from flowgen.continuous.solver import SolverOptions
from flowgen.flows.preprocess import build_preprocess
from flowgen.flows.priors import build_prior
from flowgen.matching.objective import FlowMatchingObjective
from flowgen.matching.paths import build_path
from flowgen.nets.time_mlp import TimeMLP
from flowgen.nets.unet import UNet


class FlowMatchingModel(ContinuousFlow):
    """``ContinuousFlow`` of one velocity field with ``matching_loss`` for training."""

    def __init__(self, field: nn.Module, objective: FlowMatchingObjective, prior: nn.Module, data_shape: tuple[int, ...],
                 preprocess: nn.Module, divergence: str, probe: str, train_solver: Any, eval_solver: Any, probe_seed: int) -> None:
        super().__init__(CNFBlock(field, divergence, probe), prior, data_shape, data_shape, preprocess,
                         train_solver, eval_solver, None, probe_seed)
        self.objective = objective

    def matching_loss(self, y: Tensor, generator: torch.Generator | None = None, **cond: Any) -> Tensor:
        """Flow-matching loss of a data batch y (dequantised images or points); scalar."""
        x1, _ = self.preprocess(y)
        x0 = self.prior.sample(tuple(x1.shape), 1.0, generator, x1.device)
        return self.objective(self.velocity, x0, x1, generator, **cond)


# used when the config leaves ``net`` null: small enough for digits/MNIST on a CPU
# (about 1.1 M parameters at 1x28x28, the size of torchcfm's MNIST U-Net)
DEFAULT_UNET = {"base_channels": 32, "channel_mult": (1, 2, 2), "num_res_blocks": 1, "attention_resolutions": (14,)}


def _build_field(data_shape: tuple[int, ...], is_image: bool, net: Mapping[str, Any] | None) -> nn.Module:
    net = dict(net if net is not None else (DEFAULT_UNET if is_image else {}))
    cls = UNet if is_image else TimeMLP
    try:
        if is_image:
            return UNet(in_channels=data_shape[0], image_size=data_shape[-1], **net)
        return TimeMLP(dim=data_shape[0], **net)
    except TypeError as err:
        raise ValueError(f"bad option in model.flow.net for {cls.__name__}: {err}") from None


def build_cfm(
    data_shape: tuple[int, ...],
    is_image: bool,
    path: str = "icfm",
    sigma: float = 0.0,
    sigma_min: float = 0.0,
    coupling: str = "ot",
    time_sampler: str = "uniform",
    source: str = "gaussian",
    preprocess: str = "center",
    net: Mapping[str, Any] | None = None,
    divergence: str | None = None,
    probe: str = "rademacher",
    probe_seed: int = 0,
    eval_solver: Mapping[str, Any] | None = None,
) -> FlowMatchingModel:
    """Conditional flow matching (OT-CFM by default: I-CFM path + exact minibatch OT).

    Args:
        path: ``icfm`` (uses ``sigma``), ``condot`` (Lipman, uses ``sigma_min``) or ``vp``.
        coupling: ``ot`` or ``independent``; time_sampler: ``uniform`` or ``logit_normal``.
        source: the prior at t = 0: ``gaussian``, or for 2-D data a closed-form toy density
            such as ``8gaussians`` (8gaussians -> moons).
        preprocess: image data only (``center``: [-1, 1]; ``logit``; ``identity``).
        net: options of the velocity network (``TimeMLP`` for vectors, ``UNet`` for images).
        divergence: likelihood divergence, None: exact for non-image data, Hutchinson for images.
        eval_solver: ODE settings for likelihood and sampling (default dopri5 1e-5).
    """
    if path == "icfm":
        path_obj = build_path("icfm", sigma=sigma)
    elif sigma:
        raise ValueError(f"sigma applies to the icfm path; {path!r} takes sigma_min (condot) or nothing (vp)")
    elif path == "condot":
        path_obj = build_path("condot", sigma_min=sigma_min)
    else:
        path_obj = build_path(path)
    if path != "condot" and sigma_min:
        raise ValueError(f"sigma_min applies to the condot path, not {path!r}")
    prior = build_prior(source)
    if is_image and source != "gaussian":
        raise ValueError(f"image flow matching needs source=gaussian, got {source!r}")
    objective = FlowMatchingObjective(path_obj, coupling, time_sampler)
    return FlowMatchingModel(
        _build_field(tuple(data_shape), is_image, net),
        objective,
        prior,
        tuple(data_shape),
        build_preprocess(preprocess if is_image else "identity"),
        divergence or ("hutchinson" if is_image else "exact"),
        probe,
        SolverOptions.create(eval_solver),
        SolverOptions.create(eval_solver),
        probe_seed,
    )
