"""sampling: images/s of each family's sampler and of bpd evaluation on digits (flowgen only).

Models: every family from the registry with its builder defaults for digits (1x8x8, K = 17),
seeded; ActNorms data-initialised from a digits batch; then every parameter perturbed by
N(0, 1e-3^2) so that the zero-initialised output layers (Glow's couplings, the FFJORD and
flow-matching fields) are not the identity. The models are untrained: the continuous models'
NFE are those of a near-identity field at the default evaluation solver (dopri5 1e-5), a
lower bound of a trained model's.

Measures (median over repeated calls; ``steps`` calls for discrete flows, 3 for ODE solves,
1 for the exact divergence, each call a whole batch):
- sampling: ``model.sample(n)`` images/s, and the NFE of one call (continuous models);
- bpd evaluation: ``log_prob`` of dequantised digits under ``torch.no_grad`` images/s, for
  continuous models with the Hutchinson (default for images) and the exact divergence
  (D = 64 vector-Jacobian products per evaluation, on a smaller batch).
There is no peer library for this workload.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from sklearn.datasets import load_digits
from torch import nn

from flowgen.bench.config import BenchConfig
from flowgen.bench.table import Row
from flowgen.bench.timing import median, timed_call
from flowgen.continuous.cnf import ContinuousFlow
from flowgen.data.quantization import dequantize
from flowgen.registry import build_model

NAME = "sampling"
FAMILIES = ("nice", "realnvp", "glow", "ffjord", "cfm")
DIGITS = {"shape": [1, 8, 8], "num_levels": 17, "is_image": True}
PERTURBATION = 1e-3
ODE_CALLS = 3


def digits_batch(n: int, seed: int) -> torch.Tensor:
    """n dequantised digits y in [0, 1]^(1x8x8)."""
    k = torch.from_numpy(load_digits().images[:n]).to(torch.uint8).unsqueeze(1)
    return dequantize(k, DIGITS["num_levels"], torch.Generator().manual_seed(seed))


def build(family: str, y: torch.Tensor, seed: int) -> nn.Module:
    """The family's model for digits, data-initialised on y, perturbed, in eval mode."""
    torch.manual_seed(seed)
    model = build_model({"name": family}, DIGITS)
    if hasattr(model, "data_init"):
        model.data_init(y)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(PERTURBATION * torch.randn_like(p))
    return model.eval()


def images_per_second(fn: Callable[[], object], n: int, calls: int, cfg: BenchConfig) -> float:
    """n / (median seconds of ``calls`` calls of ``fn``) on the run's clock."""
    return n / median([timed_call(lambda _: fn(), i, cfg.device, cfg.clock) for i in range(calls)])


def _set_divergence(model: ContinuousFlow, divergence: str) -> None:
    for block in model.blocks():
        block.divergence = divergence


def run(cfg: BenchConfig) -> list[Row]:
    """Rows per family: sampling images/s (and NFE), bpd evaluation images/s."""
    n, n_exact = (4, 1) if cfg.quick else (64, 2)
    y = digits_batch(n, cfg.seed).to(cfg.device)
    rows = []
    for family in FAMILIES:
        model = build(family, y.cpu(), cfg.seed).to(cfg.device)
        continuous = isinstance(model, ContinuousFlow)
        calls = min(cfg.steps, ODE_CALLS) if continuous else cfg.steps
        gen = torch.Generator(cfg.device).manual_seed(cfg.seed)
        model.sample(n, generator=gen)  # warm-up
        rate = images_per_second(lambda: model.sample(n, generator=gen), n, calls, cfg)
        rows.append(Row(NAME, f"{family}: sample {n} images", "images/s", rate))
        if continuous:
            rows.append(Row(NAME, f"{family}: sampling NFE (dopri5 1e-5)", "NFE", model.solver_stats()["nfe"]))
        divergences = ("hutchinson", "exact") if continuous else (None,)
        for divergence in divergences:
            if divergence is not None:
                _set_divergence(model, divergence)
            batch = y[:n_exact] if divergence == "exact" else y
            with torch.no_grad():
                rate = images_per_second(lambda: model.log_prob(batch), len(batch), 1 if divergence == "exact" else calls, cfg)
            label = f"{family}: bpd evaluation" + ("" if divergence is None else f", {divergence} divergence")
            rows.append(Row(NAME, f"{label} ({len(batch)} images)", "images/s", rate))
            if divergence is not None:
                rows.append(Row(NAME, f"{label}: NFE", "NFE", model.solver_stats()["nfe"]))
    return rows
