"""Training throughput: images (or 2-D points) per second over all ranks, and peak GPU memory.

Every ``trainer.log_every_n_steps`` training batches logs

    train/images_per_s = world_size * (samples seen on this rank) / (wall seconds since the last log)

(``train/points_per_s`` for 2-D data), measured between batch ends, so it includes data loading,
the optimiser step and any skipped steps; on CUDA also ``train/peak_mem_gb``, the peak memory
allocated by tensors on this rank's device since the start of training (10^9 bytes).
"""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch


class Throughput(pl.Callback):
    """Logs training samples per second and, on CUDA, peak memory (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._since = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._count, self._since = 0, time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._count += int(batch[0].shape[0])
        if (batch_idx + 1) % trainer.log_every_n_steps:
            return
        now = time.perf_counter()
        name = "images_per_s" if getattr(pl_module, "is_image", True) else "points_per_s"
        pl_module.log(f"train/{name}", trainer.world_size * self._count / max(now - self._since, 1e-9),
                      on_step=True, on_epoch=False)
        if pl_module.device.type == "cuda":
            pl_module.log("train/peak_mem_gb", torch.cuda.max_memory_allocated(pl_module.device) / 1e9,
                          on_step=True, on_epoch=False)
        self._count, self._since = 0, now
