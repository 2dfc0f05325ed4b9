"""Warm-started exact assignment: the same optimum as the cold solver, whatever the potentials."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from flowgen.data.toy2d_densities import sample
from flowgen.matching.assignment import WARM_START_MIN_SIZE, min_cost_assignment, sinkhorn_potentials


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return torch.cdist(a.double(), b.double(), compute_mode="donot_use_mm_for_euclid_dist").pow(2).numpy()


def toy_cost(n: int, seed: int) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    return squared_distances(sample("moons", n, gen), sample("8gaussians", n, gen))


def optimum(cost: np.ndarray) -> float:
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].sum())


def assert_optimal_permutation(cost: np.ndarray) -> None:
    rows, cols = min_cost_assignment(cost)
    assert np.array_equal(rows, np.arange(cost.shape[0]))
    assert np.array_equal(np.sort(cols), np.arange(cost.shape[1]))
    assert cost[rows, cols].sum() == pytest.approx(optimum(cost), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_warm_start_finds_the_cold_optimum_on_toy_batches(seed):
    assert_optimal_permutation(toy_cost(WARM_START_MIN_SIZE + 72, seed))


def test_warm_start_on_high_dimensional_ties_and_degenerate_costs():
    gen = torch.Generator().manual_seed(0)
    n = WARM_START_MIN_SIZE
    images = squared_distances(2 * torch.rand(n, 64, generator=gen) - 1, torch.randn(n, 64, generator=gen))
    points = sample("moons", n, gen)
    duplicates = squared_distances(points, points[torch.arange(n) % 8])  # many equal-cost optima
    constant = np.full((n, n), 3.0)  # every permutation optimal, std 0: no Sinkhorn
    for cost in (images, duplicates, constant, toy_cost(n, 5) * 1e6, toy_cost(n, 6) * 1e-6):
        assert_optimal_permutation(cost)


def test_potentials_leave_a_zero_in_every_row_and_do_not_change_differences():
    cost = toy_cost(WARM_START_MIN_SIZE, 1)
    f, g = sinkhorn_potentials(cost)
    reduced = cost - f[:, None] - g[None, :]
    assert np.isfinite(reduced).all()
    assert np.allclose(reduced.min(axis=1), 0.0, atol=1e-4)
    perm = np.random.default_rng(0).permutation(len(cost))
    # any two permutations differ by the same amount in C and in the reduced cost
    identity = np.arange(len(cost))
    assert (reduced[identity, perm].sum() - reduced[identity, identity].sum()) == pytest.approx(
        cost[identity, perm].sum() - cost[identity, identity].sum(), rel=1e-9)


def test_small_rectangular_and_infeasible_inputs_behave_like_scipy():
    cost = toy_cost(WARM_START_MIN_SIZE, 2)
    rect = cost[:50]
    rows, cols = min_cost_assignment(rect)
    assert rect[rows, cols].sum() == pytest.approx(optimum(rect), rel=1e-12)
    assert_optimal_permutation(cost[:20, :20])
    forbidden = cost.copy()
    forbidden[0, 1:] = np.inf  # row 0 may only take column 0
    rows, cols = min_cost_assignment(forbidden)
    assert cols[0] == 0 and forbidden[rows, cols].sum() == pytest.approx(optimum(forbidden), rel=1e-12)
    with pytest.raises(ValueError):
        min_cost_assignment(np.full((WARM_START_MIN_SIZE, WARM_START_MIN_SIZE), np.nan))
