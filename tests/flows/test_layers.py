"""Each bijection: inverse(forward(x)) == x and log-det == brute-force autograd log|det J|."""

import math

import pytest
import torch

from flowgen.flows.base import Chain, Flatten
from flowgen.flows.coupling import AdditiveCoupling
from flowgen.flows.jacobian import brute_force_logdet
from flowgen.flows.masks import alternating_mask
from flowgen.flows.preprocess import Center, Identity, Logit, build_preprocess
from flowgen.flows.priors import StandardLogistic, StandardNormal, build_prior
from flowgen.flows.scaling import DiagonalScale
from flowgen.nets.mlp import MLP

from perturb import randomised


def coupling(num_dims: int, parity: int) -> AdditiveCoupling:
    return AdditiveCoupling(alternating_mask(num_dims, parity), MLP(num_dims, num_dims, 16, 2, "tanh"))


LAYERS = {
    "identity": lambda: Identity(),
    "center": lambda: Center(),
    "logit": lambda: Logit(0.05),
    "logit_alpha0": lambda: Logit(0.0),
    "diagonal_scale": lambda: DiagonalScale((6,)),
    "additive_coupling_even": lambda: coupling(6, 0),
    "additive_coupling_odd": lambda: coupling(6, 1),
    "chain": lambda: Chain([coupling(6, 0), coupling(6, 1), DiagonalScale((6,))]),
}


def unit_cube_input(name: str, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 6, generator=gen, dtype=dtype)
    return x.clamp(0.02, 0.98) if name.startswith("logit") else x


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_inverse_recovers_input_fp32(name):
    layer = randomised(LAYERS[name]())
    x = unit_cube_input(name, torch.float32)
    z, _ = layer(x)
    assert (layer.inverse(z) - x).abs().max() < 1e-5


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_logdet_matches_brute_force_jacobian(name):
    layer = randomised(LAYERS[name]()).double()
    x = unit_cube_input(name)
    _, logdet = layer(x)
    expected = brute_force_logdet(lambda v: layer(v)[0], x)
    torch.testing.assert_close(logdet, expected, rtol=1e-7, atol=1e-7)


def test_flatten_round_trip_and_zero_logdet():
    layer = Flatten((2, 3, 4))
    x = torch.randn(5, 2, 3, 4)
    z, logdet = layer(x)
    assert z.shape == (5, 24) and torch.equal(layer.inverse(z), x) and torch.equal(logdet, torch.zeros(5))


def test_center_logdet_is_d_ln2():
    _, logdet = Center()(torch.rand(3, 1, 8, 8))
    torch.testing.assert_close(logdet, torch.full((3,), 64 * math.log(2.0)))


@pytest.mark.parametrize("prior, reference", [
    ("gaussian", lambda z: torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)),
    ("logistic", lambda z: (-z - 2 * torch.nn.functional.softplus(-z)).sum(1)),
])
def test_prior_log_prob_matches_reference(prior, reference):
    z = torch.randn(10, 5, dtype=torch.float64) * 3
    torch.testing.assert_close(build_prior(prior).log_prob(z), reference(z))


@pytest.mark.parametrize("prior_cls, std", [(StandardNormal, 1.0), (StandardLogistic, math.pi / math.sqrt(3))])
def test_prior_samples_have_the_right_scale_and_temperature_scales_std(prior_cls, std):
    gen = torch.Generator().manual_seed(0)
    prior = prior_cls()
    for temperature in (1.0, 0.5):
        z = prior.sample((200000,), temperature, gen)
        assert abs(z.std().item() - temperature * std) < 0.02 * std


def test_unknown_names_fail_with_the_choices():
    with pytest.raises(ValueError, match="gaussian"):
        build_prior("cauchy")
    with pytest.raises(ValueError, match="logit"):
        build_preprocess("dequant")
    with pytest.raises(ValueError, match="alpha"):
        Logit(0.7)


def test_squeeze_moves_each_2x2_block_into_channels_and_inverts():
    from flowgen.flows.squeeze import Squeeze

    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    z, logdet = Squeeze()(x)
    assert z.shape == (2, 12, 2, 3) and torch.equal(logdet, torch.zeros(2))
    assert torch.equal(z[:, 4 * 1 + 2 * 1 + 0, 1, 2], x[:, 1, 3, 4])  # c=1, i=1, j=0, h=1, w=2
    assert torch.equal(Squeeze().inverse(z), x)
    with pytest.raises(ValueError, match="even"):
        Squeeze()(torch.zeros(1, 1, 3, 4))


def test_toy_density_prior_samples_and_scores_its_own_density():
    from flowgen.data.toy2d import true_log_prob

    prior = build_prior("8gaussians")
    z = prior.sample((500, 2), generator=torch.Generator().manual_seed(0))
    assert z.shape == (500, 2)
    torch.testing.assert_close(prior.log_prob(z), true_log_prob("8gaussians", z))
    with pytest.raises(ValueError, match="closed-form"):
        from flowgen.flows.priors import Toy2dPrior

        Toy2dPrior("moons")
