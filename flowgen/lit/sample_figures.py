"""Callback saving sample figures: an image grid (PNG) or, for 2-D data, density + samples.

Written under ``<trainer.default_root_dir>/samples/``: ``epoch_XXX.png`` after validation
epochs, ``last.png`` when training ends and ``test.png`` with the weights that were tested;
for 2-D continuous flows also ``<tag>_trajectories.png`` (paths from noise to data).
Figures also go to TensorBoard / W&B when those loggers are active.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from torchvision.io import ImageReadMode, read_image

from flowgen.lit.module import GenerativeModule
from flowgen.metrics.grid2d import log_prob_on_grid
from flowgen.viz.density2d import save_density_figure
from flowgen.viz.image_grid import save_level_grid
from flowgen.viz.trajectories import save_model_trajectories


class SampleFigures(pl.Callback):
    """Args: num_samples (images in the grid / points in the scatter), temperature, every_n_epochs,
    seed (fixed sampling noise, so figures are comparable across epochs), grid_points (2-D density
    resolution), num_data_points (data scatter for 2-D)."""

    def __init__(
        self,
        num_samples: int = 64,
        temperature: float = 1.0,
        every_n_epochs: int = 1,
        seed: int = 0,
        grid_points: int = 200,
        num_data_points: int = 2000,
        num_points_2d: int = 2000,
    ) -> None:
        super().__init__()
        self.num_samples = num_samples
        self.temperature = temperature
        self.every_n_epochs = every_n_epochs
        self.seed = seed
        self.grid_points = grid_points
        self.num_data_points = num_data_points
        self.num_points_2d = num_points_2d

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: GenerativeModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self._save(trainer, pl_module, f"epoch_{trainer.current_epoch:03d}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: GenerativeModule) -> None:
        # after on_train_end, where weight averaging (EMA) copies the averaged weights in
        self._save(trainer, pl_module, "last")

    def on_test_end(self, trainer: pl.Trainer, pl_module: GenerativeModule) -> None:
        self._save(trainer, pl_module, "test")

    def _save(self, trainer: pl.Trainer, pl_module: GenerativeModule, tag: str) -> None:
        if not trainer.is_global_zero:
            return
        was_training = pl_module.training
        pl_module.eval()
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        path = Path(trainer.default_root_dir) / "samples" / f"{tag}.png"
        with torch.no_grad():
            if pl_module.is_image:
                levels = pl_module.sample(self.num_samples, self.temperature, generator=generator)
                save_level_grid(levels, pl_module.num_levels, path, nrow=int(math.ceil(math.sqrt(self.num_samples))))
            else:
                self._save_2d(trainer, pl_module, generator, path, tag)
        pl_module.train(was_training)
        _log_figure(trainer, f"samples/{tag.split('_')[0]}", path)

    def _save_2d(self, trainer, pl_module, generator, path: Path, tag: str) -> None:
        data = _data_points(trainer, self.num_data_points)
        bound = math.ceil(2.0 * 1.1 * float(data.abs().max())) / 2.0 if data is not None else 4.5
        samples = pl_module.sample(self.num_points_2d, self.temperature, generator=generator)
        log_p, _ = log_prob_on_grid(pl_module.log_prob, bound, self.grid_points, device=pl_module.device)
        save_density_figure(log_p, bound, samples, data, path, title=f"{trainer.datamodule.name if trainer.datamodule else ''} {tag}")
        trajectories = save_model_trajectories(pl_module, path.with_name(f"{tag}_trajectories.png"), bound,
                                               temperature=self.temperature, seed=self.seed, title=f"{tag} trajectories")
        if trajectories is not None:  # continuous flows only
            _log_figure(trainer, f"trajectories/{tag.split('_')[0]}", trajectories)


def _data_points(trainer: pl.Trainer, n: int) -> torch.Tensor | None:
    """Up to n points of the validation set, or None without a datamodule."""
    dm = trainer.datamodule
    if dm is None:
        return None
    chunks, count = [], 0
    for x, _ in dm.val_dataloader():
        chunks.append(x)
        count += x.shape[0]
        if count >= n:
            break
    return torch.cat(chunks)[:n]


def _log_figure(trainer: pl.Trainer, key: str, path: Path) -> None:
    """Send a saved PNG to the image-capable loggers."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
        elif isinstance(logger, TensorBoardLogger):
            image = read_image(str(path), ImageReadMode.RGB)
            logger.experiment.add_image(key, image, global_step=trainer.global_step)
