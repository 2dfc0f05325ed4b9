"""Trajectories of a 2-D continuous flow: points carried from noise (t = 0) to data (t = 1)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402


@torch.no_grad()
def flow_trajectories(model, num_points: int = 256, num_times: int = 41, temperature: float = 1.0,
                      generator: torch.Generator | None = None, **solver) -> tuple[Tensor, Tensor] | None:
    """(times [T], states [T, n, 2]) of ``num_points`` prior samples carried by ``model``
    (a ``ContinuousFlow`` or a module with ``.model``), or None for models without trajectories."""
    model = getattr(model, "model", model)
    if not hasattr(model, "trajectory") or getattr(model, "latent_shape", None) != (2,):
        return None
    device = next(model.parameters()).device
    z = model.prior.sample((num_points, 2), temperature, generator, device)
    try:
        return model.trajectory(z, num_times=num_times, **solver)
    except NotImplementedError:
        return None


def save_trajectory_figure(times: Tensor, states: Tensor, bound: float, path: str | Path, title: str = "") -> Path:
    """One panel: paths of states [T, n, 2] (grey), starts at t = 0 (blue), ends at t = 1 (red)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    states = states.detach().cpu()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(states[:, :, 0].numpy(), states[:, :, 1].numpy(), color="grey", alpha=0.3, linewidth=0.5)
    ax.scatter(states[0, :, 0], states[0, :, 1], s=3, color="tab:blue", label="t = 0 (noise)", zorder=3)
    ax.scatter(states[-1, :, 0], states[-1, :, 1], s=3, color="tab:red", label="t = 1 (data)", zorder=3)
    ax.set_xlim(-bound, bound)
    ax.set_ylim(-bound, bound)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    ax.set_title(title or f"trajectories over t in [{float(times[0]):g}, {float(times[-1]):g}]")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_model_trajectories(model, path: str | Path, bound: float, num_points: int = 256, num_times: int = 41,
                            temperature: float = 1.0, seed: int = 0, title: str = "") -> Path | None:
    """Draw and save the trajectories figure of a 2-D continuous model; None if it has none."""
    device = next(getattr(model, "model", model).parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    result = flow_trajectories(model, num_points, num_times, temperature, generator)
    if result is None:
        return None
    return save_trajectory_figure(*result, bound=bound, path=path, title=title)
