"""FID: uint8 conversion, agreement with an independent scipy Fréchet distance and with the
closed form for Gaussians, real statistics kept and cached, Inception weights offline."""

import time

import numpy as np
import pytest
import scipy.linalg
import torch
from hydra.errors import InstantiationException
from torch import nn

from flowgen.metrics import fid as fidlib


class Identity(nn.Module):
    """Features = the input itself ([N, d] floats), so FID is tested on known features."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x.double()


def scipy_frechet(mu1, s1, mu2, s2) -> float:
    """Independent reference: ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)) with scipy."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def gaussian(n, mu, cov, seed):
    g = torch.Generator().manual_seed(seed)
    mu, cov = mu.double(), cov.double()
    chol = torch.linalg.cholesky(cov)
    return mu + torch.randn(n, len(mu), generator=g, dtype=torch.float64) @ chol.T


def test_float_to_uint8_clamps_and_rounds_never_wraps():
    x = torch.tensor([1.2, -0.1, 0.0, 1.0, 0.5, 0.2, 3.0, float("nan")])
    assert fidlib.float_to_uint8(x).tolist() == [255, 0, 0, 255, 128, 51, 255, 0]
    assert (x[:1] * 255).byte().item() != 255  # what torchmetrics' normalize=True would feed (wrapped)


def test_levels_to_uint8_spans_0_to_255():
    assert fidlib.levels_to_uint8(torch.arange(17), 17).tolist() == [round(k * 255 / 16) for k in range(17)]
    k = torch.arange(256)
    assert torch.equal(fidlib.levels_to_uint8(k, 256), k.to(torch.uint8))
    assert fidlib.levels_to_uint8(torch.tensor([31]), 32).item() == 255
    assert fidlib.to_rgb(torch.zeros(2, 1, 4, 4, dtype=torch.uint8)).shape == (2, 3, 4, 4)


def test_fid_of_a_set_against_itself_is_zero():
    metric = fidlib.build_fid("digits", feature_net=Identity(6))
    f = gaussian(500, torch.zeros(6), torch.eye(6) * 3, seed=0)
    metric.update(f, real=True)
    metric.update(f, real=False)
    assert abs(metric.compute().item()) < 1e-6


def test_fid_matches_scipy_and_the_gaussian_closed_form():
    d = 5
    g = torch.Generator().manual_seed(1)
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    a1, a2 = torch.rand(d, generator=g, dtype=torch.float64) + 0.5, torch.rand(d, generator=g, dtype=torch.float64) + 0.5
    real, fake = gaussian(40000, mu1, torch.diag(a1), seed=2), gaussian(40000, mu2, torch.diag(a2), seed=3)

    metric = fidlib.build_fid("digits", feature_net=Identity(d))
    for chunk in real.split(7000):  # batches: the float64 sums accumulate exactly
        metric.update(chunk, real=True)
    metric.update(fake, real=False)
    value = metric.compute().item()

    m1, c1 = real.mean(0).numpy(), np.cov(real.numpy().T)
    m2, c2 = fake.mean(0).numpy(), np.cov(fake.numpy().T)
    reference = scipy_frechet(m1, c1, m2, c2)
    assert value == pytest.approx(reference, rel=1e-6)
    ours = fidlib.frechet_distance(*map(torch.from_numpy, (m1, c1, m2, c2))).item()
    assert ours == pytest.approx(reference, rel=1e-8)
    # closed form for diagonal Gaussians: ||mu1 - mu2||^2 + sum (sqrt a1 - sqrt a2)^2
    closed = ((mu1 - mu2) ** 2).sum() + ((a1.sqrt() - a2.sqrt()) ** 2).sum()
    assert value == pytest.approx(closed.item(), rel=0.03, abs=0.02)


def test_frechet_distance_general_covariances_agree_with_scipy():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(7, 7, generator=g, dtype=torch.float64), torch.randn(7, 7, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.1 * torch.eye(7), b @ b.T
    mu1, mu2 = torch.randn(7, generator=g, dtype=torch.float64), torch.zeros(7, dtype=torch.float64)
    expected = scipy_frechet(mu1.numpy(), s1.numpy(), mu2.numpy(), s2.numpy())
    assert fidlib.frechet_distance(mu1, s1, mu2, s2).item() == pytest.approx(expected, rel=1e-7)
    assert fidlib.frechet_distance(mu1, s1, mu1, s1).item() == pytest.approx(0.0, abs=1e-8)


def test_real_statistics_survive_reset_and_round_trip_through_a_cache(tmp_path):
    metric = fidlib.build_fid("digits", feature_net=Identity(3))
    real = gaussian(300, torch.zeros(3), torch.eye(3), seed=5)
    metric.update(real, real=True)
    metric.update(real + 1, real=False)
    first = metric.compute().item()
    metric.reset()
    assert fidlib.has_real_stats(metric) and int(metric.fake_features_num_samples) == 0
    key = {"data": "x", "features": "identity"}
    fidlib.save_real_stats(metric, tmp_path / "stats.pt", key)
    other = fidlib.build_fid("digits", feature_net=Identity(3))
    assert not fidlib.load_real_stats(other, tmp_path / "stats.pt", {**key, "data": "y"})
    assert fidlib.load_real_stats(other, tmp_path / "stats.pt", key)
    other.update(real + 1, real=False)
    assert other.compute().item() == pytest.approx(first, rel=1e-12)


def test_rank_shares_add_up_to_exactly_n():
    for n, world in [(10, 3), (2000, 8), (5, 8)]:
        shares = [fidlib.rank_share(n, r, world) for r in range(world)]
        assert sum(shares) == n and max(shares) - min(shares) <= 1


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty torch hub cache."""
    monkeypatch.setattr(fidlib, "weights_host_reachable", lambda *a, **k: False)
    monkeypatch.setattr(fidlib, "hub_weights_path", lambda: tmp_path / "hub" / "checkpoints" / fidlib.INCEPTION_FILENAME)
    return tmp_path


def test_missing_inception_weights_offline_fail_within_seconds_saying_where_to_put_them(offline):
    start = time.monotonic()
    with pytest.raises(fidlib.FIDWeightsNotFoundError) as err:
        fidlib.resolve_inception_weights(None)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert str(offline / "hub" / "checkpoints" / fidlib.INCEPTION_FILENAME) in message
    assert "feature_extractor_weights_path" in message and "on_missing_weights=skip" in message
    with pytest.raises(fidlib.FIDWeightsNotFoundError, match="nowhere.pth"):
        fidlib.resolve_inception_weights(offline / "nowhere.pth")


def test_inception_weights_found_in_the_hub_cache_are_checked_weights_only(offline):
    path = offline / "hub" / "checkpoints" / fidlib.INCEPTION_FILENAME
    path.parent.mkdir(parents=True)
    torch.save({"w": torch.zeros(1)}, path)
    assert fidlib.resolve_inception_weights(None) == str(path)
    torch.save({"obj": Identity(1)}, offline / "pickled.pth")  # needs code execution to load
    with pytest.raises(fidlib.FIDWeightsNotFoundError, match="weights-only"):
        fidlib.resolve_inception_weights(offline / "pickled.pth")


def test_train_with_inception_fid_offline_fails_at_start_up(compose, offline):
    from flowgen.lit.fid_callback import FIDCallback
    from flowgen.training import train

    (offline / "images" / "a").mkdir(parents=True)  # an image folder passes the dataset check
    cfg = compose("data=imagefolder", f"data.root={offline / 'images'}", f"paths.data_dir={offline}")
    assert cfg.callbacks.fid.features == "inception"
    start = time.monotonic()
    with pytest.raises(InstantiationException, match="torch hub cache") as err:  # Hydra wraps callback errors
        train(cfg)
    assert time.monotonic() - start < 20
    assert isinstance(err.value.__cause__, fidlib.FIDWeightsNotFoundError)
    assert not (offline / "checkpoints").exists()
    assert not FIDCallback(features="inception", on_missing_weights="skip")._enabled  # continue without FID


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A weights file in torch-fidelity's format with random values (the real ones need the internet)."""
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    with mock.patch.object(tfi, "load_state_dict_from_url", return_value={}), \
            mock.patch.object(tfi.FeatureExtractorInceptionV3, "load_state_dict", return_value=None):
        net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / "weights.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
def test_inception_fid_runs_on_grey_levels_from_a_local_weights_file(random_inception_weights, monkeypatch):
    monkeypatch.setattr(fidlib, "weights_host_reachable", lambda *a, **k: pytest.fail("must not touch the network"))
    path = fidlib.resolve_inception_weights(random_inception_weights)
    assert fidlib.build_fid("inception", weights_path=path, antialias=True).inception.use_antialias
    metric = fidlib.build_fid("inception", weights_path=path, antialias=False)  # legacy TF protocol
    assert not metric.inception.use_antialias
    levels = torch.randint(0, 17, (4, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    fidlib.add_real(metric, [levels[:2]], 17)  # grey -> RGB, uint8, resized to 299 by torch-fidelity
    fidlib.add_generated(metric, lambda b: levels[2 : 2 + b], 2, 17, batch_size=1)
    assert int(metric.real_features_num_samples) == 2 and int(metric.fake_features_num_samples) == 2
    assert metric.real_features_sum.dtype == torch.float64 and metric.real_features_sum.shape == (2048,)
    assert torch.isfinite(metric.real_features_sum).all() and torch.isfinite(metric.compute())
