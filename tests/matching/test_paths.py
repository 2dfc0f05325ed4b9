"""Probability paths: endpoints and u_t = d/dt x_t (finite differences)."""


import pytest
import torch

from flowgen.matching.paths import PATHS, build_path
from flowgen.matching.time_sampler import sample_time

CASES = [("condot", {"sigma_min": 0.0}), ("condot", {"sigma_min": 0.1}), ("icfm", {"sigma": 0.0}), ("icfm", {"sigma": 0.2}), ("vp", {})]


def batch(shape=(6, 3, 4, 4), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(3))


@pytest.mark.parametrize("name, kwargs", CASES)
def test_endpoints(name, kwargs):
    path = build_path(name, **kwargs)
    x0, x1, noise = batch()
    zeros, ones = torch.zeros(6, dtype=torch.float64), torch.ones(6, dtype=torch.float64)
    x_start, _ = path.sample(x0, x1, zeros, noise)
    x_end, _ = path.sample(x0, x1, ones, noise)
    extra = kwargs.get("sigma", 0.0) * noise
    torch.testing.assert_close(x_start, x0 + extra)
    torch.testing.assert_close(x_end, kwargs.get("sigma_min", 0.0) * x0 + x1 + extra)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_target_velocity_is_the_time_derivative(name, kwargs):
    path = build_path(name, **kwargs)
    x0, x1, noise = batch(seed=1)
    t = torch.rand(6, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 0.98 + 0.01
    h = 1e-6
    _, u = path.sample(x0, x1, t, noise)
    plus, _ = path.sample(x0, x1, t + h, noise)
    minus, _ = path.sample(x0, x1, t - h, noise)
    torch.testing.assert_close(u, (plus - minus) / (2 * h), rtol=1e-6, atol=1e-6)


def test_noisy_path_without_noise_tensor_fails_and_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="noise"):
        build_path("icfm", sigma=0.1).sample(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="condot"):
        build_path("rectified")
    assert set(PATHS) == {"condot", "icfm", "vp"}


def test_vp_path_preserves_variance_for_independent_unit_endpoints():
    path = build_path("vp")
    x0, x1 = torch.randn(200000, 1), torch.randn(200000, 1)
    for t in (0.2, 0.5, 0.8):
        xt, _ = path.sample(x0, x1, torch.full((200000,), t))
        assert abs(xt.var().item() - 1.0) < 0.02


def test_time_samplers_stay_in_the_unit_interval():
    gen = torch.Generator().manual_seed(0)
    for name in ("uniform", "logit_normal"):
        t = sample_time(10000, name, gen)
        assert t.min() >= 0 and t.max() <= 1 and abs(t.mean().item() - 0.5) < 0.02
    with pytest.raises(ValueError, match="logit_normal"):
        sample_time(3, "beta")


