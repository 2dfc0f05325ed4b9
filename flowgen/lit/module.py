"""Base LightningModule: wires a pure-torch generative model to training and evaluation.

The torch model lives in ``self.model`` (built from plain-dict hparams by
``flowgen.registry``); this class only adds optimisers, metrics, seeded noise, the
non-finite-step guard and checkpoint bookkeeping. Subclasses define ``training_loss``.

Optional protocol of the torch model, used when present:
- ``needs_data_init() -> bool`` and ``data_init(y)``: data-dependent initialisation (ActNorm),
  run once in ``on_fit_start`` from ``data_init_samples`` training images on every rank
  (the model all-reduces its statistics), never from validation data and never again after
  a checkpoint restored the model's initialised flag;
- ``solver_stats() -> dict[str, float]``: e.g. NFE of the last ODE solves, logged per step
  (``train/<name>``) and per evaluation epoch (``val/<name>``, ``test/<name>``).

Public helpers (design.md section 4), usable on a module returned by ``load_model``:
``log_prob(x)``, ``bits_per_dim(k)``, ``sample(n, temperature)``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torchmetrics import MeanMetric, Metric

from flowgen.data.quantization import dequantize, quantize
from flowgen.data.samplers import global_batch_index
from flowgen.lit.errors import NonFiniteLossError, NonFiniteStateError
from flowgen.lit.noise import seeded_generator
from flowgen.lit.optim import build_optimizer, check_config, lr_factor
from flowgen.metrics.bpd import BitsPerDim, bits_per_dim, dequantized_log_prob
from flowgen.registry import build_model

log = logging.getLogger(__name__)


class GenerativeModule(pl.LightningModule):
    """A generative model of images (integer levels) or of continuous toy data.

    Args:
        flow: model spec for ``flowgen.registry.build_model`` (``name`` plus options).
        data: the datamodule's ``spec()`` (shape, num_levels, is_image, name).
        optimizer: ``name`` (adam | adamw | adamax), ``lr`` and optimiser kwargs.
        scheduler: ``name`` (constant | cosine | linear), ``warmup_steps``, ``min_factor``.
        noise_seed: seed of the training noise; each rank and epoch derive their own stream.
        eval_seed: seed of the evaluation noise (deterministic val/test bpd), keyed per eval batch.
        eval_dequant_samples: dequantisation samples S for test bpd (importance weighted).
        max_consecutive_nonfinite: stop after this many skipped steps in a row.
        data_init_samples: training images used for data-dependent initialisation (ActNorm).
        max_grad_norm: clip the global gradient norm to this value (None: no clipping); the
            norm before clipping is logged as ``train/grad_norm``.
    """

    module_type = "base"

    def __init__(
        self,
        flow: dict[str, Any],
        data: dict[str, Any],
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        noise_seed: int = 0,
        eval_seed: int = 1234,
        eval_dequant_samples: int = 1,
        max_consecutive_nonfinite: int = 20,
        data_init_samples: int = 256,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_config(optimizer, scheduler)
        self.model = build_model(flow, data)
        self.data_shape = tuple(data["shape"])
        self.num_levels = data.get("num_levels")
        self.is_image = bool(data["is_image"])
        self.num_dims = math.prod(self.data_shape)
        self.metric_name = "bpd" if self.is_image else "nll"
        self.val_metric = self._new_metric()
        self.test_metric = self._new_metric()
        self.skipped_steps = 0
        self._consecutive_nonfinite = 0
        self._train_gen: torch.Generator | None = None
        self._eval_gen: torch.Generator | None = None

    @property
    def default_monitor(self) -> str:
        """Metric for the best checkpoint and sweeps when the config leaves it null."""
        return f"val/{self.metric_name}"

    # ------------------------------------------------------------------ public helpers
    def log_prob(self, x: Tensor) -> Tensor:
        """log density in nats, Tensor[B]: of dequantised y in [0,1]^D (images) or of x (toy)."""
        return self.model.log_prob(x)

    def bits_per_dim(self, k: Tensor, num_samples: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """bpd of integer levels k [B,C,H,W], Tensor[B]; dequantisation noise from ``generator``
        (default: a fresh ``eval_generator()``, so repeated calls agree). Passing
        ``eval_generator(b)`` for the b-th test batch (in order, ``data.eval_batch_size`` images
        each) reproduces the logged ``test/bpd``."""
        if not self.is_image:
            raise ValueError("bits_per_dim needs image data (integer levels); use log_prob for continuous data")
        k = k.to(self.device)
        if generator is None:
            generator = self.eval_generator()
        log_p = dequantized_log_prob(self.log_prob, k, self.num_levels, num_samples, generator)
        return bits_per_dim(log_p, self.num_dims, self.num_levels)

    def eval_generator(self, batch: int = 0) -> torch.Generator:
        """The evaluation noise of eval batch ``batch`` (its index in the single-process loop):
        keyed by the batch, not the rank, so a DDP evaluation draws the same noise per image."""
        return seeded_generator(self.device, self.hparams.eval_seed, batch)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None, **solver: Any) -> Tensor:
        """n samples: integer levels [n,C,H,W] for images, float points [n,D] for toy data."""
        y = self.model.sample(n, temperature=temperature, generator=generator, **solver)
        return quantize(y, self.num_levels) if self.is_image else y

    # ------------------------------------------------------------------ training
    def training_loss(self, batch: Any) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        loss = self.training_loss(batch)
        if not self._finite_or_skip(torch.isfinite(loss.detach()).all(), "loss"):
            return None
        self.log("train/loss", loss, prog_bar=True, batch_size=batch[0].shape[0])
        return loss

    def on_fit_start(self) -> None:
        needs_init = getattr(self.model, "needs_data_init", None)
        if needs_init is None or not needs_init():
            return
        chunks, count = [], 0
        for x, _ in self.trainer.datamodule.train_dataloader():
            chunks.append(x)
            count += x.shape[0]
            if count >= self.hparams.data_init_samples:
                break
        x = torch.cat(chunks)[: self.hparams.data_init_samples].to(self.device)
        if self.is_image:
            generator = seeded_generator(self.device, self.hparams.noise_seed, self.global_rank, -1)
            x = dequantize(x, self.num_levels, generator)
        with torch.no_grad():
            self.model.data_init(x)
        log.info("data-dependent initialisation from %d training samples per rank", x.shape[0])

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._log_solver_stats("train", on_step=True)

    def _log_solver_stats(self, stage: str, on_step: bool) -> None:
        stats = getattr(self.model, "solver_stats", None)
        for name, value in (stats() if stats is not None else {}).items():
            self.log(f"{stage}/{name}", float(value), on_step=on_step, on_epoch=not on_step, sync_dist=not on_step)

    def on_train_epoch_start(self) -> None:
        self._train_gen = seeded_generator(self.device, self.hparams.noise_seed, self.global_rank, self.current_epoch)

    def on_train_epoch_end(self) -> None:
        self.log("train/skipped_steps", float(self.skipped_steps))

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not grads:
            return
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        if not self._finite_or_skip(torch.isfinite(norm), "gradient"):
            optimizer.zero_grad(set_to_none=True)
            return
        self.log("train/grad_norm", norm)
        if self.hparams.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters(), self.hparams.max_grad_norm)

    def _finite_or_skip(self, finite: Tensor, what: str) -> bool:
        """Count and skip a step whose loss/gradient is non-finite on any rank; stop after too many."""
        if self.trainer.strategy.reduce_boolean_decision(bool(finite), all=True):
            self._consecutive_nonfinite = 0
            return True
        self.skipped_steps += 1
        self._consecutive_nonfinite += 1
        self.log("train/skipped_steps", float(self.skipped_steps))
        log.warning("non-finite %s at step %d: step skipped (%d skipped so far)", what, self.global_step, self.skipped_steps)
        if self._consecutive_nonfinite >= self.hparams.max_consecutive_nonfinite:
            raise NonFiniteLossError(
                f"{self._consecutive_nonfinite} consecutive steps had a non-finite {what} (last at step "
                f"{self.global_step}); training stopped, the last checkpoint written before this is intact. "
                "Lower model.optimizer.lr, enable trainer.gradient_clip_val or add warm-up "
                "(model.scheduler.warmup_steps)."
            )
        return False

    # ------------------------------------------------------------------ evaluation
    def _new_metric(self) -> Metric:
        return BitsPerDim() if self.is_image else MeanMetric()

    def _eval_log_prob(self, x: Tensor, num_samples: int) -> Tensor:
        if not self.is_image:
            return self.log_prob(x)
        return dequantized_log_prob(self.log_prob, x, self.num_levels, num_samples, self._eval_gen)

    def _eval_step(self, batch: Any, stage: str, metric: Metric, num_samples: int) -> None:
        x = batch[0]
        log_p = self._eval_log_prob(x, num_samples)
        if self.is_image:
            metric.update(log_p, self.num_dims, self.num_levels)
        else:
            metric.update(-log_p)
        self.log(f"{stage}/{self.metric_name}", metric, prog_bar=stage == "val", batch_size=x.shape[0])
        self._log_solver_stats(stage, on_step=False)

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_gen = self.eval_generator(global_batch_index(batch_idx, self.global_rank, self.trainer.world_size))

    on_test_batch_start = on_validation_batch_start

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_metric, 1)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_metric, self.hparams.eval_dequant_samples)

    def on_test_epoch_end(self) -> None:
        if self.is_image:
            self.log("test/dequant_samples", float(self.hparams.eval_dequant_samples), sync_dist=True)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.parameters(), **(self.hparams.optimizer or {"name": "adam"}))
        sched = dict(self.hparams.scheduler or {})
        factor = lr_factor(
            sched.pop("name", "constant"),
            sched.pop("warmup_steps", 0),
            int(self.trainer.estimated_stepping_batches),
            **sched,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "train/lr"}}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        bad = [name for name, t in self.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
        if bad:
            raise NonFiniteStateError(f"refusing to write a checkpoint: non-finite values in {bad[:5]}")
        checkpoint["flowgen"] = {"module": self.module_type, "skipped_steps": self.skipped_steps}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_steps = int(checkpoint.get("flowgen", {}).get("skipped_steps", 0))
