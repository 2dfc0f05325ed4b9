"""Affine/additive couplings with checkerboard and channel masks, their nets, scale maps, squeezes."""

import copy

import pytest
import torch

from flowgen.flows.actnorm import data_init_mode
from flowgen.flows.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    SigmoidScale,
    TanhScale,
    build_scale_map,
    coupling_channels,
)
from flowgen.flows.jacobian import brute_force_logdet
from flowgen.flows.masks import channel_mask, checkerboard_mask
from flowgen.flows.squeeze import Squeeze, alternate_squeeze, squeeze
from flowgen.nets.glow_net import GlowNet, ZeroConv2d
from flowgen.nets.resnet import ResNet

from perturb import perturbed


C, H, W = 2, 4, 4
LAYERS = {
    "affine_checker0_resnet_tanh": lambda: AffineCoupling(checkerboard_mask(H, W, 0), ResNet(C, 2 * C, 8, 1), TanhScale(C)),
    "affine_checker1_resnet_sigmoid": lambda: AffineCoupling(checkerboard_mask(H, W, 1), ResNet(C, 2 * C, 8, 1), SigmoidScale()),
    "affine_channel0_glownet_sigmoid": lambda: AffineCoupling(channel_mask(C, 0), GlowNet(C // 2, C, 8), SigmoidScale()),
    "affine_channel1_glownet_tanh": lambda: AffineCoupling(channel_mask(C, 1), GlowNet(C // 2, C, 8), TanhScale(C // 2)),
    "affine_channel1_of_3_resnet": lambda: AffineCoupling(channel_mask(3, 1), ResNet(2, 2, 8, 1), TanhScale(1)),
    "additive_channel0_glownet": lambda: AdditiveCoupling(channel_mask(C, 0), GlowNet(C // 2, C // 2, 8)),
    "additive_checker_glownet": lambda: AdditiveCoupling(checkerboard_mask(H, W, 0), GlowNet(C, C, 8)),
    "affine_checkpointed": lambda: AffineCoupling(channel_mask(C, 0), GlowNet(C // 2, C, 8), SigmoidScale(), checkpoint=True),
    "squeeze": lambda: Squeeze(),
    "alternate_squeeze": lambda: Squeeze(alternate=True),
}


def channels(name: str) -> int:
    return 3 if "of_3" in name else C


def make(name: str) -> torch.nn.Module:
    layer = LAYERS[name]()
    with torch.no_grad(), data_init_mode(layer):  # GlowNet's ActNorms, initialised as in a model
        layer(torch.randn(16, channels(name), H, W, generator=torch.Generator().manual_seed(5)))
    return perturbed(layer, std=0.1)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_inverse_recovers_input_and_logdet_matches_brute_force(name, train):
    layer = make(name).train(train)
    x = torch.randn(3, channels(name), H, W, generator=torch.Generator().manual_seed(1))
    z, _ = layer(x)
    assert (layer.inverse(z) - x).abs().max() < 1e-5
    layer = layer.double()
    _, logdet = layer(x.double())
    torch.testing.assert_close(logdet, brute_force_logdet(lambda v: layer(v)[0], x.double()), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("name", [n for n in sorted(LAYERS) if "coupling" in n or n.startswith(("affine", "additive"))])
def test_coupling_leaves_the_conditioning_part_unchanged_and_transforms_the_rest(name):
    layer = make(name)
    x = torch.randn(3, channels(name), H, W)
    z, _ = layer(x)
    mask = layer.mask.expand_as(x).bool()
    assert torch.equal(z[mask], x[mask]) and not torch.allclose(z[~mask], x[~mask])
    # channel masks feed the network the kept channels only (split mode), others the masked input
    assert layer.split_mode == (layer.mask.shape[2:] == (1, 1))


def test_zero_initialised_couplings_start_as_the_identity():
    for layer in (AffineCoupling(channel_mask(C, 0), GlowNet(C // 2, C, 8), build_scale_map("exp_tanh", C // 2)),
                  AffineCoupling(checkerboard_mask(H, W, 0), ResNet(C, 2 * C, 8, 1), TanhScale(C))):
        x = torch.randn(2, C, H, W)
        z, logdet = layer(x)
        assert torch.equal(z, x) and torch.equal(logdet, torch.zeros(2))
    assert torch.equal(ZeroConv2d(3, 4)(torch.randn(1, 3, 2, 2)), torch.zeros(1, 4, 2, 2))


def test_scale_maps():
    h = torch.linspace(-20, 20, 101)
    torch.testing.assert_close(SigmoidScale()(h).exp(), torch.sigmoid(h + 2))
    assert SigmoidScale()(torch.zeros(1)).exp().item() == pytest.approx(0.8808, abs=1e-4)
    tanh = TanhScale(1)
    assert tanh(h.reshape(1, -1)).abs().max() <= 1.0 and "weight" in dict(tanh.named_parameters())
    with pytest.raises(ValueError, match="sigmoid"):
        build_scale_map("softplus", 2)


def test_gradient_checkpointing_gives_the_same_values_and_gradients():
    plain = make("affine_channel0_glownet_sigmoid")
    ckpt = copy.deepcopy(plain)
    ckpt.checkpoint = True
    x = torch.randn(4, C, H, W)
    outs = []
    for layer in (plain, ckpt):
        z, logdet = layer(x)
        (z.square().sum() + logdet.sum()).backward()
        outs.append((z.detach(), [p.grad.clone() for p in layer.parameters()]))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b)


def test_coupling_channels_of_the_two_modes():
    assert coupling_channels(channel_mask(6, 0), 6) == (3, 3)
    assert coupling_channels(channel_mask(5, 1), 5) == (3, 2)
    assert coupling_channels(checkerboard_mask(4, 4, 0), 6) == (6, 6)
    assert coupling_channels(torch.ones(8), 8) == (8, 8)


def test_masks():
    m = checkerboard_mask(3, 4, 0)
    assert m.shape == (1, 1, 3, 4) and m[0, 0, 0].tolist() == [1, 0, 1, 0] and m[0, 0, 1].tolist() == [0, 1, 0, 1]
    assert torch.equal(checkerboard_mask(3, 4, 1), 1 - m)
    c = channel_mask(4, 0)
    assert c.shape == (1, 4, 1, 1) and c.flatten().tolist() == [1, 1, 0, 0]
    assert channel_mask(4, 1).flatten().tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="2 channels"):
        channel_mask(1, 0)


def test_alternate_squeeze_groups_block_positions_so_channel_halves_are_checkerboard_colours():
    x = torch.randn(2, 3, 4, 6)
    z = alternate_squeeze(x)
    assert z.shape == (2, 12, 2, 3)
    standard = squeeze(x)
    # alternate channel p*C + c holds standard channel c*4 + (0, 3, 1, 2)[p]
    for p, q in enumerate((0, 3, 1, 2)):
        for c in range(3):
            assert torch.equal(z[:, p * 3 + c], standard[:, c * 4 + q])
    colour = alternate_squeeze(checkerboard_mask(4, 6, 0).expand(1, 3, 4, 6))
    assert torch.equal(colour[:, :6], torch.ones(1, 6, 2, 3)) and torch.equal(colour[:, 6:], torch.zeros(1, 6, 2, 3))
