"""Flow matching end to end: toy density normalised, OT straighter than I-CFM, EMA in checkpoints,
digits bpd and samples."""

import hydra
import pytest
import torch

from flowgen import load_model

from flowgen.metrics.grid2d import integral, log_prob_on_grid
from flowgen.training import train

TOY = ["model=cfm", "data=toy2d", "data.n_train=4096", "data.n_val=512", "data.n_test=512",
       "~callbacks.sample_figures", "model.flow.eval_solver.atol=1e-4", "model.flow.eval_solver.rtol=1e-4"]


def path_energy_and_nfe(model, n=1024):
    """Mean kinetic energy int_0^1 ||v||^2 dt along Euler trajectories from the source, and dopri5 NFE."""
    gen = torch.Generator().manual_seed(0)
    x = model.prior.sample((n, 2), 1.0, gen)
    energy, steps = 0.0, 100
    with torch.no_grad():
        for i in range(steps):
            v = model.velocity(torch.full((n,), i / steps), x)
            energy += v.pow(2).sum(1).mean().item() / steps
            x = x + v / steps
        model.sample(n, generator=gen, method="dopri5", atol=1e-4, rtol=1e-4)
    return energy, model.solver_stats()["nfe"]


@pytest.mark.slow
def test_ot_cfm_density_integrates_to_one_and_its_paths_are_straighter_than_icfm(compose, tmp_path):
    results = {}
    for coupling in ("ot", "independent"):
        results[coupling] = train(compose(*TOY, f"model.flow.coupling={coupling}", "trainer.max_epochs=15",
                                          output_dir=tmp_path / coupling))
    ot, icfm = (load_model(results[c]["ckpt_path"]).model for c in ("ot", "independent"))
    log_q, area = log_prob_on_grid(lambda x: ot.log_prob(x, atol=1e-5, rtol=1e-5), bound=8.0, num_points=160)
    assert abs(integral(log_q, area) - 1.0) < 1e-2
    (energy_ot, nfe_ot), (energy_icfm, nfe_icfm) = path_energy_and_nfe(ot), path_energy_and_nfe(icfm)
    assert energy_ot < 0.9 * energy_icfm
    assert nfe_ot <= nfe_icfm
    assert results["ot"]["test/nll"] < 3.6  # true entropy 2.83 nats; the standard normal scores ~5.9
    # W2 of 512 samples to 512 test points, against the finite-sample floor (train vs test points)
    assert 0.5 * results["ot"]["test/w2_floor"] < results["ot"]["test/w2"] < 1.0


@pytest.mark.slow
def test_ema_weights_are_what_a_loaded_checkpoint_evaluates_with(compose, tmp_path):
    results = train(compose(*TOY, "callbacks=[default,ema]", "callbacks.ema.decay=0.9", "trainer.max_epochs=1",
                            "model.val_likelihood_batches=0", "model.test_likelihood_batches=1"))
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    averaged, current = checkpoint["state_dict"], checkpoint["current_model_state"]
    name = next(k for k in averaged if k.endswith("weight"))
    assert not torch.equal(averaged[name], current[name])
    model = load_model(results["ckpt_path"])
    torch.testing.assert_close(model.state_dict()[name], torch.load(results["ckpt_path"], weights_only=True)["state_dict"][name])
    # the test metric of train.py was computed with those averaged weights too
    datamodule = hydra.utils.instantiate(compose(*TOY).data)
    datamodule.setup("test")
    points, _ = next(iter(datamodule.test_dataloader()))
    assert -model.log_prob(points).mean().item() == pytest.approx(results["test/nll"], abs=1e-4)


@pytest.mark.slow
def test_ot_cfm_on_digits_improves_bpd_and_saves_samples(compose, tmp_path):
    results = train(compose("model=cfm", "fid=none", "trainer.max_epochs=2", "model.test_likelihood_batches=1",
                            "model.flow.eval_solver.atol=1e-3", "model.flow.eval_solver.rtol=1e-3",
                            "callbacks.sample_figures.num_samples=16", "callbacks.sample_figures.every_n_epochs=1"))
    assert results["test/bpd"] < 4.09 and (tmp_path / "samples" / "test.png").is_file()
    assert results["test/nfe"] > 0




def test_class_conditional_digits_run_trains_on_labels_and_samples_with_guidance(compose, tmp_path):
    results = train(compose("model=cfm", "debug=default", "fid=none", "model.flow.num_classes=10",
                            "model.flow.guidance_scale=2.0", "model.test_likelihood_batches=1",
                            "model.flow.net={base_channels: 8, channel_mult: [1, 2], attention_resolutions: []}",
                            "model.flow.eval_solver.atol=1e-2", "model.flow.eval_solver.rtol=1e-2"))
    model = load_model(results["ckpt_path"])
    assert model.model.num_classes == 10 and model.model.guidance_scale == 2.0
    levels = model.sample(4, labels=torch.tensor([0, 1, 2, 3]), method="euler", steps=2)
    assert levels.shape == (4, 1, 8, 8) and levels.dtype == torch.uint8 and int(levels.max()) <= 16
