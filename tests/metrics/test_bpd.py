"""bits/dim and dequantisation against exact oracles (design.md section 3)."""

import math

import pytest
import torch
from scipy import stats

from flowgen.data.quantization import dequantize, quantize
from flowgen.metrics.bpd import BitsPerDim, bits_per_dim, dequantized_log_prob


@pytest.mark.parametrize("num_levels", [2, 17, 32, 256])
def test_uniform_density_gives_log2_levels(num_levels):
    k = torch.randint(0, num_levels, (8, 3, 4, 4))
    uniform = lambda y: torch.zeros(y.shape[0])  # noqa: E731  log p = 0 on the unit cube
    log_p = dequantized_log_prob(uniform, k, num_levels, num_samples=3)
    bpd = bits_per_dim(log_p, 48, num_levels)
    torch.testing.assert_close(bpd, torch.full((8,), math.log2(num_levels)), rtol=0, atol=1e-6)


def test_gaussian_density_closed_form():
    """A factorised N(mu, s^2) on y: bpd = (sum_i [0.5 ((y_i-mu)/s)^2 + ln(s sqrt(2 pi))] + D ln K) / (D ln 2)."""
    mu, s, num_levels = 0.5, 0.2, 17
    y = torch.tensor([[0.1, 0.5, 0.9, 0.3]], dtype=torch.float64)
    log_p = torch.distributions.Normal(mu, s).log_prob(y).sum(1)
    expected = (0.5 * ((y - mu) / s) ** 2 + math.log(s * math.sqrt(2 * math.pi))).sum() + 4 * math.log(num_levels)
    expected = expected / (4 * math.log(2))
    torch.testing.assert_close(bits_per_dim(log_p, 4, num_levels), expected.reshape(1))


def test_dequantisation_is_uniform_within_each_bin():
    num_levels = 17
    k = torch.randint(0, num_levels, (20000,))
    y = dequantize(k, num_levels, torch.Generator().manual_seed(0))
    offset = y * num_levels - k  # u in [0, 1): bin width exactly 1/K
    assert offset.min() >= 0 and offset.max() < 1
    assert stats.kstest(offset.numpy(), "uniform").pvalue > 1e-3
    assert torch.equal(quantize(y, num_levels), k.to(torch.uint8))


def test_quantize_clamps_never_wraps():
    assert quantize(torch.tensor([-0.1, 1.2, 0.999999, 0.0]), 256).tolist() == [0, 255, 255, 0]


def test_evaluation_estimate_is_deterministic_for_a_seed():
    k = torch.randint(0, 17, (16, 1, 8, 8))
    log_prob = lambda y: -((y - 0.5) ** 2).sum((1, 2, 3))  # noqa: E731
    a = dequantized_log_prob(log_prob, k, 17, 1, torch.Generator().manual_seed(5))
    b = dequantized_log_prob(log_prob, k, 17, 1, torch.Generator().manual_seed(5))
    c = dequantized_log_prob(log_prob, k, 17, 1, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_importance_weighted_estimate_is_at_least_the_mean_single_sample_bound():
    """Jensen: logmeanexp_s log p(y_s) >= mean_s log p(y_s)."""
    k = torch.randint(0, 17, (16, 1, 8, 8))
    log_prob = lambda y: -(((y - 0.5) / 0.1) ** 2).sum((1, 2, 3))  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    iw = dequantized_log_prob(log_prob, k, 17, 8, gen)
    gen = torch.Generator().manual_seed(0)
    singles = torch.stack([dequantized_log_prob(log_prob, k, 17, 1, gen) for _ in range(8)])
    assert torch.all(iw >= singles.mean(0) - 1e-4)


def test_metric_aggregates_exactly_over_uneven_batches():
    metric = BitsPerDim()
    batches = [torch.randn(7) * 10 - 50, torch.randn(3) * 10 - 50, torch.randn(1) - 50]
    for log_p in batches:
        metric.update(log_p, 64, 17)
    expected = bits_per_dim(torch.cat(batches), 64, 17).mean()
    torch.testing.assert_close(metric.compute(), expected)
