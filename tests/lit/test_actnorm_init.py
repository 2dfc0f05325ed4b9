"""ActNorm's data-dependent init through the LightningModule: an explicit step in on_fit_start
from training images (before the sanity check's validation batch), identical on every DDP
rank, and never repeated after a checkpoint restored the initialised flags."""

import copy
from pathlib import Path

import hydra
import pytest
import pytorch_lightning as pl
import torch

from flowgen import load_model
from flowgen.flows.actnorm import actnorms
from flowgen.flows.multiscale import MultiScaleFlow
from flowgen.training import train


TINY_GLOW = ["model=glow", "model.flow.levels=2", "model.flow.steps=2", "model.flow.hidden_channels=8",
             "model.data_init_samples=64"]


def actnorm_state(module: pl.LightningModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.model.state_dict().items() if ".bias" in k or "log_scale" in k
            or k.endswith("initialized")}


class RecordAtSanityCheck(pl.Callback):
    """Keeps the ActNorm state when the sanity check (the first validation batch) starts."""

    def on_sanity_check_start(self, trainer, pl_module):
        self.state = actnorm_state(pl_module)


class DumpActNorm(pl.Callback):
    """Writes each rank's ActNorm parameters at the start and the end of training."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def _dump(self, trainer, pl_module, stage):
        norms = actnorms(pl_module.model)
        state = {"bias": [m.bias.detach().clone() for m in norms], "log_scale": [m.log_scale.detach().clone() for m in norms],
                 "initialized": [m.is_initialized for m in norms], "step": trainer.global_step}
        torch.save(state, Path(self.out_dir) / f"{stage}_rank{trainer.global_rank}.pt")

    def on_train_start(self, trainer, pl_module):
        self._dump(trainer, pl_module, "start")

    def on_train_end(self, trainer, pl_module):
        self._dump(trainer, pl_module, "end")


def build(cfg):
    datamodule = hydra.utils.instantiate(cfg.data)
    return datamodule, hydra.utils.instantiate(cfg.model, data=datamodule.spec())


def test_fit_initialises_from_training_images_in_train_mode_before_the_sanity_check(compose):
    cfg = compose(*TINY_GLOW, "debug=default")
    datamodule, module = build(cfg)
    untouched = copy.deepcopy(module)
    calls = []
    original = module.model.data_init

    def spy(y):
        calls.append((y.clone(), module.model.training))
        original(y)

    module.model.data_init = spy
    record = RecordAtSanityCheck()
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[record], logger=False, enable_checkpointing=False)
    assert module.model.needs_data_init()
    trainer.fit(module, datamodule=datamodule)

    assert len(calls) == 1
    y, was_training = calls[0]
    assert was_training and y.shape == (64, 1, 8, 8) and 0 <= y.min() and y.max() < 1
    # dequantised training images: floor(17 y) are images of the training split
    train_images = {tuple(x.flatten().tolist()) for x, _ in datamodule.train_set}
    assert all(tuple(k.flatten().tolist()) in train_images for k in (y * 17).floor().to(torch.uint8))
    # at the sanity check the model was already initialised, exactly as data_init(y) does it
    assert all(v.item() == 1 for k, v in record.state.items() if k.endswith("initialized"))
    untouched.model.data_init(y)
    for key, value in actnorm_state(untouched).items():
        torch.testing.assert_close(record.state[key], value, rtol=0, atol=0, msg=key)
    # the first ActNorm normalises the init batch: zero mean, unit variance per channel
    first = actnorms(untouched.model)[0]
    x = untouched.model.levels[0].layers[0](untouched.model.preprocess(y)[0])[0]
    out = first(x)[0]
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(dim=(0, 2, 3), unbiased=False), torch.ones(4), atol=1e-4, rtol=0)


@pytest.mark.slow
def test_two_process_ddp_ranks_hold_identical_actnorm_parameters(compose, tmp_path):
    cfg = compose(*TINY_GLOW, "debug=default", "trainer=ddp_cpu", "trainer.limit_train_batches=3",
                  "trainer.limit_val_batches=1", "data.batch_size=16")
    datamodule, module = build(cfg)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[DumpActNorm(str(tmp_path))], logger=False,
                                      enable_checkpointing=False)
    trainer.fit(module, datamodule=datamodule)
    for stage in ("start", "end"):
        ranks = [torch.load(tmp_path / f"{stage}_rank{r}.pt") for r in range(2)]
        assert all(all(s["initialized"]) for s in ranks)
        for name in ("bias", "log_scale"):
            for a, b in zip(ranks[0][name], ranks[1][name]):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
    start, end = (torch.load(tmp_path / f"{stage}_rank0.pt") for stage in ("start", "end"))
    assert end["step"] == 3 and start["bias"][0].abs().max() > 0  # initialised from data, then trained
    assert any(not torch.equal(a, b) for a, b in zip(start["bias"], end["bias"]))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_resuming_from_a_checkpoint_does_not_reinitialise(compose, tmp_path, monkeypatch):
    common = [*TINY_GLOW, "debug=default", "~callbacks.sample_figures"]
    first = train(compose(*common, output_dir=tmp_path / "first"))
    ckpt = tmp_path / "first/checkpoints/last.ckpt"
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    flags = [k for k in saved if k.endswith("initialized")]
    assert flags and all(saved[k].item() == 1 for k in flags)

    def fail(self, y):
        raise AssertionError("data_init ran again after the checkpoint restored the flags")

    monkeypatch.setattr(MultiScaleFlow, "data_init", fail)
    cfg = compose(*common, "trainer.max_epochs=2", f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed")
    datamodule, module = build(cfg)
    record = RecordAtSanityCheck()
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[record], logger=False, enable_checkpointing=False)
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt))
    for key, value in record.state.items():  # restored, untouched
        torch.testing.assert_close(value, saved[f"model.{key}"], rtol=0, atol=0, msg=key)

    assert not load_model(first["ckpt_path"]).model.needs_data_init()
