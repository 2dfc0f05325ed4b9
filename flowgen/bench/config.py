"""Settings shared by every workload of one benchmark run."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BenchConfig:
    """device: where both sides run; clock: ``timing.CLOCKS`` key; steps: timed steps per
    measurement (median over them); warmup: untimed steps before them; quick: tiny sizes
    (tests, smoke runs); train_steps: cfm2d training length before W2/NFE; seed: of every input."""

    device: torch.device
    clock: str = "wall"
    steps: int = 20
    warmup: int = 3
    quick: bool = False
    train_steps: int = 2000
    seed: int = 0
