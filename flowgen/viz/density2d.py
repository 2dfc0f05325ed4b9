"""The learned density of a 2-D model next to its samples and the data (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402


def save_density_figure(
    log_p: Tensor, bound: float, samples: Tensor, data: Tensor | None, path: str | Path, title: str = ""
) -> Path:
    """Three panels: data points, model density exp(log p) on [-bound, bound]^2, model samples."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = 3 if data is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 4), squeeze=False)
    axes = list(axes[0])
    extent = (-bound, bound, -bound, bound)
    if data is not None:
        ax = axes.pop(0)
        ax.scatter(data[:, 0].cpu(), data[:, 1].cpu(), s=1, alpha=0.5, color="black")
        ax.set_title("data")
    axes[0].imshow(log_p.exp().cpu().numpy(), origin="lower", extent=extent, cmap="viridis")
    axes[0].set_title("model density")
    axes[1].scatter(samples[:, 0].cpu(), samples[:, 1].cpu(), s=1, alpha=0.5, color="tab:blue")
    axes[1].set_title("model samples")
    for ax in fig.axes:
        ax.set_xlim(-bound, bound)
        ax.set_ylim(-bound, bound)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
