"""Optimiser and learning-rate schedule from plain config dicts."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adamax": torch.optim.Adamax,
}
SCHEDULES = ("constant", "cosine", "linear")


# optimisers with a fused implementation: one kernel updates every parameter
FUSABLE = ("adam", "adamw")


def _all_cpu_floats(params: list[torch.nn.Parameter]) -> bool:
    return bool(params) and all(isinstance(p, torch.Tensor) and p.device.type == "cpu" and p.is_floating_point()
                                for p in params)


def build_optimizer(params: Iterable[torch.nn.Parameter], name: str = "adam", lr: float = 1e-3, **kwargs: Any) -> torch.optim.Optimizer:
    """``OPTIMIZERS[name](params, lr=lr, **kwargs)`` (weight_decay, betas, eps, ...).

    Adam and AdamW on CPU parameters use torch's fused kernel (``fused=True``, the same update:
    a 3x faster step than the per-parameter loop for small models) unless ``fused`` or
    ``foreach`` is given; on GPUs torch's default (foreach) stays, which keeps Lightning's AMP
    gradient unscaling before flowgen's gradient clipping.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    params = list(params)
    if name in FUSABLE and "fused" not in kwargs and "foreach" not in kwargs and _all_cpu_floats(params):
        kwargs["fused"] = True
    return OPTIMIZERS[name](params, lr=lr, **kwargs)


def check_config(optimizer: dict[str, Any] | None, scheduler: dict[str, Any] | None) -> None:
    """Fail at model construction (not at the first step) on unknown optimiser or schedule names."""
    name = (optimizer or {}).get("name", "adam")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    schedule = (scheduler or {}).get("name", "constant")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; choose one of {SCHEDULES}")


def lr_factor(name: str, warmup_steps: int, total_steps: int, min_factor: float = 0.0) -> Callable[[int], float]:
    """Multiplier of the base lr at optimiser step s: linear warm-up over ``warmup_steps``,
    then ``constant`` (1), ``cosine`` or ``linear`` decay to ``min_factor`` at ``total_steps``."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {name!r}; choose one of {SCHEDULES}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if name == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if name == "cosine" else 1.0 - progress
        return min_factor + (1.0 - min_factor) * decay

    return factor
