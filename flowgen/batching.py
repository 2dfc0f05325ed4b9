"""Batch size semantics under data parallelism.

``data.batch_size`` is per device (Lightning's convention). One optimizer step sees

    global batch = batch_size x devices x num_nodes x accumulate_grad_batches

images. ``global_batch_size=G`` in the config asks for G images per step whatever the world
size W: the per-device batch b and accumulation A are derived with b <= ``data.batch_size``
(the largest batch that fits on one device) and W * A * b = G exactly, A as small as possible.
The learning rate is not rescaled.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, open_dict

log = logging.getLogger(__name__)


def world_size(devices: Any, num_nodes: int = 1, accelerator: str = "auto") -> int:
    """Number of training processes of a Lightning ``Trainer(devices, num_nodes, accelerator)``."""
    if isinstance(devices, (list, tuple, ListConfig)):
        per_node = len(devices)
    elif isinstance(devices, str) and "," in devices:
        per_node = len([d for d in devices.split(",") if d.strip()])
    elif str(devices) in ("auto", "-1"):
        gpu = accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
        per_node = torch.cuda.device_count() if gpu else 1
    else:
        per_node = int(devices)
    return per_node * int(num_nodes)


def trainer_world_size(trainer: DictConfig) -> int:
    """``world_size`` of a ``cfg.trainer`` config."""
    return world_size(trainer.get("devices", 1), trainer.get("num_nodes", 1), trainer.get("accelerator", "auto"))


def split_global_batch(global_batch_size: int, world: int, max_per_device: int) -> tuple[int, int]:
    """(per-device batch b, accumulation A) with world * A * b == global_batch_size, b <= max_per_device."""
    if global_batch_size < world or global_batch_size % world:
        raise ValueError(f"global_batch_size={global_batch_size} must be a positive multiple of the world size "
                         f"{world} (devices x num_nodes)")
    per_rank = global_batch_size // world
    for accumulate in range(-(-per_rank // max_per_device), per_rank + 1):
        if per_rank % accumulate == 0:
            return per_rank // accumulate, accumulate
    raise AssertionError("unreachable: accumulate = per_rank always divides")


def apply_global_batch_size(cfg: DictConfig) -> None:
    """Set ``cfg.data.batch_size`` and ``cfg.trainer.accumulate_grad_batches`` from ``cfg.global_batch_size``."""
    if cfg.trainer.get("accumulate_grad_batches", 1) != 1:
        raise ValueError("global_batch_size derives trainer.accumulate_grad_batches; leave that at 1 or drop "
                         "global_batch_size and set data.batch_size (per device) yourself")
    world = trainer_world_size(cfg.trainer)
    per_device, accumulate = split_global_batch(int(cfg.global_batch_size), world, int(cfg.data.batch_size))
    with open_dict(cfg):
        cfg.data.batch_size = per_device
        cfg.trainer.accumulate_grad_batches = accumulate
    log.info("global batch %d = %d per device x %d processes x %d accumulated batches",
             cfg.global_batch_size, per_device, world, accumulate)
