"""RNODE regularisers: analytic values, Hutchinson estimate, weighting, no effect on step control."""

import pytest
import torch

from flowgen.continuous.block import CNFBlock
from flowgen.continuous.ffjord import build_ffjord
from flowgen.continuous.solver import SolverOptions
from flowgen.continuous.vector_field import VectorField

from fields import LinearField


class ConstantField(VectorField):
    def __init__(self, c: torch.Tensor) -> None:
        super().__init__()
        self.c = torch.nn.Parameter(c)

    def forward(self, t, x, **cond):
        return self.c.expand_as(x)



REGS = ("kinetic_energy", "jacobian_frobenius")


def test_constant_field_has_kinetic_energy_norm_squared_per_dim_and_no_jacobian():
    c = torch.tensor([0.5, -2.0, 1.0], dtype=torch.float64)
    block = CNFBlock(ConstantField(c), "exact", options=SolverOptions(atol=1e-9, rtol=1e-9))
    block.regularizers = REGS
    block(torch.randn(4, 3, dtype=torch.float64))
    torch.testing.assert_close(block.last_regularizers["kinetic_energy"], torch.full((4,), c.pow(2).mean().item(), dtype=torch.float64))
    torch.testing.assert_close(block.last_regularizers["jacobian_frobenius"], torch.zeros(4, dtype=torch.float64))


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_linear_field_jacobian_penalty_is_frobenius_norm_squared_per_dim(divergence):
    a = torch.tensor([[0.3, -1.0, 0.2], [0.8, -0.5, 0.1], [0.0, 0.4, 0.2]], dtype=torch.float64)
    n = 1 if divergence == "exact" else 4000
    block = CNFBlock(LinearField(a), divergence, options=SolverOptions.create(method="rk4", steps=4))
    block.regularizers = ("jacobian_frobenius",)
    block.generator = torch.Generator().manual_seed(0)
    block(torch.randn(n, 3, dtype=torch.float64))
    values = block.last_regularizers["jacobian_frobenius"]
    expected = a.pow(2).sum().item() / 3
    if divergence == "exact":
        torch.testing.assert_close(values, torch.full((1,), expected, dtype=torch.float64))
    else:
        assert abs(values.mean().item() - expected) < 4 * values.std().item() / n**0.5


def test_regularisers_do_not_change_adaptive_step_control_or_the_density():
    torch.manual_seed(0)
    model = build_ffjord((2,), False, hidden_dims=(16, 16), zero_init=False, kinetic_energy=0.01, jacobian_frobenius=0.01)
    x = 3 * torch.randn(32, 2)
    log_p = model.log_prob(x)
    nfe = model.solver_stats()["nfe_forward"]
    log_p_reg, penalties = model.log_prob_with_penalties(x)
    assert model.solver_stats()["nfe_forward"] == nfe
    torch.testing.assert_close(log_p_reg, log_p)
    ke = model.blocks()[0].last_regularizers["kinetic_energy"]
    assert set(penalties) == set(REGS) and penalties["kinetic_energy"].item() == pytest.approx(0.01 * ke.mean().item())
    loss = -log_p_reg.mean() + sum(penalties.values())
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_penalties_sum_over_blocks_and_zero_weights_are_not_integrated():
    torch.manual_seed(0)
    model = build_ffjord((2,), False, hidden_dims=(8,), num_blocks=2, zero_init=False, kinetic_energy=0.5)
    _, penalties = model.log_prob_with_penalties(torch.randn(8, 2))
    assert set(penalties) == {"kinetic_energy"}
    total = sum(b.last_regularizers["kinetic_energy"] for b in model.blocks()).mean()
    assert penalties["kinetic_energy"].item() == pytest.approx(0.5 * total.item())
    assert build_ffjord((2,), False).log_prob_with_penalties(torch.randn(3, 2))[1] == {}
