"""Validation-end callbacks (FID, sample figures) evaluate the EMA weights, as validation does."""

import hydra
import pytorch_lightning as pl
import pytest
import torch
from pytorch_lightning.callbacks import EMAWeightAveraging

from flowgen.training import averaging_last


class WeightProbe(pl.Callback):
    """Records the first parameter as seen at the end of each validation epoch."""

    def __init__(self):
        self.seen = []

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.seen.append(next(pl_module.model.parameters()).detach().clone())


@pytest.mark.parametrize("ordered", [True, False])
def test_callbacks_see_the_averaged_weights_only_when_ema_comes_last(compose, ordered):
    cfg = compose("model=cfm", "data=toy2d", "data.n_train=512", "data.n_val=64", "data.n_test=64",
                  "model.val_likelihood_batches=0")
    datamodule = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model, data=datamodule.spec())
    ema, probe = EMAWeightAveraging(decay=0.5), WeightProbe()
    callbacks = averaging_last([ema, probe]) if ordered else [ema, probe]
    assert callbacks[-1] is ema or not ordered
    trainer = pl.Trainer(max_epochs=1, callbacks=callbacks, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=datamodule)
    averaged = next(ema._average_model.module.model.parameters()).detach()
    current_at_val = probe.seen[-1]
    # training ends after this validation, so the averaged weights are still those of that epoch
    assert torch.equal(current_at_val, averaged) == ordered
