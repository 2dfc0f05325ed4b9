"""train.py end to end through Hydra's compose API: outputs, load_model, resume, 2-D density."""

import json

import pytest
import torch

from flowgen import load_model
from flowgen.api import CheckpointError
from flowgen.data.digits import DigitsDataModule
from flowgen.data.toy2d import GAUSSIANS_RADIUS, GAUSSIANS_STD, true_log_prob
from flowgen.metrics.grid2d import integral, kl_divergence, log_prob_on_grid
from flowgen.training import train

SMALL_NICE = ["model.flow.hidden_dim=64", "model.flow.num_hidden_layers=2"]


@pytest.mark.slow
def test_digits_run_writes_results_figures_checkpoints_and_load_model_reproduces_test_bpd(compose, tmp_path):
    cfg = compose("trainer.max_epochs=3", *SMALL_NICE)
    results = train(cfg)
    written = json.loads((tmp_path / "results.json").read_text())
    assert written == results
    assert {"test/bpd", "val/bpd", "train/loss", "train_time_s", "ckpt_path", "num_params"} <= set(written)
    assert written["test/bpd"] < 4.09  # beats the uniform model log2(17) after 3 epochs
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "samples" / "test.png").is_file() and (tmp_path / "samples" / "last.png").is_file()
    assert (tmp_path / "csv" / "metrics.csv").is_file() and (tmp_path / "config_tree.log").is_file()
    torch.load(written["ckpt_path"], weights_only=True)  # loads without executing code

    model = load_model(written["ckpt_path"])
    datamodule = DigitsDataModule(eval_batch_size=cfg.data.eval_batch_size)
    datamodule.setup("test")
    with torch.no_grad():
        bpd = torch.cat([model.bits_per_dim(k, generator=model.eval_generator(i))
                         for i, (k, _) in enumerate(datamodule.test_dataloader())])
    assert abs(bpd.mean().item() - written["test/bpd"]) < 1e-5
    assert model.sample(4).dtype == torch.uint8 and model.sample(4).max() <= 16


@pytest.mark.slow
def test_resume_continues_exactly_like_an_uninterrupted_run(compose, tmp_path):
    common = [*SMALL_NICE, "~callbacks.sample_figures", "data.batch_size=256"]
    straight = train(compose(*common, "trainer.max_epochs=4", output_dir=tmp_path / "straight"))
    train(compose(*common, "trainer.max_epochs=2", output_dir=tmp_path / "first"))
    resumed = train(compose(*common, "trainer.max_epochs=4", f"ckpt_path={tmp_path / 'first/checkpoints/last.ckpt'}",
                            output_dir=tmp_path / "resumed"))
    a = torch.load(tmp_path / "straight/checkpoints/last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"]
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], tensor, rtol=0, atol=1e-6, msg=name)
    assert resumed["test/bpd"] == pytest.approx(straight["test/bpd"], abs=1e-5)


@pytest.mark.slow
def test_nice_learns_8gaussians_beyond_any_gaussian_and_its_density_integrates_to_one(compose, tmp_path):
    results = train(compose("experiment=nice_toy2d", "trainer.max_epochs=10", "callbacks.sample_figures.every_n_epochs=5"))
    assert (tmp_path / "samples" / "test.png").is_file()
    model = load_model(results["ckpt_path"])
    log_q, area = log_prob_on_grid(model.log_prob, bound=10.0, num_points=500)
    assert abs(integral(log_q, area) - 1.0) < 1e-2
    log_p, _ = log_prob_on_grid(lambda x: true_log_prob("8gaussians", x), bound=10.0, num_points=500)
    # the best Gaussian fit (moment matched, isotropic) leaves KL ~ 1.4 nats on this mixture
    variance = GAUSSIANS_RADIUS**2 / 2 + GAUSSIANS_STD**2
    gaussian = torch.distributions.MultivariateNormal(torch.zeros(2), variance * torch.eye(2))
    log_g, _ = log_prob_on_grid(gaussian.log_prob, bound=10.0, num_points=500)
    assert kl_divergence(log_p, log_q, area) < kl_divergence(log_p, log_g, area) - 0.3


@pytest.mark.slow
def test_testing_a_checkpoint_without_training_reproduces_its_test_bpd(compose, tmp_path):
    first = train(compose("debug=default", *SMALL_NICE, output_dir=tmp_path / "run"))
    again = train(compose("debug=default", "train=false", f"ckpt_path={first['ckpt_path']}", output_dir=tmp_path / "eval"))
    assert again["test/bpd"] == pytest.approx(first["test/bpd"], abs=1e-6)
    assert again["ckpt_path"] == first["ckpt_path"]


def test_a_corrupt_resume_checkpoint_fails_before_anything_is_built(compose, tmp_path):
    (tmp_path / "bad.ckpt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="bad.ckpt"):
        train(compose(f"ckpt_path={tmp_path / 'bad.ckpt'}"))


@pytest.mark.slow
def test_wandb_logger_runs_offline(compose, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    results = train(compose("debug=default", "logger=wandb", *SMALL_NICE))
    assert results["test/bpd"] > 0
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))


@pytest.mark.slow
def test_two_process_cpu_ddp_run_completes(compose, tmp_path):
    results = train(compose("debug=default", "trainer=ddp_cpu", *SMALL_NICE))
    assert (tmp_path / "results.json").is_file() and (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert 0 < results["test/bpd"] < 10


@pytest.mark.slow
def test_resuming_with_other_model_options_names_the_difference(compose, tmp_path):
    first = train(compose("debug=default", *SMALL_NICE, output_dir=tmp_path / "run"))
    with pytest.raises(CheckpointError, match="flow.hidden_dim: checkpoint 64 vs config 256"):
        train(compose("debug=default", f"ckpt_path={first['ckpt_path']}", output_dir=tmp_path / "resume"))
