"""global_batch_size: per-device batch and gradient accumulation derived so that
world x accumulate x per-device = global, with the per-device batch capped by data.batch_size."""

import pytest

from flowgen.batching import apply_global_batch_size, split_global_batch, world_size


@pytest.mark.parametrize("global_batch, world, cap, expected", [
    (512, 8, 64, (64, 1)), (512, 8, 32, (32, 2)), (100, 2, 32, (25, 2)), (64, 1, 64, (64, 1)), (96, 4, 7, (6, 4)),
])
def test_split_is_exact_with_the_fewest_accumulation_steps(global_batch, world, cap, expected):
    per_device, accumulate = split_global_batch(global_batch, world, cap)
    assert (per_device, accumulate) == expected
    assert per_device * accumulate * world == global_batch and per_device <= cap


def test_global_batch_not_divisible_by_the_world_size_fails_naming_it():
    with pytest.raises(ValueError, match="multiple of the world size 3"):
        split_global_batch(512, 3, 64)


def test_world_size_counts_devices_times_nodes():
    assert world_size(4, 2, "gpu") == 8
    assert world_size([0, 1], 1, "gpu") == 2 and world_size("0,1,2", 1, "gpu") == 3
    assert world_size("auto", 1, "cpu") == 1


def test_config_gets_per_device_batch_and_accumulation(compose):
    cfg = compose("trainer=ddp_cpu", "global_batch_size=256", "data.batch_size=64")
    apply_global_batch_size(cfg)
    assert cfg.data.batch_size == 64 and cfg.trainer.accumulate_grad_batches == 2
    with pytest.raises(ValueError, match="accumulate_grad_batches"):
        apply_global_batch_size(compose("global_batch_size=256", "trainer.accumulate_grad_batches=4"))
