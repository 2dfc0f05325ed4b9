"""EMA of the weights: Lightning's ``EMAWeightAveraging`` with checkpoints tested as saved.

Lightning's callback stores the averaged weights as the checkpoint's ``state_dict`` and the
raw ones as ``current_model_state``; when a checkpoint is loaded while the callback holds an
average (``trainer.test(ckpt_path=...)`` right after ``fit``), it restores the *raw* weights
into the model, so the test would not evaluate the EMA. This subclass restores the raw
weights only when resuming training; testing, validating or predicting from a checkpoint
keeps its ``state_dict``, the averaged weights, exactly as ``flowgen.load_model`` does.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EMAWeightAveraging
from pytorch_lightning.trainer.states import TrainerFn


class EMA(EMAWeightAveraging):
    """``EMAWeightAveraging(decay, update_every_n_steps, ...)``; see the module docstring."""

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
