"""Flow-matching training of a continuous flow (simulation-free regression).

The torch model provides ``matching_loss(x1, generator, **cond)`` (a scalar, the regression
loss of ``flowgen.matching.objective``) next to the CNF interface (``log_prob`` through the
shared ODE core, ``sample``, ``solver_stats``). Likelihoods are expensive (an ODE solve with a
divergence per batch), so validation logs the regression loss ``val/fm_loss`` on every batch
and ``val/bpd`` (``val/nll`` for 2-D data) only on the first ``val_likelihood_batches``;
the test loop evaluates the likelihood on the first ``test_likelihood_batches`` (None: all).
Class-conditional models (``model.flow.num_classes``) get the batch labels in training and
validation; their likelihood is the unconditional one and their samples use classifier-free
guidance (``model.flow.guidance_scale``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import MeanMetric

from flowgen.data.quantization import dequantize
from flowgen.lit.module import GenerativeModule


class FlowMatchingModule(GenerativeModule):
    """Trains ``self.model.matching_loss``; evaluates likelihood on a configurable subset."""

    module_type = "flow_matching"

    def __init__(self, *args: Any, val_likelihood_batches: int = 1, test_likelihood_batches: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.val_fm_loss = MeanMetric()

    @property
    def default_monitor(self) -> str:
        return "val/fm_loss"

    def _data_space(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        return dequantize(x, self.num_levels, generator) if self.is_image else x

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Training solves no ODE, so there are no solver statistics to log."""

    def _labels(self, batch: Any) -> Tensor | None:
        return batch[1] if self.model.num_classes is not None else None

    def training_loss(self, batch: Any) -> Tensor:
        x = batch[0]
        loss = self.model.matching_loss(self._data_space(x, self._train_gen), self._train_gen, self._labels(batch))
        self.log("train/fm_loss", loss, batch_size=x.shape[0])
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x = batch[0]
        loss = self.model.matching_loss(self._data_space(x, self._eval_gen), self._eval_gen, self._labels(batch))
        self.val_fm_loss.update(loss.detach(), weight=x.shape[0])
        self.log("val/fm_loss", self.val_fm_loss, prog_bar=True, batch_size=x.shape[0])
        if batch_idx < self.hparams.val_likelihood_batches:
            self._eval_step(batch, "val", self.val_metric, 1)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        limit = self.hparams.test_likelihood_batches
        if limit is None or batch_idx < limit:
            super().test_step(batch, batch_idx)
