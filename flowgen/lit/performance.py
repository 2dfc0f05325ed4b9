"""Callback applying ``flowgen.performance`` options to the model's networks in every process.

Applied in ``setup``, i.e. in each DDP process (after ``ddp_spawn`` started it) and before
the strategy wraps the model. These are execution options, not model options: they are not
saved in checkpoints, and a run may be resumed with them on or off.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch

from flowgen.continuous.block import CNFBlock
from flowgen.performance import autocast_networks, channels_last_networks, compile_networks

log = logging.getLogger(__name__)

FULL_PRECISION = ("32-true", "32", "64-true", "64")


class NetworkPerformance(pl.Callback):
    """Args:
        autocast: None, or "bf16": coupling networks and vector fields run under bf16 autocast in
            training (log-dets, inverses, priors, ODE states and all evaluation stay float32).
        channels_last: channels-last memory format for the networks' 4-D weights and inputs.
        compile: ``torch.compile`` each network (not for likelihood training of continuous
            flows, which differentiates the field twice).
        compile_options: keyword arguments of ``torch.compile`` (mode, backend, dynamic, ...);
            None values are left out (torch's defaults).
    """

    def __init__(self, autocast: str | None = None, channels_last: bool = False, compile: bool = False,
                 compile_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        if autocast not in (None, "bf16"):
            raise ValueError(f"callbacks.performance.autocast={autocast!r}: choose null or bf16 (fp16 would need "
                             "loss scaling, which flowgen does not do)")
        self.autocast = autocast
        self.channels_last = channels_last
        self.compile = compile
        self.compile_options = {k: v for k, v in (compile_options or {}).items() if v is not None}
        self._applied_to: torch.nn.Module | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        model = pl_module.model
        if self._applied_to is model:
            return
        if self.autocast and str(trainer.precision) not in FULL_PRECISION:
            raise ValueError(f"trainer.precision={trainer.precision} autocasts the whole model, log-dets and priors "
                             "included; keep trainer.precision=32-true and use callbacks.performance.autocast=bf16")
        if self.compile and getattr(pl_module, "module_type", "") == "likelihood" and any(
                isinstance(m, CNFBlock) for m in model.modules()):
            raise ValueError("callbacks.performance.compile=true: torch.compile cannot differentiate twice, which "
                             "likelihood training of a continuous flow (FFJORD) does; turn compile off for this model")
        dtype = torch.bfloat16 if self.autocast else None
        done = []
        if self.channels_last:
            done.append(f"channels-last on {channels_last_networks(model)} networks")
        if self.compile:
            done.append(f"torch.compile{' with bf16 autocast' if dtype else ''} of "
                        f"{compile_networks(model, autocast=dtype, **self.compile_options)} networks")
        elif dtype is not None:
            done.append(f"bf16 autocast on {autocast_networks(model, dtype)} networks")
        if done:
            log.info("performance options: %s", "; ".join(done))
        self._applied_to = model
