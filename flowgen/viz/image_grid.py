"""Image sample grids as PNG (torchvision)."""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor
from torchvision.utils import save_image


def save_level_grid(levels: Tensor, num_levels: int, path: str | Path, nrow: int = 8, min_size: int = 32) -> Path:
    """Save integer levels [n,C,H,W] in {0..K-1} as one PNG grid (levels scaled to [0,1]).

    Images smaller than ``min_size`` pixels are enlarged by an integer factor (nearest
    neighbour), so 8x8 digits stay legible.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = levels.float().cpu() / (num_levels - 1)
    factor = max(1, min_size // images.shape[-1])
    if factor > 1:
        images = F.interpolate(images, scale_factor=factor, mode="nearest")
    save_image(images, path, nrow=nrow, padding=factor, pad_value=1.0)
    return path
