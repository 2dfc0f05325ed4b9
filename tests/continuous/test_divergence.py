"""Divergence estimators: exact trace, Hutchinson unbiasedness and variance, one probe per solve."""

import pytest
import torch

import flowgen.continuous.divergence as divergence
from flowgen.continuous.block import CNFBlock
from flowgen.continuous.divergence import draw_probe, exact_divergence, hutchinson_divergence
from flowgen.continuous.solver import SolverOptions
from flowgen.nets.concat_squash import ConcatSquashMLP
from flowgen.nets.time_conv import TimeConvNet


def random_mlp(dim: int = 3, seed: int = 0) -> ConcatSquashMLP:
    torch.manual_seed(seed)
    return ConcatSquashMLP(dim, (32, 32), "softplus", zero_init_last=False).double()


def jacobians(field, t, x):
    """Per-sample Jacobians [B, D, D] by brute force."""
    return torch.stack([torch.autograd.functional.jacobian(lambda v: field(t, v[None])[0], xb) for xb in x])


def test_exact_divergence_is_the_jacobian_trace_and_frobenius_norm():
    field, t = random_mlp(), torch.tensor(0.3, dtype=torch.float64)
    x = torch.randn(6, 3, dtype=torch.float64).requires_grad_()
    div, sq_frob = exact_divergence(field(t, x), x, frobenius=True)
    jac = jacobians(field, t, x.detach())
    torch.testing.assert_close(div, jac.diagonal(dim1=1, dim2=2).sum(-1))
    torch.testing.assert_close(sq_frob, jac.pow(2).sum((1, 2)))


def test_exact_divergence_of_an_image_field_flattens_every_dimension():
    torch.manual_seed(0)
    field = TimeConvNet(2, (8,), zero_init_last=False).double()
    x = torch.randn(2, 2, 2, 2, dtype=torch.float64).requires_grad_()
    t = torch.tensor(0.5, dtype=torch.float64)
    div, _ = exact_divergence(field(t, x), x)
    jac = torch.stack([torch.autograd.functional.jacobian(lambda v: field(t, v[None])[0].reshape(-1), xb).reshape(8, 8)
                       for xb in x.detach()])
    torch.testing.assert_close(div, jac.diagonal(dim1=1, dim2=2).sum(-1))


def _hutchinson_samples(kind: str, n: int = 20000):
    """n single-probe estimates of tr(J) and ||J||_F^2 at one point (the point repeated n times)."""
    field, t = random_mlp(seed=1), torch.tensor(0.7, dtype=torch.float64)
    x = torch.randn(1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).expand(n, 3).clone().requires_grad_()
    probe = draw_probe((n, 3), kind, torch.Generator().manual_seed(4), dtype=torch.float64)
    v = field(t, x)
    exact, sq_frob = exact_divergence(v, x, frobenius=True)
    est, est_frob = hutchinson_divergence(v, x, probe)
    return est, exact[0], est_frob, sq_frob[0]


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_hutchinson_mean_matches_exact_divergence_within_standard_error(kind):
    est, exact, est_frob, sq_frob = _hutchinson_samples(kind)
    se = est.std() / est.numel() ** 0.5
    assert abs(est.mean() - exact) < 4 * se
    se_frob = est_frob.std() / est_frob.numel() ** 0.5
    assert abs(est_frob.mean() - sq_frob) < 4 * se_frob


def test_rademacher_probes_have_lower_variance_than_gaussian():
    rademacher, _, _, _ = _hutchinson_samples("rademacher")
    gaussian, _, _, _ = _hutchinson_samples("gaussian")
    assert rademacher.var() < 0.8 * gaussian.var()


def test_probes():
    g = torch.Generator().manual_seed(0)
    assert set(draw_probe((1000,), "rademacher", g).unique().tolist()) == {-1.0, 1.0}
    assert draw_probe((3, 4), "gaussian", g, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match="rademacher"):
        draw_probe((3,), "uniform", g)


@pytest.mark.parametrize("adjoint", [False, True])
def test_one_probe_serves_every_evaluation_of_a_solve_forward_and_adjoint(monkeypatch, adjoint):
    seen = []
    original = divergence.hutchinson_divergence

    def recording(v, x, probe, create_graph=False):
        seen.append((probe.data_ptr(), probe.clone(), create_graph))
        return original(v, x, probe, create_graph)

    monkeypatch.setattr(divergence, "hutchinson_divergence", recording)
    block = CNFBlock(random_mlp(2), divergence="hutchinson", options=SolverOptions(atol=1e-5, rtol=1e-5, adjoint=adjoint))
    block.generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 2, dtype=torch.float64)
    z, logdet = block(x)
    forward_calls = len(seen)
    (z.pow(2).sum() - logdet.sum()).backward()
    stats = block.stats()
    assert forward_calls == stats["nfe_forward"] > 6
    assert len(seen) == forward_calls + stats["nfe_backward"]
    assert (stats["nfe_backward"] > 0) == adjoint
    first_ptr, first_probe, _ = seen[0]
    for ptr, probe, _ in seen:
        assert ptr == first_ptr and torch.equal(probe, first_probe)
    # a new solve draws a new probe
    block(x)
    assert not torch.equal(seen[-1][1], first_probe)


def test_evaluation_under_no_grad_builds_no_graph_and_matches_grad_mode():
    block = CNFBlock(random_mlp(2), divergence="exact", options=SolverOptions(atol=1e-7, rtol=1e-7))
    x = torch.randn(8, 2, dtype=torch.float64)
    with torch.no_grad():
        z, logdet = block(x)
    assert not z.requires_grad and not logdet.requires_grad and z.grad_fn is None
    z2, logdet2 = block(x)
    assert logdet2.requires_grad
    torch.testing.assert_close(logdet, logdet2.detach())
    torch.testing.assert_close(z, z2.detach())
