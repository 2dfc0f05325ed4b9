"""RealNVP (Dinh et al. 2017): affine couplings with checkerboard and channel masks, multi-scale.

    y --logit(alpha)--> x, then for each scale s = 1 .. L-1 (C x H x W at its input):
        3 affine couplings, checkerboard masks (alternating parity)      C x H x W
        squeeze (RealNVP's alternate order)                              4C x H/2 x W/2
        3 affine couplings, channel masks (alternating halves)
        factor out half the channels: z_s ~ N(0, I)                      2C x H/2 x W/2 out
    last scale: 4 affine couplings, checkerboard masks; z_L ~ N(0, I)

Couplings: z = m x + (1 - m)(x + t) exp(a tanh(h)), (h, t) = ResNet(m x) (weight-normalised,
``features`` wide, ``num_blocks`` residual blocks), log|det| = sum (1 - m) a tanh(h). The logit
preprocessing's Jacobian is inside log p(y), so bpd is on [0, 1]^D. L scales need H and W
divisible by 2**(L-1).
"""

from __future__ import annotations

from torch import Tensor

from flowgen.flows.base import Bijection, Chain
from flowgen.flows.coupling import AffineCoupling, build_scale_map, coupling_channels
from flowgen.flows.masks import channel_mask, checkerboard_mask
from flowgen.flows.multiscale import MultiScaleFlow, check_image_shape
from flowgen.flows.preprocess import build_preprocess
from flowgen.flows.split_prior import StandardGaussian
from flowgen.flows.squeeze import Squeeze
from flowgen.nets.resnet import ResNet


def build_realnvp(
    data_shape: tuple[int, ...],
    is_image: bool,
    num_scales: int = 2,
    features: int = 64,
    num_blocks: int = 8,
    scale_map: str = "exp_tanh",
    preprocess: str = "logit",
    logit_alpha: float = 0.05,
    checkpoint_nets: bool = False,
) -> MultiScaleFlow:
    """RealNVP with ``num_scales`` scales on images of shape ``data_shape`` [C, H, W]."""
    check_image_shape("realnvp", data_shape, is_image, num_scales, num_scales - 1)
    channels, height, width = data_shape

    def coupling(mask: Tensor, c: int) -> AffineCoupling:
        n_in, n_out = coupling_channels(mask, c)
        net = ResNet(n_in, 2 * n_out, features, num_blocks)
        return AffineCoupling(mask, net, build_scale_map(scale_map, n_out), checkpoint=checkpoint_nets)

    levels: list[Bijection] = []
    priors: list[StandardGaussian] = []
    c, h, w = channels, height, width
    for scale in range(num_scales):
        if scale == num_scales - 1:
            levels.append(Chain([coupling(checkerboard_mask(h, w, i % 2), c) for i in range(4)]))
            priors.append(StandardGaussian((c, h, w)))
            break
        layers: list[Bijection] = [coupling(checkerboard_mask(h, w, i % 2), c) for i in range(3)]
        layers.append(Squeeze(alternate=True))
        c, h, w = 4 * c, h // 2, w // 2
        layers += [coupling(channel_mask(c, i % 2), c) for i in range(3)]
        levels.append(Chain(layers))
        priors.append(StandardGaussian((c // 2, h, w)))
        c = c - c // 2
    return MultiScaleFlow(build_preprocess(preprocess, logit_alpha), levels, priors, data_shape)
