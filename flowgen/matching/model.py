"""A continuous flow trained by flow matching: the FFJORD core plus a regression objective.

The model is a ``ContinuousFlow`` with one CNF block whose field is the velocity network, so
likelihood (reverse solve with exact or Hutchinson divergence) and sampling (forward solve)
are the same code as FFJORD's; only training differs:

    matching_loss(y) = E || v(t, x_t) - u_t ||^2,   x1 = pre(y), x0 ~ source (the prior).

Images are centred to [-1, 1] by default (log|det| = D ln 2 enters log p(y)), so bpd follows
the FM papers' convention: bpd = -log p(x) / (D ln 2) + log2(K) - 1 (7 for 8-bit data).

Class-conditional models (``num_classes`` set; U-Net only) train with labels dropped to the
null label with probability ``label_dropout`` and sample with classifier-free guidance
(``flowgen.matching.guidance``); their likelihood is the unconditional one (null label).
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
from flowgen.matching.guidance import GuidedField, drop_labels
from flowgen.matching.objective import FlowMatchingObjective
from flowgen.matching.paths import build_path
from flowgen.nets.time_mlp import TimeMLP
from flowgen.nets.unet import UNet


class FlowMatchingModel(ContinuousFlow):
    """``ContinuousFlow`` of one velocity field with ``matching_loss`` for training."""

    def __init__(self, field: nn.Module, objective: FlowMatchingObjective, prior: nn.Module, data_shape: tuple[int, ...],
                 preprocess: nn.Module, divergence: str, probe: str, train_solver: Any, eval_solver: Any, probe_seed: int,
                 label_dropout: float = 0.1, guidance_scale: float = 1.0) -> None:
        super().__init__(CNFBlock(field, divergence, probe), prior, data_shape, data_shape, preprocess,
                         train_solver, eval_solver, None, probe_seed)
        self.objective = objective
        self.num_classes: int | None = getattr(field, "num_classes", None)
        self.label_dropout = label_dropout
        self.guidance_scale = guidance_scale

    def matching_loss(self, y: Tensor, generator: torch.Generator | None = None, labels: Tensor | None = None) -> Tensor:
        """Flow-matching loss of a data batch y (dequantised images or points); scalar.
        ``labels`` [B] (class-conditional models only) are dropped to the null label with
        probability ``label_dropout``."""
        cond = {}
        if self.num_classes is not None:
            if labels is None:
                raise ValueError("a class-conditional flow-matching model needs the batch labels")
            cond["y"] = drop_labels(labels.to(y.device).long(), self.num_classes, self.label_dropout, generator)
        x1, _ = self.preprocess(y)
        x0 = self.prior.sample(tuple(x1.shape), 1.0, generator, x1.device)
        return self.objective(self.velocity, x0, x1, generator, **cond)

    @torch.no_grad()
    def sample(self, num_samples: int, temperature: float = 1.0, generator: torch.Generator | None = None,
               labels: Tensor | None = None, guidance_scale: float | None = None, **solver: Any) -> Tensor:
        """num_samples draws of y. Class-conditional models: ``labels`` [n] (default: classes
        in turn, 0, 1, ..., C-1, 0, ...) and guidance scale w (default ``self.guidance_scale``)."""
        if self.num_classes is None:
            if labels is not None or guidance_scale is not None:
                raise ValueError("labels and guidance need a class-conditional model (train one with model.flow.num_classes)")
            return super().sample(num_samples, temperature, generator, **solver)
        device = next(self.parameters()).device
        labels = torch.arange(num_samples, device=device) % self.num_classes if labels is None else labels.to(device).long()
        if labels.shape != (num_samples,):
            raise ValueError(f"need one label per sample: {num_samples}, got shape {tuple(labels.shape)}")
        block = self.transform
        field = block.field
        scale = self.guidance_scale if guidance_scale is None else guidance_scale
        block.field = GuidedField(field, labels, self.num_classes, scale)
        try:
            return super().sample(num_samples, temperature, generator, **solver)
        finally:
            block.field = field


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
    num_classes: int | None = None,
    label_dropout: float = 0.1,
    guidance_scale: float = 1.0,
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
        num_classes: train a class-conditional U-Net (labels 0..C-1 plus a null label) with
            labels dropped with probability ``label_dropout``; ``guidance_scale`` is the
            default classifier-free guidance weight w of ``sample``.
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
    if num_classes is not None:
        if not is_image:
            raise ValueError("class conditioning (model.flow.num_classes) needs image data and the U-Net")
        net = {**(net if net is not None else DEFAULT_UNET), "num_classes": int(num_classes)}
    if not 0.0 <= label_dropout < 1.0:
        raise ValueError(f"label_dropout is a probability in [0, 1), got {label_dropout}")
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
        label_dropout,
        guidance_scale,
    )
