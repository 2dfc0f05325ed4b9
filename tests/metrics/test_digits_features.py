"""The digits FID feature network: accurate on the test split, deterministic, cached weights-only,
and FID_digits separates real digits from noise."""

import pytest
import torch

from flowgen.data.digits import DigitsDataModule
from flowgen.lit.fid_callback import _stack, digits_train_split
from flowgen.metrics import fid as fidlib
from flowgen.metrics.digits_features import (
    CACHE_NAME,
    DigitsFeatureNet,
    accuracy,
    load_digits_feature_net,
    train_digits_classifier,
)


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits_features")
    return folder, load_digits_feature_net(folder, digits_train_split)


@pytest.fixture(scope="module")
def splits():
    dm = DigitsDataModule()
    dm.setup()
    return {name: _stack(getattr(dm, f"{name}_set")) for name in ("train", "test")}


def test_classifier_is_accurate_on_the_test_split(cached, splits):
    _, net = cached
    levels, labels = splits["test"]
    acc = accuracy(net, fidlib.levels_to_uint8(levels, 17), labels)
    print(f"digits feature net test accuracy: {acc:.4f}")
    assert acc > 0.95


def test_classifier_is_deterministic_and_cached_as_weights_only(cached):
    folder, net = cached
    path = folder / CACHE_NAME
    state = torch.load(path, weights_only=True)
    assert set(state) == set(DigitsFeatureNet().state_dict())
    again = train_digits_classifier(*digits_train_split())
    for name, tensor in net.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name
    reloaded = load_digits_feature_net(folder, lambda: pytest.fail("the cache must be used"))
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    assert torch.equal(reloaded(x), net(x)) and reloaded(x).shape == (5, DigitsFeatureNet.num_features)


def test_fid_digits_of_test_vs_train_is_far_below_noise_vs_train(cached, splits):
    _, net = cached
    metric = fidlib.build_fid("digits", feature_net=net)
    fidlib.add_real(metric, [splits["train"][0]], 17)
    test_levels = splits["test"][0]
    fidlib.update_levels(metric, test_levels, 17, real=False)
    fid_test = metric.compute().item()
    metric.reset()
    noise = torch.randint(0, 17, test_levels.shape, generator=torch.Generator().manual_seed(0))
    fidlib.update_levels(metric, noise, 17, real=False)
    fid_noise = metric.compute().item()
    print(f"FID_digits test vs train {fid_test:.3f}, noise vs train {fid_noise:.3f}")
    assert fid_test < 0.1 * fid_noise
