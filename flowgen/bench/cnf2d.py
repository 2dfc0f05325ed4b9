"""cnf2d: FFJORD training iterations on 8gaussians vs zuko's CNF.

Both: maximum likelihood through a dopri5 solve at atol = rtol = 1e-5 with the exact
divergence, batch 100, Adam 1e-3, identical batches; hidden sizes 64-64-64 with tanh.

- flowgen: ``build_ffjord`` (FFJORD's toy recipe): concat-squash field, last layer zero,
  direct backpropagation through torchdiffeq's solver (no adjoint).
- zuko: ``zuko.flows.CNF(2, hidden_features=[64, 64, 64], activation=Tanh)``: an MLP on
  [x, cos/sin(k pi t)], its own dopri5 with adaptive-checkpoint adjoint gradients (the
  forward solve runs without a graph, the backward re-runs each accepted step with one).

NFE per iteration as each library spends it: flowgen's ``nfe_forward`` (field evaluations
with a graph; its backward pass re-evaluates nothing) and zuko's forward and backward
(re-evaluated) counts. After ``iterations`` training iterations: test NLL (nats) of fresh
8gaussians points and the NFE of that evaluation solve.
"""

from __future__ import annotations

import statistics

import torch
from torch import Tensor, nn

from flowgen.bench.config import BenchConfig
from flowgen.bench.peers import import_peer
from flowgen.bench.table import Row, parameter_row
from flowgen.bench.timing import median, time_interleaved
from flowgen.continuous.cnf import ContinuousFlow
from flowgen.continuous.ffjord import build_ffjord
from flowgen.data.toy2d_densities import sample
from flowgen.lit.optim import build_optimizer

NAME = "cnf2d"
HIDDEN = (64, 64, 64)
TOL = 1e-5
TARGET = 0.8


def build_flowgen() -> ContinuousFlow:
    solver = {"method": "dopri5", "atol": TOL, "rtol": TOL}
    return build_ffjord((2,), False, hidden_dims=HIDDEN, activation="tanh", divergence="exact",
                        train_solver=solver, eval_solver=solver)


class CountingNet(nn.Module):
    """Wraps zuko's field network and counts its calls (NFE)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.nfe = 0

    def forward(self, x: Tensor) -> Tensor:
        self.nfe += 1
        return self.net(x)


def build_peer() -> nn.Module | None:
    """zuko's CNF with a call-counting field (``flow.transform.ode``), or None without zuko."""
    zuko = import_peer("zuko")
    if zuko is None:
        return None
    flow = zuko.flows.CNF(2, hidden_features=list(HIDDEN), activation=nn.Tanh, atol=TOL, rtol=TOL, exact=True)
    flow.transform.ode = CountingNet(flow.transform.ode)
    return flow


def run(cfg: BenchConfig) -> list[Row]:
    """Rows: parameter counts, iteration time, NFE per iteration, test NLL and its NFE."""
    batch, iterations, test_points = (20, 5, 100) if cfg.quick else (100, 100, 2000)
    rounds = cfg.warmup + cfg.steps
    gen = torch.Generator().manual_seed(cfg.seed)
    xs = [sample("8gaussians", batch, gen).to(cfg.device) for _ in range(max(rounds, iterations))]
    torch.manual_seed(cfg.seed)
    model = build_flowgen().to(cfg.device).train()
    opt = build_optimizer(model.parameters(), "adam", lr=1e-3)
    nfe: dict[str, list[float]] = {"forward": [], "backward": [], "peer_forward": [], "peer_backward": []}

    def flowgen_step(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        (-model.log_prob(xs[i]).mean()).backward()
        opt.step()
        stats = model.solver_stats()
        nfe["forward"].append(stats["nfe_forward"])
        nfe["backward"].append(stats["nfe_backward"])

    sides = {"flowgen": flowgen_step}
    peer = build_peer()
    if peer is not None:
        peer.to(cfg.device).train()
        counter = peer.transform.ode
        peer_opt = torch.optim.Adam(peer.parameters(), lr=1e-3)

        def peer_step(i: int) -> None:
            peer_opt.zero_grad(set_to_none=True)
            counter.nfe = 0
            loss = -peer().log_prob(xs[i]).mean()
            forward = counter.nfe
            loss.backward()
            peer_opt.step()
            nfe["peer_forward"].append(forward)
            nfe["peer_backward"].append(counter.nfe - forward)

        sides["peer"] = peer_step
    times = time_interleaved(sides, cfg.steps, cfg.warmup, cfg.device, cfg.clock)
    for i in range(rounds, iterations):
        for step in sides.values():
            step(i)
    ms = {name: 1e3 * median(values) for name, values in times.items()}
    timed = slice(cfg.warmup, rounds)

    def mean(values: list[float]) -> float | None:
        return float(statistics.mean(values[timed])) if values else None

    test = sample("8gaussians", test_points, gen).to(cfg.device)
    model.eval()
    with torch.no_grad():
        nll = float(-model.log_prob(test).mean())
    rows = [
        parameter_row(NAME, model, peer),
        Row(NAME, f"training iteration (batch {batch}, dopri5 {TOL:g}, exact div.)", "ms", ms["flowgen"], ms.get("peer"),
            TARGET),
        Row(NAME, "NFE per iteration, forward (mean over timed)", "NFE", mean(nfe["forward"]), mean(nfe["peer_forward"])),
        Row(NAME, "NFE per iteration, backward re-evaluations", "NFE", mean(nfe["backward"]), mean(nfe["peer_backward"])),
    ]
    eval_nfe = model.solver_stats()["nfe"]
    peer_nll = peer_eval_nfe = None
    if peer is not None:
        peer.eval()
        counter.nfe = 0
        with torch.no_grad():
            peer_nll = float(-peer().log_prob(test).mean())
        peer_eval_nfe = float(counter.nfe)
    trained = max(rounds, iterations)
    rows.append(Row(NAME, f"test NLL after {trained} iterations ({test_points} points)", "nats", nll, peer_nll))
    rows.append(Row(NAME, "NFE of the test NLL solve", "NFE", float(eval_nfe), peer_eval_nfe))
    return rows
