"""Public API: load a trained model from a checkpoint (design.md section 4).

    from flowgen import load_model
    m = load_model("runs/.../checkpoints/last.ckpt")
    m.bits_per_dim(k); m.log_prob(x); m.sample(n, temperature=1.0); m.model
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded safely (corrupt, truncated, unsafe or not flowgen's)."""


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with clear errors; never executes code from the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path.resolve()}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            raise CheckpointError(
                f"{path} contains pickled Python objects that could run code when loaded; flowgen only "
                "loads checkpoints made of tensors and plain containers (torch.load weights_only=True). "
                "Re-save it with flowgen, or load it yourself only if you trust its source."
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or not a torch file): {err}") from None
    except Exception as err:  # any parse failure (zip, pickle stream, I/O) means an unreadable file
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt): {err}") from None
    if not isinstance(checkpoint, dict) or "flowgen" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is a torch file but not a flowgen checkpoint (no 'flowgen' entry)")
    return checkpoint


def module_from_checkpoint(checkpoint: dict[str, Any]):
    """Rebuild the LightningModule of a checkpoint read by ``read_checkpoint``, weights loaded."""
    from flowgen.lit.modules import MODULES

    kind = checkpoint["flowgen"].get("module")
    if kind not in MODULES:
        raise CheckpointError(f"unknown flowgen module type {kind!r} in checkpoint; known: {sorted(MODULES)}")
    module = MODULES[kind](**checkpoint["hyper_parameters"])
    module.load_state_dict(checkpoint["state_dict"])
    module.on_load_checkpoint(checkpoint)
    return module


def check_same_model(checkpoint: dict[str, Any], hparams: dict[str, Any], keys: tuple[str, ...] = ("flow", "data")) -> None:
    """Raise ``CheckpointError`` naming the options where a checkpoint and a config disagree."""
    saved = checkpoint["hyper_parameters"]
    diffs = [
        f"{key}.{name}: checkpoint {saved[key].get(name)!r} vs config {hparams[key].get(name)!r}"
        for key in keys
        for name in sorted(set(saved.get(key, {})) | set(hparams.get(key, {})))
        if saved.get(key, {}).get(name) != hparams.get(key, {}).get(name)
    ]
    if diffs:
        raise CheckpointError(
            "the checkpoint was trained with a different model or data; pass the overrides it was "
            "trained with (its run's .hydra/overrides.yaml) to resume it:\n  " + "\n  ".join(diffs)
        )


def load_model(path: str | Path, map_location: Any = "cpu"):
    """The trained LightningModule of a flowgen checkpoint, in eval mode on ``map_location``.

    It exposes ``bits_per_dim``, ``log_prob``, ``sample`` and the pure-torch ``model``.
    """
    module = module_from_checkpoint(read_checkpoint(path, map_location))
    device = torch.device(map_location) if isinstance(map_location, str) else None
    if device is not None:
        module.to(device)
    return module.eval()
