"""``ContinuousFlow``: a density on data space defined by ODE flows, with exact-ish likelihood.

With y the (dequantised) data, x = pre(y) and z = F(x) the composition of CNF blocks (and,
for images, squeezes and factor-outs), each block integrating from t = 1 (data) to t = 0:

    log p(y) = log p_Z(z) + log|det dz/dx| + log|det dx/dy|        (nats, Tensor[B]),

log|det dz/dx| = -sum_blocks integral_0^1 div v dt (exact or Hutchinson divergence).
Sampling draws z from the prior (std scaled by the temperature) and integrates t = 0 -> 1.

Solver settings: ``train_solver`` while ``self.training``, ``eval_solver`` otherwise, each
overridable per call with keyword options (``method``, ``atol``, ``rtol``, ``step_size``,
``steps``, ``adjoint``, ``seminorm``, ``max_num_steps``).

Hutchinson probes: in training, call n on rank r draws its probes from a generator seeded
with (``probe_seed``, r, n), where n is the buffer ``probe_step`` (saved in checkpoints, so a
resumed run draws the probes the uninterrupted run would have drawn); in evaluation each
call starts a fresh generator from ``probe_seed`` alone, so ``log_prob`` is a deterministic
function of its input. A ``generator`` argument overrides both.

Model protocol used by ``flowgen.lit``: ``log_prob``, ``log_prob_with_penalties`` (RNODE
penalties weighted, as {name: scalar}), ``sample``, ``solver_stats`` (NFE of the last solves).
The flow-matching issue reuses this class with a velocity network trained by regression:
``velocity(t, x)`` is the field of a single-block flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from flowgen.continuous.block import CNFBlock
from flowgen.continuous.regularizers import check_names
from flowgen.continuous.solver import SolverOptions
from flowgen.flows.base import Bijection
from flowgen.flows.preprocess import Identity

_TRAIN_STREAM, _EVAL_STREAM = 0, 1


def probe_seed_for(*keys: int) -> int:
    """A 63-bit seed from integer keys (numpy SeedSequence, as ``flowgen.lit.noise``)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


class ContinuousFlow(nn.Module):
    """Args:
        transform: a ``Bijection`` x -> z containing the ``CNFBlock``s (a block, a ``Chain``,
            or ``MultiscaleCNF``).
        prior: ``log_prob(z) -> [B]`` and ``sample(shape, temperature, generator, device)``.
        data_shape: shape of one y; latent_shape: shape of one z.
        preprocess: y -> x bijection with its log-det (None: identity).
        train_solver / eval_solver: ``SolverOptions`` or plain dicts of them.
        regularizer_weights: {"kinetic_energy": lambda_K, "jacobian_frobenius": lambda_J};
            zero weights are not integrated.
        probe_seed: seed of the Hutchinson probes.
    """

    def __init__(
        self,
        transform: Bijection,
        prior: nn.Module,
        data_shape: tuple[int, ...],
        latent_shape: tuple[int, ...],
        preprocess: Bijection | None = None,
        train_solver: SolverOptions | Mapping[str, Any] | None = None,
        eval_solver: SolverOptions | Mapping[str, Any] | None = None,
        regularizer_weights: Mapping[str, float] | None = None,
        probe_seed: int = 0,
    ) -> None:
        super().__init__()
        self.preprocess = preprocess if preprocess is not None else Identity()
        self.transform = transform
        self.prior = prior
        self.data_shape = tuple(data_shape)
        self.latent_shape = tuple(latent_shape)
        self.train_solver = SolverOptions.create(train_solver)
        self.eval_solver = SolverOptions.create(eval_solver)
        weights = {name: float(w) for name, w in (regularizer_weights or {}).items() if w}
        check_names(tuple(weights))
        self.regularizer_weights = weights
        self.probe_seed = int(probe_seed)
        self.register_buffer("probe_step", torch.zeros((), dtype=torch.long))
        if not self.blocks():
            raise ValueError("a ContinuousFlow needs at least one CNFBlock in its transform")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # checkpoints written before the probe counter existed start it at 0
        state_dict.setdefault(prefix + "probe_step", torch.zeros((), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ configuration
    def blocks(self) -> list[CNFBlock]:
        return [m for m in self.transform.modules() if isinstance(m, CNFBlock)]

    def solver_options(self, **overrides: Any) -> SolverOptions:
        """The training or evaluation settings (by ``self.training``) with ``overrides``."""
        return (self.train_solver if self.training else self.eval_solver).replace(**overrides)

    def probe_generator(self, device: torch.device) -> torch.Generator:
        """Training: seeded by (probe_seed, rank, call count), the count then advances;
        evaluation: seeded by probe_seed only."""
        if not self.training:
            return torch.Generator(device=device).manual_seed(probe_seed_for(self.probe_seed, _EVAL_STREAM))
        seed = probe_seed_for(self.probe_seed, _TRAIN_STREAM, _rank(), int(self.probe_step))
        self.probe_step += 1
        return torch.Generator(device=device).manual_seed(seed)

    def _configure(self, device: torch.device, generator: torch.Generator | None, regularizers: tuple[str, ...],
                   solver: dict[str, Any], density: bool = True) -> None:
        """Give every block this call's solver settings, probe generator and regularisers
        (``density=False``: a sampling solve, no probes drawn)."""
        options = self.solver_options(**solver)
        blocks = self.blocks()
        if density and generator is None and any(b.divergence == "hutchinson" for b in blocks):
            generator = self.probe_generator(device)
        for block in blocks:
            block.options = options
            block.generator = generator
            block.regularizers = regularizers

    # ------------------------------------------------------------------ density
    def forward(self, y: Tensor, generator: torch.Generator | None = None, **solver: Any) -> tuple[Tensor, Tensor]:
        """(z, log|det dz/dy|) with the preprocessing's log-det included."""
        return self._forward(y, generator, (), solver)

    def _forward(self, y: Tensor, generator, regularizers: tuple[str, ...], solver: dict[str, Any]) -> tuple[Tensor, Tensor]:
        self._configure(y.device, generator, regularizers, solver)
        x, logdet_pre = self.preprocess(y)
        z, logdet = self.transform(x)
        return z, logdet_pre + logdet

    def log_prob(self, y: Tensor, generator: torch.Generator | None = None, **solver: Any) -> Tensor:
        """log p(y) in nats, Tensor[B]; works under ``torch.no_grad`` (autograd is enabled
        inside the solve for the divergence only)."""
        z, logdet = self(y, generator, **solver)
        return self.prior.log_prob(z) + logdet

    def log_prob_with_penalties(
        self, y: Tensor, generator: torch.Generator | None = None, **solver: Any
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """(log p(y) [B], {name: lambda * batch mean of the regulariser integral summed over blocks})."""
        names = tuple(self.regularizer_weights)
        z, logdet = self._forward(y, generator, names, solver)
        penalties = {}
        for name in names:
            total = sum(block.last_regularizers[name] for block in self.blocks())
            penalties[name] = self.regularizer_weights[name] * total.mean()
        return self.prior.log_prob(z) + logdet, penalties

    def solver_stats(self) -> dict[str, float]:
        """NFE of the last solves summed over blocks: ``nfe_forward``/``nfe_backward`` in
        training (backward: adjoint evaluations, 0 with direct backprop), ``nfe`` in
        evaluation; ``end_time`` (mean over blocks) when it is learned."""
        blocks = self.blocks()
        forward = float(sum(b.stats()["nfe_forward"] for b in blocks))
        if self.training:
            out = {"nfe_forward": forward, "nfe_backward": float(sum(b.stats()["nfe_backward"] for b in blocks))}
        else:
            out = {"nfe": forward}
        learned = [b for b in blocks if b.end_time is not None and b.end_time.sqrt_end_time.requires_grad]
        end_times = [b.learned_end_time() for b in learned]
        if end_times:
            out["end_time"] = float(np.mean(end_times))
        return out

    # ------------------------------------------------------------------ sampling
    def inverse(self, z: Tensor, **solver: Any) -> Tensor:
        """y from a latent z: integrate every block from t = 0 to 1, then undo the preprocessing."""
        self._configure(z.device, None, (), solver, density=False)
        return self.preprocess.inverse(self.transform.inverse(z))

    @torch.no_grad()
    def sample(self, num_samples: int, temperature: float = 1.0, generator: torch.Generator | None = None,
               **solver: Any) -> Tensor:
        """num_samples draws of y [n, *data_shape]; temperature scales the prior's std."""
        device = next(self.parameters()).device
        z = self.prior.sample((num_samples, *self.latent_shape), temperature, generator, device)
        return self.inverse(z, **solver)

    @torch.no_grad()
    def trajectory(self, z: Tensor, num_times: int = 21, **solver: Any) -> tuple[Tensor, Tensor]:
        """(times [T], states [T, *z.shape] in data space) from z at t = 0 to samples at
        t = 1, for a flow made of one block (toy 2-D)."""
        if not isinstance(self.transform, CNFBlock):
            raise NotImplementedError("trajectories are drawn for flows made of a single CNF block")
        self._configure(z.device, None, (), solver, density=False)
        times = torch.linspace(0.0, 1.0, num_times)
        states = self.transform.trajectory(z, times)
        return times, torch.stack([self.preprocess.inverse(s) for s in states])

    # ------------------------------------------------------------------ flow matching
    def velocity(self, t: Tensor, x: Tensor, **cond: Any) -> Tensor:
        """v(t, x) of a single-block flow (flow-matching regression target space)."""
        if not isinstance(self.transform, CNFBlock):
            raise NotImplementedError("velocity() is defined for flows made of a single CNF block")
        return self.transform.field(t, x, **cond)
