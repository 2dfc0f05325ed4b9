import math

import pytest
import torch
from scipy.stats import multivariate_normal

from flowgen.data import toy2d
from flowgen.data.toy2d import HAS_TRUE_DENSITY, NAMES, Toy2dDataModule, sample, true_log_prob


def grid(low: float, high: float, step: float) -> tuple[torch.Tensor, float]:
    """Cell-centred grid points [M, 2] (float64) covering [low, high]^2 and the cell area."""
    centres = torch.arange(low + step / 2, high, step, dtype=torch.float64)
    xx, yy = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1), step**2


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_dtype_finite_and_reproducible(name):
    x = sample(name, 1000, gen(0))
    assert x.shape == (1000, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(x, sample(name, 1000, gen(0)))
    assert not torch.equal(x, sample(name, 1000, gen(1)))
    assert x.std(0).min() > 0.3  # a spread-out density, not a collapsed point


def test_sample_uses_only_the_generator():
    torch.manual_seed(0)
    a = sample("moons", 100, gen(3))
    torch.manual_seed(1)
    assert torch.equal(a, sample("moons", 100, gen(3)))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="8gaussians.*checkerboard"):
        sample("banana", 10)
    with pytest.raises(ValueError, match="moons"):
        true_log_prob("banana", torch.zeros(1, 2))


def test_no_closed_form_names_say_which_have_one():
    assert set(HAS_TRUE_DENSITY) == {"8gaussians", "checkerboard"}
    with pytest.raises(NotImplementedError, match="8gaussians"):
        true_log_prob("moons", torch.zeros(3, 2))


@pytest.mark.parametrize("name", HAS_TRUE_DENSITY)
def test_true_density_integrates_to_one(name):
    points, area = grid(-6.0, 6.0, 0.02)
    total = true_log_prob(name, points).exp().sum() * area
    assert abs(total.item() - 1.0) < 1e-3


def test_eight_gaussians_matches_scipy_mixture():
    # Written out independently: FFJORD's unit directions scaled by 4/1.414..., std 0.5/1.414...
    s = 1 / math.sqrt(2)
    directions = [(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]
    centres = [(4 * dx / math.sqrt(2), 4 * dy / math.sqrt(2)) for dx, dy in directions]
    cov = (0.5 / math.sqrt(2)) ** 2
    x = torch.randn(500, 2, generator=gen(0), dtype=torch.float64) * 3
    expected = sum(multivariate_normal(mean=c, cov=cov).pdf(x.numpy()) for c in centres) / 8
    got = true_log_prob("8gaussians", x)
    torch.testing.assert_close(got, torch.log(torch.from_numpy(expected)), rtol=1e-9, atol=1e-9)


def test_checkerboard_support():
    x = sample("checkerboard", 20000, gen(0))
    assert torch.isfinite(true_log_prob("checkerboard", x)).all()
    inside = torch.tensor([[1.0, 1.0], [-3.0, -3.0], [3.0, -1.0], [-1.0, 3.0]])
    outside = torch.tensor([[3.0, 1.0], [1.0, 3.0], [-1.0, 1.0], [4.5, 0.5], [0.5, -4.5], [100.0, 100.0]])
    torch.testing.assert_close(true_log_prob("checkerboard", inside), torch.full((4,), -math.log(32.0)))
    assert (true_log_prob("checkerboard", outside) == -math.inf).all()
    # uniform over the 8 squares: each holds 1/8 of the points (binomial, 5 standard errors)
    cells = torch.floor(x / 2)
    counts = torch.unique(cells, dim=0, return_counts=True)[1]
    assert counts.numel() == 8
    sd = math.sqrt(len(x) * (1 / 8) * (7 / 8))
    assert (counts - len(x) / 8).abs().max() < 5 * sd


def test_eight_gaussians_samples_follow_true_density():
    # E_p[log p(x)] = -H(p): Monte Carlo over samples vs the entropy integrated on a grid.
    points, area = grid(-6.0, 6.0, 0.02)
    log_p = true_log_prob("8gaussians", points)
    neg_entropy = (log_p.exp() * log_p).sum() * area
    x = sample("8gaussians", 20000, gen(0)).double()
    lp = true_log_prob("8gaussians", x)
    stderr = lp.std() / math.sqrt(len(x))
    assert abs(lp.mean() - neg_entropy) < 4 * stderr
    # second moment E|x|^2 = R^2 + 2 sigma^2
    second = x.pow(2).sum(1)
    expected = toy2d.GAUSSIANS_RADIUS**2 + 2 * toy2d.GAUSSIANS_STD**2
    assert abs(second.mean() - expected) < 4 * second.std() / math.sqrt(len(x))


def test_datamodule_batches_and_spec():
    dm = Toy2dDataModule("moons", n_train=500, n_val=100, n_test=200, batch_size=64, eval_batch_size=50)
    assert dm.data_shape == (2,) and dm.num_levels is None and dm.is_image is False and dm.name == "moons"
    assert dm.spec() == {"name": "moons", "shape": [2], "num_levels": None, "is_image": False}
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 2) and x.dtype == torch.float32
    assert y.shape == (64,) and y.dtype == torch.int64 and (y == 0).all()
    xv, _ = next(iter(dm.val_dataloader()))
    assert xv.shape == (50, 2)
    assert [len(d) for d in (dm.train_set, dm.val_set, dm.test_set)] == [500, 100, 200]
    train, val, test = (d.tensors[0] for d in (dm.train_set, dm.val_set, dm.test_set))
    assert not torch.equal(train[:100], val) and not torch.equal(val, test[:100])


def test_datamodule_splits_fixed_by_split_seed():
    def train_points(**kw):
        dm = Toy2dDataModule("8gaussians", n_train=300, n_val=10, n_test=10, **kw)
        dm.setup()
        return dm.train_set.tensors[0]

    assert torch.equal(train_points(split_seed=4), train_points(split_seed=4, shuffle_seed=9))
    assert not torch.equal(train_points(split_seed=4), train_points(split_seed=5))


def test_datamodule_rejects_unknown_name():
    with pytest.raises(ValueError, match="2spirals"):
        Toy2dDataModule("banana")
