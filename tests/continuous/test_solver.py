"""ODE solve: analytic linear flows, solver options, NFE counting, adjoint vs direct gradients."""

import pytest
import torch
from scipy.linalg import expm

from flowgen.continuous.block import CNFBlock
from flowgen.continuous.solver import SolverOptions, odeint_solve
from flowgen.continuous.vector_field import CountingField
from flowgen.nets.concat_squash import ConcatSquashMLP

from fields import LinearField



def random_field(seed: int = 0, dim: int = 2) -> ConcatSquashMLP:
    torch.manual_seed(seed)
    return ConcatSquashMLP(dim, (32, 32), "tanh", zero_init_last=False).double()


@pytest.mark.parametrize("method,extra", [("dopri5", {}), ("rk4", {"step_size": 0.05})])
def test_linear_field_gives_expm_map_and_trace_logdet(method, extra):
    a = torch.tensor([[0.3, -1.0, 0.2], [0.8, -0.5, 0.1], [0.0, 0.4, 0.2]], dtype=torch.float64)
    options = SolverOptions(method=method, atol=1e-10, rtol=1e-10, **extra)
    block = CNFBlock(LinearField(a), divergence="exact", options=options)
    x = torch.randn(5, 3, dtype=torch.float64)
    z, logdet = block(x)
    expm_a = torch.from_numpy(expm(a.numpy()))
    tol = 1e-8 if method == "dopri5" else 1e-6
    # data side t = 1 -> noise side t = 0: z = expm(-A) x, log|det dz/dx| = -tr(A)
    torch.testing.assert_close(z, x @ torch.linalg.inv(expm_a).T, atol=tol, rtol=tol)
    torch.testing.assert_close(logdet, torch.full((5,), -a.trace().item(), dtype=torch.float64), atol=tol, rtol=tol)
    torch.testing.assert_close(block.inverse(z), x, atol=tol, rtol=tol)
    torch.testing.assert_close(block.inverse(x), x @ expm_a.T, atol=tol, rtol=tol)


def test_fixed_step_solvers_count_their_evaluations():
    field = CountingField(LinearField(torch.eye(2)))
    y0 = torch.ones(1, 2)
    times = torch.tensor([0.0, 1.0])
    for method, per_step in [("euler", 1), ("midpoint", 2), ("rk4", 4)]:
        field.nfe = 0
        odeint_solve(field, y0, times, SolverOptions(method=method, step_size=0.25))
        assert field.nfe == 4 * per_step, method


def test_solver_options_validate_and_override():
    opts = SolverOptions.create({"method": "rk4", "steps": 4})
    assert opts.step_size == 0.25 and opts.is_fixed_step
    assert SolverOptions().replace(atol=1e-3).atol == 1e-3
    assert opts.replace(method="dopri5").step_size is None
    with pytest.raises(ValueError, match="step_size"):
        SolverOptions(method="rk4")
    with pytest.raises(ValueError, match="unknown ODE method"):
        SolverOptions(method="rk5")
    with pytest.raises(ValueError, match="unknown solver option"):
        SolverOptions().replace(tol=1e-3)
    assert SolverOptions.create(opts.to_dict()) == opts


def _loss_and_grads(block: CNFBlock, x: torch.Tensor):
    block.zero_grad()
    z, logdet = block(x)
    loss = -(-0.5 * z.pow(2).sum(1) + logdet).mean()
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in block.parameters()]), block.stats()


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_adjoint_and_direct_gradients_agree(divergence):
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    block = CNFBlock(random_field(), divergence=divergence)
    grads = {}
    for adjoint in (False, True):
        block.options = SolverOptions(atol=1e-5, rtol=1e-5, adjoint=adjoint)
        block.generator = torch.Generator().manual_seed(0)  # same probe for both
        grads[adjoint], stats = _loss_and_grads(block, x)
        assert stats["nfe_forward"] > 0 and (stats["nfe_backward"] > 0) == adjoint
    rel = (grads[True] - grads[False]).norm() / grads[False].norm()
    assert rel < 1e-3


def test_seminorm_does_not_increase_backward_nfe():
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    block = CNFBlock(random_field(3))
    nfe = {}
    for seminorm in (False, True):
        block.options = SolverOptions(atol=1e-6, rtol=1e-6, adjoint=True, seminorm=seminorm)
        _, stats = _loss_and_grads(block, x)
        nfe[seminorm] = stats["nfe_backward"]
    assert nfe[True] <= nfe[False]
