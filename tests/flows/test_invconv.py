"""Invertible 1x1 convolutions (plain, LU) and channel permutations."""

import pytest
import torch

from flowgen.flows.invconv import (
    ChannelPermutation,
    InvConv1x1,
    LUInvConv1x1,
    random_rotation,
    reverse_permutation,
    shuffle_permutation,
)
from flowgen.flows.jacobian import brute_force_logdet

from perturb import perturbed


LAYERS = {
    "invconv": lambda: InvConv1x1(4),
    "lu_invconv": lambda: LUInvConv1x1(4),
    "reverse": lambda: reverse_permutation(4),
    "shuffle": lambda: shuffle_permutation(4, torch.Generator().manual_seed(3)),
}


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_inverse_and_logdet_match_brute_force(name, train):
    layer = perturbed(LAYERS[name]()).train(train)
    x = torch.randn(3, 4, 2, 3, generator=torch.Generator().manual_seed(1))
    z, _ = layer(x)
    assert (layer.inverse(z) - x).abs().max() < 1e-5
    layer = layer.double()
    _, logdet = layer(x.double())
    expected = brute_force_logdet(lambda v: layer(v)[0], x.double())
    torch.testing.assert_close(logdet, expected, rtol=1e-7, atol=1e-7)


def test_lu_logdet_equals_slogdet_of_the_assembled_weight():
    layer = perturbed(LUInvConv1x1(6), std=0.3).double()
    weight = layer.weight()
    _, logdet = layer(torch.randn(2, 6, 3, 5, dtype=torch.float64))
    torch.testing.assert_close(logdet, torch.full((2,), 15 * torch.linalg.slogdet(weight).logabsdet.item(), dtype=torch.float64))
    torch.testing.assert_close(layer.log_s.sum(), torch.linalg.slogdet(weight).logabsdet)
    # the assembled weight is what the layer applies at each position
    x = torch.randn(1, 6, 1, 1, dtype=torch.float64)
    torch.testing.assert_close(layer(x)[0].reshape(6), weight @ x.reshape(6))


def test_lu_and_plain_start_as_rotations():
    for layer in (InvConv1x1(5), LUInvConv1x1(5)):
        w = layer.weight() if isinstance(layer, LUInvConv1x1) else layer.weight
        torch.testing.assert_close(w @ w.T, torch.eye(5), atol=1e-5, rtol=0)
        _, logdet = layer(torch.randn(2, 5, 2, 2))
        assert logdet.abs().max() < 1e-4
    q = random_rotation(3, torch.Generator().manual_seed(0))
    assert torch.equal(q, random_rotation(3, torch.Generator().manual_seed(0)))


def test_lu_parts_have_their_structure_whatever_the_parameters():
    layer = perturbed(LUInvConv1x1(4), std=1.0)
    perm_t_w = layer.perm.T @ layer.weight()
    lower = torch.tril(layer.lower, -1) + torch.eye(4)
    upper = torch.linalg.solve(lower, perm_t_w)
    torch.testing.assert_close(torch.tril(upper, -1), torch.zeros(4, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.diagonal(upper).abs().log(), layer.log_s, atol=1e-5, rtol=0)


def test_permutations_move_channels_and_reject_non_permutations():
    x = torch.arange(4.0).reshape(1, 4, 1, 1)
    assert reverse_permutation(4)(x)[0].flatten().tolist() == [3.0, 2.0, 1.0, 0.0]
    layer = shuffle_permutation(6)
    assert sorted(layer.perm.tolist()) == list(range(6)) and "perm" in layer.state_dict()
    with pytest.raises(ValueError, match="permutation"):
        ChannelPermutation(torch.tensor([0, 0, 1]))
