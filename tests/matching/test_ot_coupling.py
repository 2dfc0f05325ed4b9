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


def _global_pairing_worker(rank: int, world: int, port: int, x0: torch.Tensor, x1: torch.Tensor, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        share = slice(rank * 3, rank * 3 + 3 + rank)  # unequal shares: 3 and 4 samples
        sources, _ = pair(x0[share], x1[share], "ot_global")
        torch.save(sources, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_global_ot_pairing_over_ranks_equals_one_assignment_of_the_union(tmp_path):
    import socket

    import torch.multiprocessing as mp

    gen = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(7, 2, generator=gen), torch.randn(7, 2, generator=gen)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_global_pairing_worker, args=(2, port, x0, x1, str(tmp_path)), nprocs=2)
    sources = torch.cat([torch.load(tmp_path / f"rank{r}.pt") for r in range(2)])
    assert torch.equal(sources, x0[ot_permutation(x0, x1)])
    per_rank = torch.cat([pair(x0[:3], x1[:3], "ot")[0], pair(x0[3:], x1[3:], "ot")[0]])
    assert total_cost(sources, x1) <= total_cost(per_rank, x1) + 1e-12


def test_global_ot_pairing_without_a_process_group_is_the_minibatch_pairing():
    gen = torch.Generator().manual_seed(4)
    x0, x1 = torch.randn(8, 2, generator=gen), torch.randn(8, 2, generator=gen)
    assert torch.equal(pair(x0, x1, "ot_global")[0], pair(x0, x1, "ot")[0])
