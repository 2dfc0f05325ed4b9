"""Callback logging the 2-Wasserstein distance of model samples to the test points (2-D data).

At the end of testing, draws n = min(num_points, |test set|) samples with a fixed seed and
logs ``test/w2`` = W2(samples, first n test points) (exact assignment,
``flowgen.metrics.w2``; units of the data), ``test/w2_floor`` = W2(first n training points,
the same test points), the value a perfect model would get from finite-sample noise, and, for
continuous flows, ``test/sample_nfe``, the function evaluations of that sampling solve. Every rank computes the same value (same
seed, same points), so no synchronisation is needed. Image data: does nothing.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from flowgen.lit.module import GenerativeModule
from flowgen.lit.noise import seeded_generator
from flowgen.metrics.w2 import w2_distance


class SampleW2(pl.Callback):
    """Args: num_points (samples and test points compared), seed (sampling noise)."""

    def __init__(self, num_points: int = 1024, seed: int = 0) -> None:
        super().__init__()
        self.num_points = num_points
        self.seed = seed

    @torch.no_grad()
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: GenerativeModule) -> None:
        if pl_module.is_image:
            return
        test_set, train_set = trainer.datamodule.test_set, trainer.datamodule.train_set
        n = min(self.num_points, len(test_set), len(train_set))
        points = torch.stack([test_set[i][0] for i in range(n)]).float()
        samples = pl_module.sample(n, generator=seeded_generator(pl_module.device, self.seed, 0)).cpu()
        pl_module.log("test/w2", w2_distance(samples, points))
        pl_module.log("test/w2_floor", w2_distance(torch.stack([train_set[i][0] for i in range(n)]).float(), points))
        stats = getattr(pl_module.model, "solver_stats", None)
        if stats is not None:
            pl_module.log("test/sample_nfe", stats()["nfe"])
