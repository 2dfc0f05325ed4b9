"""Image sample grids as PNG (torchvision)."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor
from torchvision.utils import save_image


def save_level_grid(levels: Tensor, num_levels: int, path: str | Path, nrow: int = 8) -> Path:
    """Save integer levels [n,C,H,W] in {0..K-1} as one PNG grid (levels scaled to [0,1])."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(levels.float().cpu() / (num_levels - 1), path, nrow=nrow, padding=1, pad_value=1.0)
    return path
