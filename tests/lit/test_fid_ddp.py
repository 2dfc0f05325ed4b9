"""FID under DDP: each rank adds its shard, statistics all-reduce at compute, result = one process's."""

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from flowgen.metrics import fid as fidlib


class Identity(nn.Module):
    num_features = 4

    def forward(self, x):
        return x.double()


def _features():
    g = torch.Generator().manual_seed(0)
    return torch.randn(101, 4, generator=g, dtype=torch.float64), 2 * torch.randn(77, 4, generator=g, dtype=torch.float64) + 1


def _worker(rank: int, world: int, port: int, queue) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    real, fake = _features()
    metric = fidlib.build_fid("digits", feature_net=Identity())
    metric.update(real[rank::world], real=True)  # the callback's real shard: indices rank::world
    start = sum(fidlib.rank_share(len(fake), r, world) for r in range(rank))
    metric.update(fake[start : start + fidlib.rank_share(len(fake), rank, world)], real=False)
    value = metric.compute().item()
    local_count = int(metric.fake_features_num_samples)  # unsynced again after compute
    queue.put((rank, value, local_count))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_rank_fid_equals_single_process_fid():
    real, fake = _features()
    single = fidlib.build_fid("digits", feature_net=Identity())
    single.update(real, real=True)
    single.update(fake, real=False)
    expected = single.compute().item()

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(_worker, args=(2, _free_port(), queue), nprocs=2, join=True, start_method="spawn")
    results = sorted(queue.get() for _ in range(2))
    for rank, value, local_count in results:
        assert value == pytest.approx(expected, rel=1e-10)
        assert local_count == fidlib.rank_share(77, rank, 2)
