"""Non-finite losses and gradients: the step is skipped and counted; too many in a row stop the
run with a clear error; a checkpoint is never written from non-finite weights."""

import math

import pytest
import pytorch_lightning as pl
import torch

from flowgen.data.toy2d import Toy2dDataModule
from flowgen.lit.errors import NonFiniteLossError, NonFiniteStateError
from flowgen.lit.likelihood import LikelihoodModule

FLOW = {"name": "nice", "hidden_dim": 16, "num_hidden_layers": 1, "prior": "gaussian"}


class FlakyModule(LikelihoodModule):
    """Loss is NaN at the listed global steps (from ``nan_from`` on, if set)."""

    def __init__(self, nan_steps=(), nan_from=None, **kwargs):
        super().__init__(**kwargs)
        self.nan_steps, self.nan_from, self.calls = set(nan_steps), nan_from, 0

    def training_loss(self, batch):
        loss = super().training_loss(batch)
        step, self.calls = self.calls, self.calls + 1
        if step in self.nan_steps or (self.nan_from is not None and step >= self.nan_from):
            return loss * math.nan
        return loss


def fit(module, tmp_path, max_epochs):
    datamodule = Toy2dDataModule(n_train=512, n_val=128, n_test=128, batch_size=64)
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", logger=False, callbacks=[checkpoint],
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=datamodule)
    return trainer


def test_isolated_nan_steps_are_skipped_counted_and_leave_weights_finite(tmp_path):
    module = FlakyModule(nan_steps={2, 5, 6}, flow=FLOW, data=Toy2dDataModule().spec())
    trainer = fit(module, tmp_path, max_epochs=1)
    assert module.skipped_steps == 3
    assert trainer.callback_metrics["train/skipped_steps"] == 3
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["flowgen"]["skipped_steps"] == 3


def test_too_many_consecutive_nan_steps_stop_with_a_clear_error_and_keep_the_last_checkpoint(tmp_path):
    module = FlakyModule(nan_from=12, max_consecutive_nonfinite=3, flow=FLOW, data=Toy2dDataModule().spec())
    with pytest.raises(NonFiniteLossError, match="3 consecutive steps.*lr"):
        fit(module, tmp_path, max_epochs=3)  # 8 steps per epoch: epoch 0 ends cleanly, step 14 stops epoch 1
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["epoch"] == 0 and all(torch.isfinite(t).all() for t in saved["state_dict"].values())


def test_non_finite_gradient_skips_the_optimizer_step(tmp_path):
    class InfGrad(LikelihoodModule):
        def on_after_backward(self):
            if self.global_step == 1:
                next(self.parameters()).grad.fill_(math.inf)

    module = InfGrad(flow=FLOW, data=Toy2dDataModule().spec())
    fit(module, tmp_path, max_epochs=1)
    assert module.skipped_steps == 1
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_checkpoint_of_non_finite_weights_is_refused(tmp_path):
    module = LikelihoodModule(flow=FLOW, data=Toy2dDataModule().spec())
    with torch.no_grad():
        next(module.parameters()).fill_(math.nan)
    with pytest.raises(NonFiniteStateError, match="non-finite"):
        module.on_save_checkpoint({})


def test_max_grad_norm_clips_the_gradient_the_optimizer_sees(tmp_path):
    class Recording(LikelihoodModule):
        norms: list = []

        def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
            # Lightning calls this after on_before_optimizer_step, right before optimizer.step()
            grads = [p.grad for p in self.parameters() if p.grad is not None]
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    module = Recording(flow=FLOW, data=Toy2dDataModule().spec(), max_grad_norm=1e-3)
    fit(module, tmp_path, max_epochs=1)
    assert len(module.norms) == 8 and max(module.norms) <= 1e-3 * (1 + 1e-4)
