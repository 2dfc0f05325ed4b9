"""cfm_unet: one flow-matching training step of a ~1.1 M-parameter U-Net on 1x28x28 vs torchcfm.

The peer is torchcfm's MNIST model ``UNetModelWrapper(dim=(1, 28, 28), num_channels=32,
num_res_blocks=1)`` (channel multipliers 1, 2, 2; one attention head at 28x28). flowgen's
``UNet`` is built with the same architecture (``MATCHED_UNET``), so both have 1,075,361
parameters; flowgen's own default (``DEFAULT_UNET``: attention at 14x14, 4 heads) is 37,440
parameters larger. Both sides train with the I-CFM path, sigma = 0 and independent pairs,
batch 128, Adam 1e-3, on identical x0 ~ N(0, I), x1 (uniform "images" in [-1, 1]) and t.
"""

from __future__ import annotations

import torch
from torch import nn

from flowgen.bench.config import BenchConfig
from flowgen.bench.peers import import_peer
from flowgen.bench.table import Row, parameter_row
from flowgen.bench.timing import median, time_interleaved
from flowgen.lit.optim import build_optimizer
from flowgen.matching.model import FlowMatchingModel, build_cfm
from flowgen.matching.time_sampler import sample_time

NAME = "cfm_unet"
SHAPE = (1, 28, 28)
MATCHED_UNET = {"base_channels": 32, "channel_mult": (1, 2, 2), "num_res_blocks": 1, "attention_resolutions": (28,),
                "num_heads": 1}
TARGET = 1.0


def build_flowgen() -> FlowMatchingModel:
    return build_cfm(SHAPE, True, path="icfm", sigma=0.0, coupling="independent", net=MATCHED_UNET)


def build_peer() -> tuple[nn.Module, object] | None:
    """(torchcfm's MNIST U-Net, its I-CFM matcher) or None without torchcfm."""
    unet = import_peer("torchcfm.models.unet.unet")
    matching = import_peer("torchcfm.conditional_flow_matching")
    if unet is None or matching is None:
        return None
    return unet.UNetModelWrapper(dim=SHAPE, num_channels=32, num_res_blocks=1), matching.ConditionalFlowMatcher(sigma=0.0)


def run(cfg: BenchConfig) -> list[Row]:
    """Rows: parameter counts and the training-step time."""
    batch = 4 if cfg.quick else 128
    rounds = cfg.warmup + cfg.steps
    torch.manual_seed(cfg.seed)
    model = build_flowgen().to(cfg.device)
    peer = build_peer()
    gen = torch.Generator().manual_seed(cfg.seed)
    x0 = [torch.randn(batch, *SHAPE, generator=gen).to(cfg.device) for _ in range(rounds)]
    x1 = [(2 * torch.rand(batch, *SHAPE, generator=gen) - 1).to(cfg.device) for _ in range(rounds)]
    seeds = [cfg.seed * 100_003 + i for i in range(rounds)]
    gens = [torch.Generator(cfg.device).manual_seed(s) for s in seeds]
    ts = [sample_time(batch, "uniform", torch.Generator(cfg.device).manual_seed(s), cfg.device) for s in seeds]
    opt = build_optimizer(model.parameters(), "adam", lr=1e-3)

    def flowgen_step(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        model.objective(model.velocity, x0[i], x1[i], gens[i]).backward()
        opt.step()

    sides = {"flowgen": flowgen_step}
    if peer is not None:
        net, matcher = peer[0].to(cfg.device), peer[1]
        peer_opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def peer_step(i: int) -> None:
            peer_opt.zero_grad(set_to_none=True)
            t, xt, ut = matcher.sample_location_and_conditional_flow(x0[i], x1[i], ts[i])
            torch.mean((net(t, xt) - ut) ** 2).backward()
            peer_opt.step()

        sides["peer"] = peer_step
    times = time_interleaved(sides, cfg.steps, cfg.warmup, cfg.device, cfg.clock)
    ms = {name: 1e3 * median(values) for name, values in times.items()}
    return [
        parameter_row(NAME, model.transform.field, None if peer is None else peer[0]),
        Row(NAME, f"U-Net training step (batch {batch})", "ms", ms["flowgen"], ms.get("peer"), TARGET),
    ]
