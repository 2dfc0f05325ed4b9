"""DigitsDataModule, and through it the FlowDataModule base: loaders, seeded shuffling, splits."""

from types import SimpleNamespace

import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import RandomSampler

from flowgen.data.digits import DigitsDataModule
from flowgen.data.samplers import EpochShuffleSampler


def ready(**kw) -> DigitsDataModule:
    dm = DigitsDataModule(**kw)
    dm.setup()
    return dm


def images(dataset) -> torch.Tensor:
    return dataset.tensors[0]


def test_attributes_and_spec_before_setup():
    dm = DigitsDataModule(batch_size=32)
    assert (dm.data_shape, dm.num_levels, dm.is_image, dm.name) == ((1, 8, 8), 17, True, "digits")
    assert dm.spec() == {"name": "digits", "shape": [1, 8, 8], "num_levels": 17, "is_image": True}
    assert dm.eval_batch_size == 32 and dm.train_set is None


def test_batches_are_integer_levels_with_labels():
    dm = ready(batch_size=64, eval_batch_size=100)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 1, 8, 8) and x.dtype == torch.uint8
    assert y.shape == (64,) and y.dtype == torch.int64 and y.min() >= 0 and y.max() <= 9
    all_x = torch.cat([images(d) for d in (dm.train_set, dm.val_set, dm.test_set)])
    assert all_x.min() == 0 and all_x.max() == 16
    xv, _ = next(iter(dm.val_dataloader()))
    assert xv.shape[0] == 100


def test_split_sizes_partition_the_dataset():
    dm = ready()
    sizes = [len(d) for d in (dm.train_set, dm.val_set, dm.test_set)]
    assert sizes == [1797 - 180 - 359, 180, 359]
    # the three parts together are exactly the 1797 digits (compare sorted flattened images)
    raw = torch.from_numpy(load_digits().images).to(torch.uint8).reshape(1797, -1)
    ours = torch.cat([images(d) for d in (dm.train_set, dm.val_set, dm.test_set)]).reshape(1797, -1)
    assert sorted(map(tuple, raw.tolist())) == sorted(map(tuple, ours.tolist()))


def test_split_depends_on_split_seed_only():
    a, b, c = ready(split_seed=0), ready(split_seed=0, shuffle_seed=5), ready(split_seed=1)
    assert torch.equal(images(a.val_set), images(b.val_set))
    assert not torch.equal(images(a.val_set), images(c.val_set))


def test_setup_is_idempotent():
    dm = ready()
    train = dm.train_set
    dm.setup("fit")
    assert dm.train_set is train


def test_eval_loaders_keep_dataset_order():
    dm = ready(eval_batch_size=1000)
    xs = torch.cat([x for x, _ in dm.test_dataloader()])
    assert torch.equal(xs, images(dm.test_set))


def epoch_order(dm: DigitsDataModule, epoch: int) -> torch.Tensor:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return torch.cat([y for _, y in loader])


def test_train_shuffle_is_seeded_per_epoch_and_survives_restart():
    dm = ready(batch_size=100)
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, EpochShuffleSampler) and loader.drop_last is False
    assert len(epoch_order(dm, 0)) == len(dm.train_set)  # no batch dropped
    assert torch.equal(epoch_order(dm, 3), epoch_order(dm, 3))
    assert not torch.equal(epoch_order(dm, 3), epoch_order(dm, 4))
    resumed = ready(batch_size=100)  # a new process resuming at epoch 3 sees the same order
    assert torch.equal(epoch_order(resumed, 3), epoch_order(dm, 3))
    assert not torch.equal(epoch_order(ready(batch_size=100, shuffle_seed=1), 3), epoch_order(dm, 3))


def test_sampler_is_a_permutation_given_by_seed_plus_epoch():
    s = EpochShuffleSampler(50, seed=7)
    s.set_epoch(2)
    order = list(s)
    assert sorted(order) == list(range(50)) and len(s) == 50
    assert order == torch.randperm(50, generator=torch.Generator().manual_seed(9)).tolist()


def test_distributed_training_leaves_sampling_to_lightning():
    dm = ready()
    dm.trainer = SimpleNamespace(world_size=2)
    assert isinstance(dm.train_dataloader().sampler, RandomSampler)


def test_invalid_fractions_fail_at_init():
    with pytest.raises(ValueError, match="val_fraction"):
        DigitsDataModule(val_fraction=0.6, test_fraction=0.5)
