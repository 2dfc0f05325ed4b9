"""Step timing: fixed thread count, device synchronisation, interleaved sides, median.

``time_interleaved`` runs ``warmup + steps`` rounds; in round i every side runs its step
``fn(i)`` once (each side gets the same input index i), the order of the sides reversed on
every other round so that drifts of a shared, noisy machine hit all sides alike. Only the
last ``steps`` rounds are timed: seconds per call on one of the ``CLOCKS``,

- ``wall``: ``time.perf_counter``, with a device synchronisation before and after the call
  (the only meaningful clock on CUDA);
- ``cpu``: ``time.process_time``, the CPU seconds of every thread of this process. On a
  shared CPU machine it leaves out the time other processes hold the cores (which wall time
  adds to both sides alike, pulling ratios towards 1); with one thread it equals the wall
  time of an idle machine, with n threads it is their summed work.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence

import torch

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def median(values: Sequence[float]) -> float:
    """The median (mean of the two middle values for an even count)."""
    if not values:
        raise ValueError("median of an empty sequence")
    return float(statistics.median(values))


def set_threads(threads: int) -> None:
    """Pin torch's intra-op thread count (both sides of a comparison share it)."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (CUDA); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def default_clock(device: torch.device) -> str:
    """``cpu`` on the CPU, ``wall`` on accelerators."""
    return "cpu" if device.type == "cpu" else "wall"


def timed_call(fn: Callable[[int], object], index: int, device: torch.device, clock: str = "wall") -> float:
    """Seconds of one call ``fn(index)`` on ``clock``, device work included."""
    now = CLOCKS[clock]
    synchronize(device)
    start = now()
    fn(index)
    synchronize(device)
    return now() - start


def time_interleaved(sides: Mapping[str, Callable[[int], object]], steps: int, warmup: int,
                     device: torch.device, clock: str = "wall") -> dict[str, list[float]]:
    """{side: [seconds of each timed step]} (``steps`` values per side); see the module docstring."""
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got {steps} and {warmup}")
    if clock not in CLOCKS:
        raise ValueError(f"unknown clock {clock!r}; choose one of {sorted(CLOCKS)}")
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + steps):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            seconds = timed_call(sides[name], index, device, clock)
            if index >= warmup:
                times[name].append(seconds)
    return times
