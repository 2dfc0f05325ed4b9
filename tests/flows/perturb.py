"""Test helpers: random parameters, so zero-initialised layers do not make a test trivial."""

import torch


def _fill(module: torch.nn.Module, seed: int, std: float, add: bool) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            noise = std * torch.randn(p.shape, generator=gen, dtype=p.dtype)
            if add:
                p.add_(noise)
            else:
                p.copy_(noise)
    return module


def randomised(module: torch.nn.Module, seed: int = 0, std: float = 0.5) -> torch.nn.Module:
    """Every parameter of ``module`` set to N(0, std^2) draws (seeded); returns it."""
    return _fill(module, seed, std, add=False)


def perturbed(module: torch.nn.Module, seed: int = 0, std: float = 0.5) -> torch.nn.Module:
    """N(0, std^2) noise (seeded) added to every parameter, keeping the initialisation's
    structure (e.g. an LU 1x1 convolution near a rotation); returns ``module``."""
    return _fill(module, seed, std, add=True)
