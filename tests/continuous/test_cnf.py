"""ContinuousFlow and FFJORD models: identity at init, invertibility, log-dets, solver settings."""

import math

import pytest
import torch

from flowgen.continuous.ffjord import build_ffjord
from flowgen.flows.jacobian import brute_force_logdet
from flowgen.flows.preprocess import Logit
from flowgen.flows.priors import StandardNormal
from flowgen.registry import build_model


TIGHT = {"atol": 1e-9, "rtol": 1e-9}


def toy(**kwargs):
    torch.manual_seed(0)
    return build_ffjord((2,), False, hidden_dims=(16, 16), **kwargs)


def test_zero_initialised_flow_is_the_identity():
    model = toy().eval()
    x = torch.randn(10, 2)
    torch.testing.assert_close(model.log_prob(x), StandardNormal().log_prob(x))
    samples = model.sample(5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(samples, torch.randn(5, 2, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-8)])
def test_round_trip_is_within_a_small_multiple_of_the_tolerance(dtype, tol):
    model = toy(zero_init=False).to(dtype).eval()
    x = 2 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0)).to(dtype)
    z, _ = model(x, atol=tol, rtol=tol)
    error = (model.inverse(z, atol=tol, rtol=tol) - x).abs().max().item()
    assert error < 10 * tol


def test_logdet_of_the_flow_map_matches_a_brute_force_jacobian_in_2d():
    model = toy(zero_init=False, num_blocks=2).double().eval()
    x = torch.randn(5, 2, dtype=torch.float64)
    z, logdet = model(x, **TIGHT)
    torch.testing.assert_close(logdet, brute_force_logdet(lambda v: model(v, **TIGHT)[0], x), atol=1e-7, rtol=1e-7)
    # and log p = log N(z) + logdet
    torch.testing.assert_close(model.log_prob(x, **TIGHT), StandardNormal().log_prob(z) + logdet)


def test_multiscale_image_flow_log_density_includes_the_logit_jacobian():
    torch.manual_seed(0)
    model = build_ffjord((1, 4, 4), True, hidden_dims=(8,), num_scales=2, divergence="exact", logit_alpha=0.05,
                         zero_init=False).double().eval()
    assert len(model.blocks()) == 3  # (1,4,4), squeeze -> (4,2,2), factor out -> (2,2,2)
    y = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    z, logdet = model(y, **TIGHT)
    assert z.shape == (2, 16)
    torch.testing.assert_close(logdet, brute_force_logdet(lambda v: model(v, **TIGHT)[0], y), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(model.inverse(z, **TIGHT), y, atol=1e-6, rtol=1e-6)


def test_multiscale_identity_at_init_is_gaussian_in_logit_space():
    model = build_ffjord((1, 8, 8), True, num_scales=3, hidden_dims=(8,)).eval()
    y = torch.rand(3, 1, 8, 8)
    x, logdet_logit = Logit(1e-6)(y)
    torch.testing.assert_close(model.log_prob(y), StandardNormal().log_prob(x) + logdet_logit, rtol=1e-5, atol=1e-4)
    assert model.sample(4).shape == (4, 1, 8, 8)


def test_training_and_evaluation_use_their_own_solver_settings():
    model = toy(train_solver={"method": "rk4", "step_size": 0.25}, eval_solver={"method": "dopri5"})
    x = torch.randn(4, 2)
    model.train()
    model.log_prob(x)
    assert model.solver_stats() == {"nfe_forward": 16.0, "nfe_backward": 0.0}
    model.log_prob(x, method="euler", steps=10)
    assert model.solver_stats()["nfe_forward"] == 10.0
    model.eval()
    model.log_prob(x)
    assert set(model.solver_stats()) == {"nfe"} and model.solver_options().method == "dopri5"


def test_hutchinson_probes_are_fixed_in_evaluation_and_flow_on_in_training():
    model = toy(divergence="hutchinson", zero_init=False, eval_solver={"method": "rk4", "steps": 4},
                train_solver={"method": "rk4", "steps": 4})
    x = torch.randn(16, 2)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.log_prob(x), model.log_prob(x), rtol=0, atol=0)
    model.train()
    assert not torch.equal(model.log_prob(x), model.log_prob(x))


@pytest.mark.parametrize("adjoint", [False, True])
def test_learned_end_time_gets_gradients_and_is_reported(adjoint):
    model = toy(learn_end_time=True, end_time=0.5, zero_init=False, train_solver={"adjoint": adjoint})
    block = model.blocks()[0]
    assert block.learned_end_time() == pytest.approx(0.5)
    log_p, _ = model.log_prob_with_penalties(torch.randn(8, 2))
    (-log_p.mean()).backward()
    assert block.end_time.sqrt_end_time.grad.abs() > 0
    assert model.solver_stats()["end_time"] == pytest.approx(0.5)


def test_registry_builds_ffjord_for_toy_and_image_data():
    image = build_model({"name": "ffjord", "num_scales": 2, "num_blocks": 1}, {"shape": [1, 8, 8], "is_image": True, "num_levels": 17})
    assert len(image.blocks()) == 3 and image.blocks()[0].divergence == "hutchinson"
    flat = build_model({"name": "ffjord"}, {"shape": [2], "is_image": False, "num_levels": None})
    assert flat.blocks()[0].divergence == "exact" and flat.eval_solver.atol == 1e-5
    with pytest.raises(ValueError, match="divisible"):
        build_model({"name": "ffjord", "num_scales": 5}, {"shape": [1, 8, 8], "is_image": True, "num_levels": 17})


def test_trajectories_go_from_prior_samples_to_model_samples():
    model = toy(zero_init=False).eval()
    z = torch.randn(7, 2)
    times, states = model.trajectory(z, num_times=5)
    assert states.shape == (5, 7, 2) and times[0] == 0 and times[-1] == 1
    torch.testing.assert_close(states[0], z)
    torch.testing.assert_close(states[-1], model.inverse(z), atol=1e-4, rtol=1e-4)
    assert math.isfinite(model.solver_stats()["nfe"])


def test_training_probes_follow_a_counter_saved_in_the_state_dict():
    model = toy(divergence="hutchinson", zero_init=False, train_solver={"method": "rk4", "steps": 2})
    x = torch.randn(16, 2)
    first = model.log_prob(x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    second = model.log_prob(x)
    assert int(state["probe_step"]) == 1 and not torch.equal(first, second)
    model.load_state_dict(state)  # as a resumed run: the next call draws the same probes again
    torch.testing.assert_close(model.log_prob(x), second, rtol=0, atol=0)
