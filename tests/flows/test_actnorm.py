"""ActNorm: invertibility, log-det, and the explicit data-dependent initialisation."""

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from flowgen.flows.actnorm import ActNorm, data_init_mode, needs_data_init
from flowgen.flows.jacobian import brute_force_logdet

from perturb import randomised


@pytest.mark.parametrize("shape", [(2, 4, 4), (5,)])
@pytest.mark.parametrize("train", [True, False])
def test_actnorm_inverts_and_logdet_matches_brute_force(shape, train):
    layer = randomised(ActNorm(shape[0])).train(train)
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1))
    z, _ = layer(x)
    assert (layer.inverse(z) - x).abs().max() < 1e-5
    layer = layer.double()
    _, logdet = layer(x.double())
    torch.testing.assert_close(logdet, brute_force_logdet(lambda v: layer(v)[0], x.double()), rtol=1e-7, atol=1e-7)
    assert torch.allclose(logdet, logdet[0].expand(3)) and math.isclose(
        logdet[0].item(), math.prod(shape[1:]) * layer.log_scale.sum().item(), rel_tol=1e-9)


def test_init_makes_the_init_batch_zero_mean_unit_variance_per_channel_and_sets_the_flag():
    layer = ActNorm(3)
    x = 2.0 + 5.0 * torch.randn(64, 3, 4, 4) * torch.tensor([1.0, 0.1, 3.0]).reshape(1, 3, 1, 1)
    assert needs_data_init(layer) and not layer.is_initialized
    with torch.no_grad(), data_init_mode(layer):
        z, _ = layer(x)
    assert layer.is_initialized and not needs_data_init(layer)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    # the init batch's output equals the layer applied afterwards
    torch.testing.assert_close(layer(x)[0], z)


def test_no_lazy_init_and_none_in_eval_mode_or_once_initialised():
    x = 3.0 + torch.randn(16, 2, 4, 4)
    layer = ActNorm(2)
    layer(x)  # a plain forward (e.g. a validation batch) never initialises
    assert not layer.is_initialized and torch.equal(layer.bias, torch.zeros(2))
    with data_init_mode(layer):
        layer.eval()(x)  # eval mode: no init either
    assert not layer.is_initialized
    with data_init_mode(layer):
        layer.train()(x)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    with data_init_mode(layer):
        layer(10 * x + 7)  # already initialised: unchanged
    for key, value in layer.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_flag_is_a_buffer_carried_by_the_state_dict():
    layer = ActNorm(2)
    with data_init_mode(layer):
        layer(torch.randn(8, 2, 3, 3))
    state = layer.state_dict()
    assert state["initialized"].dtype == torch.uint8 and state["initialized"].item() == 1
    fresh = ActNorm(2)
    fresh.load_state_dict(state)
    assert fresh.is_initialized and not needs_data_init(fresh)


def _init_on_rank(rank: int, world_size: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        x = torch.randn(8 * (rank + 1), 2, 3, 3, generator=torch.Generator().manual_seed(rank)) * (rank + 1) + rank
        layer = ActNorm(2)
        with data_init_mode(layer):
            layer(x)
        torch.save({"bias": layer.bias.detach(), "log_scale": layer.log_scale.detach()}, f"{out_file}.{rank}")
    finally:
        dist.destroy_process_group()


def test_init_all_reduces_the_moments_across_ranks(tmp_path):
    """Two gloo ranks with different batches (and batch sizes) get identical parameters: those
    of the pooled batch."""
    mp.spawn(_init_on_rank, args=(2, str(tmp_path / "init"), str(tmp_path / "stats")), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"stats.{r}") for r in range(2)]
    pooled = torch.cat(
        [torch.randn(8 * (r + 1), 2, 3, 3, generator=torch.Generator().manual_seed(r)) * (r + 1) + r for r in range(2)])
    reference = ActNorm(2)
    with data_init_mode(reference):
        reference(pooled)
    for stats in ranks:
        torch.testing.assert_close(stats["bias"], reference.bias.detach(), rtol=0, atol=1e-6)
        torch.testing.assert_close(stats["log_scale"], reference.log_scale.detach(), rtol=0, atol=1e-6)


def test_a_constant_channel_is_only_centred():
    layer = ActNorm(2)
    x = torch.randn(32, 2, 3, 3)
    x[:, 1] = 0.25  # e.g. a coupling network's input that is entirely masked
    with data_init_mode(layer):
        z, _ = layer(x)
    assert layer.log_scale[1].item() == 0.0 and torch.equal(z[:, 1], torch.zeros(32, 3, 3))
    assert torch.isfinite(layer.log_scale).all() and abs(z[:, 0].std().item() - 1.0) < 0.05
