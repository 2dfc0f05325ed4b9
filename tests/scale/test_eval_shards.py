"""Unpadded evaluation shards under DDP: whole single-process batches dealt out to ranks, every
item exactly once, and the per-batch noise key recovered from (local batch, rank)."""

from types import SimpleNamespace

import pytest
import torch

from flowgen.data.digits import DigitsDataModule
from flowgen.data.samplers import EvalShardSampler, global_batch_index


@pytest.mark.parametrize("n, batch, world", [(359, 128, 2), (359, 64, 3), (10, 3, 4), (180, 256, 2), (5, 8, 4)])
def test_shards_are_whole_batches_of_the_single_process_loop_without_padding(n, batch, world):
    shards = [EvalShardSampler(n, batch, rank, world) for rank in range(world)]
    size = shards[0].batch_size
    assert size == batch or (size == n // world and -(-n // batch) < world)  # shrunk only when too few batches
    single = [list(range(start, min(start + size, n))) for start in range(0, n, size)]
    for rank, shard in enumerate(shards):
        indices = list(shard)
        assert len(indices) == len(shard) and len(shard.batches) >= 1
        local = [indices[i : i + size] for i in range(0, len(indices), size)]
        for j, chunk in enumerate(local):  # a DataLoader with batch_size=size rebuilds the same batches
            assert chunk == single[global_batch_index(j, rank, world)]
    assert sorted(i for shard in shards for i in shard) == list(range(n))


def test_fewer_items_than_ranks_fail_with_the_fix():
    with pytest.raises(ValueError, match="trainer.devices"):
        EvalShardSampler(3, 8, 0, 4)


def test_datamodule_uses_shards_for_evaluation_under_ddp():
    dm = DigitsDataModule(eval_batch_size=128)
    dm.setup()
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1)
    loader = dm.test_dataloader()
    assert isinstance(loader.sampler, EvalShardSampler) and [len(k) for k, _ in loader] == [128]
    assert torch.equal(next(iter(loader))[0], dm.test_set[128:256][0])
