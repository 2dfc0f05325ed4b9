"""NICE end to end: invertibility, log-det with preprocessing, normalised density."""

import pytest
import torch

from flowgen.flows.jacobian import brute_force_logdet
from flowgen.flows.nice import build_nice
from flowgen.metrics.grid2d import integral, log_prob_on_grid

from perturb import randomised


@pytest.mark.parametrize("preprocess", ["identity", "center", "logit"])
def test_nice_image_inverse_and_logdet(preprocess):
    model = randomised(build_nice((1, 2, 2), True, num_couplings=4, hidden_dim=16, num_hidden_layers=2, preprocess=preprocess))
    y = torch.rand(3, 1, 2, 2, generator=torch.Generator().manual_seed(0)).clamp(0.01, 0.99)
    z, logdet = model(y)
    assert z.shape == (3, 4)
    assert (model.inverse(z) - y).abs().max() < 1e-5
    model = model.double()
    y = y.double()
    _, logdet = model(y)
    torch.testing.assert_close(logdet, brute_force_logdet(lambda v: model(v)[0], y))
    torch.testing.assert_close(model.log_prob(y), model.prior.log_prob(model(y)[0]) + logdet)


def test_nice_on_2d_has_unit_mass_and_no_preprocessing():
    model = randomised(build_nice((2,), False, num_couplings=4, hidden_dim=32, num_hidden_layers=2, prior="gaussian"), seed=3)
    with torch.no_grad():
        model.transform.layers[-1].log_scale.fill_(0.3)
    log_p, area = log_prob_on_grid(model.log_prob, bound=12.0, num_points=600)
    assert abs(integral(log_p, area) - 1.0) < 1e-2


def test_nice_samples_have_data_shape_and_temperature_zero_is_the_mode():
    model = randomised(build_nice((1, 4, 4), True, hidden_dim=16, num_hidden_layers=1))
    gen = torch.Generator().manual_seed(0)
    assert model.sample(5, generator=gen).shape == (5, 1, 4, 4)
    cold = model.sample(3, temperature=0.0, generator=gen)
    assert torch.allclose(cold, cold[:1].expand_as(cold))


def test_nice_rejects_a_single_coupling():
    with pytest.raises(ValueError, match="num_couplings"):
        build_nice((2,), False, num_couplings=1)
