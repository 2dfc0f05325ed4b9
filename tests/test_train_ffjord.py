"""FFJORD end to end through train.py's ``train``: toy 2-D density and digits."""

import json

import pytest
import torch

from flowgen import load_model
from flowgen.data.digits import DigitsDataModule
from flowgen.data.quantization import dequantize
from flowgen.data.toy2d import Toy2dDataModule, true_log_prob
from flowgen.metrics.grid2d import integral, kl_divergence, log_prob_on_grid
from flowgen.training import train
from flowgen.viz.trajectories import save_model_trajectories

QUICK = ["trainer.check_val_every_n_epoch=100"]


@pytest.mark.slow
def test_ffjord_learns_8gaussians_close_to_its_entropy_and_its_density_integrates_to_one(compose, tmp_path):
    results = train(compose("experiment=ffjord_toy2d", *QUICK, "data.n_train=4000", "trainer.max_epochs=10",
                            "model.optimizer.lr=3e-3", "model.flow.train_solver.atol=1e-4", "model.flow.train_solver.rtol=1e-4",
                            "callbacks.sample_figures.every_n_epochs=100"))
    written = json.loads((tmp_path / "results.json").read_text())
    assert {"train/nfe_forward", "train/nfe_backward", "test/nfe", "test/nll"} <= set(written)
    assert 0 < written["test/nfe"] < 200
    model = load_model(results["ckpt_path"])
    # the density of the continuous flow is normalised ...
    log_q, area = log_prob_on_grid(model.log_prob, bound=6.0, num_points=150)
    assert abs(integral(log_q, area) - 1.0) < 1e-2
    # ... and close to the truth: test NLL within 0.2 nats of the true density's NLL (entropy)
    datamodule = Toy2dDataModule(name="8gaussians")
    datamodule.setup("test")
    x = torch.cat([batch for batch, _ in datamodule.test_dataloader()])
    entropy = -true_log_prob("8gaussians", x).mean().item()
    assert entropy - 0.02 < written["test/nll"] < entropy + 0.2
    log_p, _ = log_prob_on_grid(lambda v: true_log_prob("8gaussians", v), bound=6.0, num_points=150)
    assert kl_divergence(log_p, log_q, area) < 0.2
    assert (tmp_path / "samples" / "test.png").is_file()
    assert save_model_trajectories(model, tmp_path / "trajectories.png", bound=4.5, num_points=64).is_file()


@pytest.mark.slow
def test_short_ffjord_digits_run_improves_bpd_and_exact_and_hutchinson_agree(compose, tmp_path):
    cfg = compose("experiment=ffjord_digits", "~callbacks.fid", *QUICK, "trainer.max_epochs=3", "data.batch_size=128",
                  "callbacks.sample_figures.every_n_epochs=100")
    results = train(cfg)
    assert {"train/nfe_forward", "train/kinetic_energy", "train/jacobian_frobenius", "test/nfe", "test/bpd"} <= set(results)
    model = load_model(results["ckpt_path"])
    datamodule = DigitsDataModule(eval_batch_size=64)
    datamodule.setup("test")
    k = next(iter(datamodule.test_dataloader()))[0]
    # the zero-initialised model is a Gaussian in logit space: about 4.5 bpd; training improves on it
    untrained = load_model(results["ckpt_path"])
    for p in untrained.model.parameters():
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        initial = untrained.bits_per_dim(k).mean().item()
    assert results["test/bpd"] < initial - 0.5

    # exact (64 autograd passes per evaluation) and Hutchinson log-densities agree on average:
    # Hutchinson is unbiased for every image, so the mean difference is within its standard error
    y = dequantize(k, 17, torch.Generator().manual_seed(0))
    solver = {"method": "rk4", "steps": 4}
    with torch.no_grad():
        for block in model.model.blocks():
            block.divergence = "exact"
        exact = model.model.log_prob(y, **solver)
        for block in model.model.blocks():
            block.divergence = "hutchinson"
        diffs = torch.stack([model.model.log_prob(y, generator=torch.Generator().manual_seed(s), **solver) - exact
                             for s in range(4)])
    mean_diff = diffs.mean()
    standard_error = diffs.std() / diffs.numel() ** 0.5
    assert abs(mean_diff) < 4 * standard_error + 1e-3
    assert diffs.std() > 0  # the estimates are noisy, the agreement is not trivial
