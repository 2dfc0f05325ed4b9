"""Exact W2 between point clouds: brute force over permutations, translations, symmetry."""

import itertools
import math

import pytest
import torch

from flowgen.metrics.w2 import w2_distance


@pytest.mark.parametrize("seed", range(3))
def test_w2_is_the_minimum_over_all_permutations(seed):
    gen = torch.Generator().manual_seed(seed)
    a, b = (torch.randn(6, 2, generator=gen, dtype=torch.float64) for _ in range(2))
    best = min(((a - b[list(p)]).pow(2).sum(1).mean().item() for p in itertools.permutations(range(6))))
    assert w2_distance(a, b) == pytest.approx(math.sqrt(best), rel=1e-9)
    assert w2_distance(a, b) == pytest.approx(w2_distance(b, a), rel=1e-12)


def test_w2_of_a_translated_cloud_is_the_shift_length_and_zero_for_a_reordering():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(300, 2, generator=gen, dtype=torch.float64)
    shift = torch.tensor([3.0, -4.0], dtype=torch.float64)
    assert w2_distance(a, a + shift) == pytest.approx(5.0, rel=1e-9)
    assert w2_distance(a, a[torch.randperm(300, generator=gen)]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="equal shape"):
        w2_distance(a, a[:10])
