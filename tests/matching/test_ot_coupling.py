"""Minibatch OT pairing: a permutation of minimal total squared distance."""

import itertools

import pytest
import torch

from flowgen.matching.coupling import ot_permutation, pair


def total_cost(x0, x1):
    return (x0 - x1).reshape(x0.shape[0], -1).pow(2).sum().item()


@pytest.mark.parametrize("seed", range(5))
def test_ot_pairing_is_a_permutation_of_minimal_cost(seed):
    gen = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(6, 2, generator=gen), torch.randn(6, 2, generator=gen)
    perm = ot_permutation(x0, x1)
    assert sorted(perm.tolist()) == list(range(6))
    best = min(total_cost(x0[list(p)], x1) for p in itertools.permutations(range(6)))
    assert total_cost(x0[perm], x1) == pytest.approx(best, rel=1e-9)


def test_ot_pairing_keeps_image_shapes_and_uses_every_sample_once():
    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(32, 3, 4, 4, generator=gen), torch.randn(32, 3, 4, 4, generator=gen)
    paired0, paired1 = pair(x0, x1, "ot")
    assert paired0.shape == x0.shape and paired1 is x1
    matches = (paired0.reshape(32, 1, -1) == x0.reshape(1, 32, -1)).all(-1)
    assert torch.equal(matches.sum(0), torch.ones(32, dtype=torch.long))
    assert total_cost(paired0, x1) <= total_cost(x0, x1)


def test_independent_coupling_is_the_identity_and_unknown_fails():
    x0, x1 = torch.randn(4, 2), torch.randn(4, 2)
    assert pair(x0, x1, "independent")[0] is x0
    with pytest.raises(ValueError, match="ot"):
        pair(x0, x1, "sinkhorn")
