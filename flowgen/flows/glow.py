"""Glow (Kingma & Dhariwal 2018): L levels of [squeeze, K steps of flow, split].

    one step of flow on C x H x W:   ActNorm -> invertible 1x1 conv -> coupling
        log|det| = H W sum(log|s_actnorm|) + H W log|det W| + sum (1 - m) log s(h)

    level l = 1 .. L:  squeeze (4C x H/2 x W/2) -> K steps -> (l < L) split: half the channels
                       factored out with a Gaussian prior conditioned on the kept half
    top:               learned per-channel Gaussian (or N(0, I) with learn_prior=false)

Options: ``coupling`` additive | affine (scale sigmoid(h + 2) by default), ``permutation``
reverse | shuffle | 1x1conv (``lu``: LU-decomposed W, O(C) log-det), ``learn_prior`` (learned top
and split priors vs N(0, I)), ``checkerboard`` (checkerboard instead of channel masks, parity
alternating by step; levels at 1x1 resolution keep channel masks), ``num_classes`` > 0 (class-
conditional top prior with an auxiliary classifier, ``split_prior.ClassConditionalGaussian``),
``checkpoint_nets`` (gradient checkpointing of the coupling networks). Coupling networks:
conv3x3 -> ActNorm -> ReLU -> conv1x1 -> ActNorm -> ReLU -> zero-initialised conv3x3
(``flowgen.nets.glow_net``). Data centred to [-1, 1] by default (``preprocess``), its Jacobian
inside log p(y). L levels need H and W divisible by 2**L.
"""

from __future__ import annotations

from flowgen.flows.actnorm import ActNorm
from flowgen.flows.base import Bijection, Chain
from flowgen.flows.coupling import AdditiveCoupling, AffineCoupling, build_scale_map, coupling_channels
from flowgen.flows.invconv import InvConv1x1, LUInvConv1x1, reverse_permutation, shuffle_permutation
from flowgen.flows.masks import channel_mask, checkerboard_mask
from flowgen.flows.multiscale import MultiScaleFlow, check_image_shape
from flowgen.flows.preprocess import build_preprocess
from flowgen.flows.split_prior import (
    ClassConditionalGaussian,
    ConditionalGaussian,
    DiagonalGaussian,
    LearnedGaussian,
    StandardGaussian,
)
from flowgen.flows.squeeze import Squeeze
from flowgen.nets.glow_net import GlowNet

COUPLINGS = ("additive", "affine")
PERMUTATIONS = ("reverse", "shuffle", "1x1conv")


def _permutation(name: str, channels: int, lu: bool) -> Bijection:
    if name == "1x1conv":
        return LUInvConv1x1(channels) if lu else InvConv1x1(channels)
    if name == "reverse":
        return reverse_permutation(channels)
    return shuffle_permutation(channels)


def build_glow(
    data_shape: tuple[int, ...],
    is_image: bool,
    levels: int = 3,
    steps: int = 8,
    hidden_channels: int = 128,
    coupling: str = "affine",
    scale_map: str = "sigmoid",
    permutation: str = "1x1conv",
    lu: bool = True,
    learn_prior: bool = True,
    checkerboard: bool = False,
    actnorm_scale: float = 1.0,
    preprocess: str = "center",
    logit_alpha: float = 0.05,
    checkpoint_nets: bool = False,
    num_classes: int = 0,
    class_loss_weight: float = 0.01,
) -> MultiScaleFlow:
    """Glow with ``levels`` (L) levels of ``steps`` (K) steps on images ``data_shape`` [C, H, W].

    ``num_classes`` > 0 conditions the (learned) top prior on the label, with an auxiliary
    classifier loss weighted by ``class_loss_weight`` (Glow's appendix); 0: unconditional.
    """
    if coupling not in COUPLINGS:
        raise ValueError(f"unknown coupling {coupling!r}; choose one of {COUPLINGS}")
    if permutation not in PERMUTATIONS:
        raise ValueError(f"unknown permutation {permutation!r}; choose one of {PERMUTATIONS}")
    if num_classes and not learn_prior:
        raise ValueError("class conditioning (num_classes > 0) needs the learned top prior (learn_prior=true)")
    if steps < 1:
        raise ValueError(f"glow needs at least one step per level, got K={steps}")
    check_image_shape("glow", data_shape, is_image, levels, levels)
    build_scale_map(scale_map, 1)  # fail now on an unknown name

    def step(c: int, h: int, w: int, index: int) -> list[Bijection]:
        # a checkerboard cannot split a 1x1 image: channel masks there
        mask = checkerboard_mask(h, w, index % 2) if checkerboard and h * w > 1 else channel_mask(c, 0)
        n_in, n_out = coupling_channels(mask, c)
        if coupling == "additive":
            layer: Bijection = AdditiveCoupling(mask, GlowNet(n_in, n_out, hidden_channels), checkpoint=checkpoint_nets)
        else:
            net = GlowNet(n_in, 2 * n_out, hidden_channels)
            layer = AffineCoupling(mask, net, build_scale_map(scale_map, n_out), checkpoint=checkpoint_nets)
        return [ActNorm(c, actnorm_scale), _permutation(permutation, c, lu), layer]

    flow_levels: list[Bijection] = []
    priors: list[DiagonalGaussian] = []
    c, h, w = data_shape
    for level in range(levels):
        c, h, w = 4 * c, h // 2, w // 2
        layers: list[Bijection] = [Squeeze()]
        for index in range(steps):
            layers += step(c, h, w, index)
        flow_levels.append(Chain(layers))
        if level < levels - 1:
            kept, out = c - c // 2, c // 2
            priors.append(ConditionalGaussian((out, h, w), kept) if learn_prior else StandardGaussian((out, h, w)))
            c = kept
        else:
            if num_classes:
                priors.append(ClassConditionalGaussian((c, h, w), num_classes))
            else:
                priors.append(LearnedGaussian((c, h, w)) if learn_prior else StandardGaussian((c, h, w)))
    pre = build_preprocess(preprocess, logit_alpha)
    return MultiScaleFlow(pre, flow_levels, priors, data_shape, class_loss_weight=class_loss_weight)
