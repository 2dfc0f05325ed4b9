"""Reproducible, per-rank random streams for in-step noise (dequantisation, sampling).

Seeds are derived from (seed, rank, epoch, ...) with numpy's SeedSequence, so every rank
draws different noise, and a run resumed at an epoch boundary draws exactly the noise the
uninterrupted run would have drawn.
"""

from __future__ import annotations

import numpy as np
import torch


def derive_seed(*keys: int) -> int:
    """A 63-bit seed that depends on every key (order matters)."""
    return int(np.random.SeedSequence([int(k) % 2**64 for k in keys]).generate_state(1, dtype=np.uint64)[0] >> 1)


def seeded_generator(device: torch.device | str, *keys: int) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``derive_seed(*keys)``."""
    return torch.Generator(device=device).manual_seed(derive_seed(*keys))
