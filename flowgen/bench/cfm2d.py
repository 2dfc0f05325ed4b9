"""cfm2d: OT-CFM and I-CFM training steps on 8gaussians -> moons vs torchcfm.

Task (the OT-CFM paper's 2-D benchmark, torchcfm's toy recipe): batch 256, velocity MLP
3 x 64 SELU on [x, t], I-CFM path with sigma = 0.1, Adam 1e-3.

- flowgen: ``build_cfm`` with ``coupling`` ot | independent; one step is
  ``objective(velocity, x0, x1, generator)``: exact minibatch OT (a permutation), t and the
  path noise drawn inside, loss, backward, Adam.
- torchcfm: ``ExactOptimalTransportConditionalFlowMatcher`` | ``ConditionalFlowMatcher`` with
  its ``MLP(2, w=64, time_varying=True)``: POT's network-simplex plan, pairs sampled from it
  with replacement (numpy), loss, backward, Adam.

Identical inputs: the same x0, x1 per step, and the same t (the peer gets the tensor that
flowgen's objective draws from the step's seeded generator). Quality after ``train_steps``
steps of each side on identical batches: W2 of 1024 samples (the same 1024 source points
pushed through each learned ODE with dopri5, atol = rtol = 1e-4, torchdiffeq on both sides)
to 1024 fresh moons points, and the NFE of that solve.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from flowgen.bench.config import BenchConfig
from flowgen.bench.peers import import_peer
from flowgen.bench.table import Row, parameter_row
from flowgen.bench.timing import median, time_interleaved
from flowgen.data.toy2d_densities import sample
from flowgen.lit.optim import build_optimizer
from flowgen.matching.model import FlowMatchingModel, build_cfm
from flowgen.matching.time_sampler import sample_time
from flowgen.metrics.w2 import w2_distance

NAME = "cfm2d"
SIGMA = 0.1
NET = {"hidden_dim": 64, "num_hidden_layers": 3, "activation": "selu"}
SOLVER = {"method": "dopri5", "atol": 1e-4, "rtol": 1e-4}
VARIANTS = (("ot", "OT-CFM", 0.5), ("independent", "I-CFM", 0.8))


def build_flowgen(coupling: str) -> FlowMatchingModel:
    return build_cfm((2,), False, path="icfm", sigma=SIGMA, coupling=coupling, source="8gaussians", net=NET,
                     eval_solver=SOLVER)


def build_peer(coupling: str) -> tuple[nn.Module, object] | None:
    """(torchcfm's MLP, its flow matcher) or None without torchcfm."""
    matching = import_peer("torchcfm.conditional_flow_matching")
    models = import_peer("torchcfm.models.models")
    if matching is None or models is None:
        return None
    cls = matching.ExactOptimalTransportConditionalFlowMatcher if coupling == "ot" else matching.ConditionalFlowMatcher
    return models.MLP(2, w=NET["hidden_dim"], time_varying=True), cls(sigma=SIGMA)


class _Batches:
    """x0 (8gaussians), x1 (moons) [B, 2] and the step's seeded generator with its t [B]."""

    def __init__(self, count: int, batch: int, seed: int, device: torch.device) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.x0 = [sample("8gaussians", batch, gen).to(device) for _ in range(count)]
        self.x1 = [sample("moons", batch, gen).to(device) for _ in range(count)]
        seeds = [seed * 100_003 + i for i in range(count)]
        self.t = [sample_time(batch, "uniform", torch.Generator(device).manual_seed(s), device) for s in seeds]
        self.generators = [torch.Generator(device).manual_seed(s) for s in seeds]


def _flowgen_step(model: FlowMatchingModel, opt: torch.optim.Optimizer, data: _Batches) -> Callable[[int], None]:
    def step(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        model.objective(model.velocity, data.x0[i], data.x1[i], data.generators[i]).backward()
        opt.step()
    return step


def _peer_step(net: nn.Module, matcher: object, opt: torch.optim.Optimizer, data: _Batches) -> Callable[[int], None]:
    def step(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        t, xt, ut = matcher.sample_location_and_conditional_flow(data.x0[i], data.x1[i], data.t[i])
        vt = net(torch.cat([xt, t[:, None]], dim=-1))
        torch.mean((vt - ut) ** 2).backward()
        opt.step()
    return step


class _PeerField(nn.Module):
    """torchcfm's MLP as an ODE right-hand side v(t, x), counting evaluations."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.nfe = 0

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        self.nfe += 1
        return self.net(torch.cat([x, t.expand(x.shape[0], 1)], dim=-1))


def _quality(model: FlowMatchingModel, peer: tuple[nn.Module, object] | None, z: Tensor,
             target: Tensor) -> dict[str, tuple[float, float | None]]:
    """{"w2": (flowgen, peer), "nfe": (flowgen, peer)} of samples pushed from z."""
    model.eval()
    with torch.no_grad():
        samples = model.inverse(z, **SOLVER)
        nfe = model.solver_stats()["nfe"]
    w2 = w2_distance(samples.cpu(), target)
    peer_w2 = peer_nfe = None
    if peer is not None:
        field = _PeerField(peer[0]).eval()
        with torch.no_grad():
            peer_samples = odeint(field, z, torch.tensor([0.0, 1.0], device=z.device), **SOLVER)[-1]
        peer_w2, peer_nfe = w2_distance(peer_samples.cpu(), target), float(field.nfe)
    return {"w2": (w2, peer_w2), "nfe": (float(nfe), peer_nfe)}


def _variant(cfg: BenchConfig, coupling: str, label: str, target: float) -> list[Row]:
    batch = 32 if cfg.quick else 256
    torch.manual_seed(cfg.seed)
    model = build_flowgen(coupling).to(cfg.device)
    peer = build_peer(coupling)
    opt = build_optimizer(model.parameters(), "adam", lr=1e-3)
    rounds = cfg.warmup + cfg.steps
    data = _Batches(rounds, batch, cfg.seed, cfg.device)
    sides = {"flowgen": _flowgen_step(model, opt, data)}
    if peer is not None:
        peer[0].to(cfg.device)
        peer_opt = torch.optim.Adam(peer[0].parameters(), lr=1e-3)
        sides["peer"] = _peer_step(peer[0], peer[1], peer_opt, data)
    times = time_interleaved(sides, cfg.steps, cfg.warmup, cfg.device, cfg.clock)
    ms = {name: 1e3 * median(values) for name, values in times.items()}
    rows = [Row(NAME, f"{label} training step", "ms", ms["flowgen"], ms.get("peer"), target)]
    if coupling == "ot":
        rows.insert(0, parameter_row(NAME, model.transform.field, None if peer is None else peer[0]))
    if cfg.train_steps > rounds:
        extra = _Batches(cfg.train_steps - rounds, batch, cfg.seed + 1, cfg.device)
        train = [_flowgen_step(model, opt, extra)]
        if peer is not None:
            train.append(_peer_step(peer[0], peer[1], peer_opt, extra))
        for i in range(cfg.train_steps - rounds):
            for step in train:
                step(i)
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    points = 128 if cfg.quick else 1024
    z, moons = sample("8gaussians", points, gen).to(cfg.device), sample("moons", points, gen)
    quality = _quality(model, peer, z, moons)
    trained = max(cfg.train_steps, rounds)
    rows.append(Row(NAME, f"{label} W2 to moons after {trained} steps", "W2", *quality["w2"]))
    rows.append(Row(NAME, f"{label} sampling NFE (dopri5 1e-4)", "NFE", *quality["nfe"]))
    return rows


def run(cfg: BenchConfig) -> list[Row]:
    """Rows: parameter counts, OT-CFM and I-CFM step times, W2 and NFE after training."""
    rows: list[Row] = []
    for coupling, label, target in VARIANTS:
        rows += _variant(cfg, coupling, label, target)
    return rows
