"""glow: one maximum-likelihood training step of Glow at 3x32x32 vs normflows' Glow blocks.

Both models: L = 3 levels x K = 8 steps (squeeze, then ActNorm -> LU-decomposed invertible
1x1 convolution -> affine coupling with scale sigmoid(h + 2), channel split), coupling networks
conv3x3 -> ActNorm -> ReLU -> conv1x1 -> ActNorm -> ReLU -> zero-initialised conv3x3 with
512 hidden channels, half the channels factored out after each level, fixed N(0, I) priors
(flowgen ``learn_prior=false``; normflows ``DiagGaussian(trainable=False)``), no
preprocessing (identical inputs in [-1, 1] go straight in). normflows is built as in its Glow
example (``GlowBlock(..., split_mode="channel", net_actnorm=True)``, ``MultiscaleFlow``).
The only parameter difference: flowgen's zero-initialised output conv also has Glow's learned
per-channel output scale exp(3 logs) (C_out per coupling).

Loss: mean negative log-likelihood of a batch of 16, Adam at ``LR`` = 1e-4 (at 1e-3 normflows'
Glow, whose output convolutions lack the exp(3 logs) scale, diverges to NaN within two steps
on this data, while flowgen's trains); ActNorm data-initialised from the first batch on both
sides before timing. After the timed steps: the largest
|x - f^-1(f(x))| of a batch, in float32, for both models.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from flowgen.bench.config import BenchConfig
from flowgen.bench.peers import import_peer
from flowgen.bench.table import Row, parameter_row
from flowgen.bench.timing import median, time_interleaved
from flowgen.flows.glow import build_glow
from flowgen.flows.multiscale import MultiScaleFlow
from flowgen.lit.optim import build_optimizer

NAME = "glow"
SHAPE = (3, 32, 32)
TARGET = 0.9
LR = 1e-4


def sizes(quick: bool) -> dict[str, int]:
    """Levels, steps per level, hidden channels and batch (tiny with ``quick``)."""
    return {"levels": 3, "steps": 2, "hidden": 16, "batch": 4} if quick else {"levels": 3, "steps": 8, "hidden": 512, "batch": 16}


def build_flowgen(levels: int, steps: int, hidden: int) -> MultiScaleFlow:
    return build_glow(SHAPE, True, levels=levels, steps=steps, hidden_channels=hidden, coupling="affine",
                      scale_map="sigmoid", permutation="1x1conv", lu=True, learn_prior=False, preprocess="identity")


def build_peer(levels: int, steps: int, hidden: int) -> nn.Module | None:
    """normflows' multiscale Glow of the same size, or None without normflows."""
    nf = import_peer("normflows")
    if nf is None:
        return None
    channels, side = SHAPE[0], SHAPE[1]
    q0, merges, flows = [], [], []
    for i in range(levels):  # normflows lists levels from the top (coarsest) down
        with warnings.catch_warnings():  # normflows' LU initialisation calls the deprecated torch.lu
            warnings.filterwarnings("ignore", message="torch.lu is deprecated")
            blocks = [nf.flows.GlowBlock(channels * 2 ** (levels + 1 - i), hidden, scale=True, scale_map="sigmoid",
                                         split_mode="channel", use_lu=True, net_actnorm=True) for _ in range(steps)]
        flows.append([*blocks, nf.flows.Squeeze()])
        if i > 0:
            merges.append(nf.flows.Merge())
            latent = (channels * 2 ** (levels - i), side // 2 ** (levels - i), side // 2 ** (levels - i))
        else:
            latent = (channels * 2 ** (levels + 1), side // 2**levels, side // 2**levels)
        q0.append(nf.distributions.DiagGaussian(latent, trainable=False))
    return nf.MultiscaleFlow(q0, flows, merges, class_cond=False)


def inversion_error(model: nn.Module, x: Tensor, peer: bool) -> float:
    """max |x - f^-1(f(x))| in eval mode."""
    model.eval()
    with torch.no_grad():
        if peer:
            z, _ = model.inverse_and_log_det(x)
            x_rec, _ = model.forward_and_log_det(z)
        else:
            zs, _ = model(x)
            x_rec = model.inverse(zs)
    model.train()
    return float((x_rec - x).abs().max())


def run(cfg: BenchConfig) -> list[Row]:
    """Rows: parameter counts, training-step time, inversion error."""
    size = sizes(cfg.quick)
    rounds = cfg.warmup + cfg.steps
    gen = torch.Generator().manual_seed(cfg.seed)
    # dequantised 8-bit levels mapped to [-1, 1]
    xs = [((torch.randint(0, 256, (size["batch"], *SHAPE), generator=gen) + torch.rand(size["batch"], *SHAPE, generator=gen))
           / 128 - 1).to(cfg.device) for _ in range(rounds)]
    torch.manual_seed(cfg.seed)
    model = build_flowgen(size["levels"], size["steps"], size["hidden"]).to(cfg.device)
    model.data_init(xs[0])
    opt = build_optimizer(model.parameters(), "adam", lr=LR)

    def flowgen_step(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        (-model.log_prob(xs[i]).mean()).backward()
        opt.step()

    sides = {"flowgen": flowgen_step}
    peer = build_peer(size["levels"], size["steps"], size["hidden"])
    if peer is not None:
        peer.to(cfg.device)
        with torch.no_grad():
            peer.log_prob(xs[0], None)  # normflows' ActNorms initialise on their first batch
        peer_opt = torch.optim.Adam(peer.parameters(), lr=LR)

        def peer_step(i: int) -> None:
            peer_opt.zero_grad(set_to_none=True)
            peer.forward_kld(xs[i]).backward()
            peer_opt.step()

        sides["peer"] = peer_step
    times = time_interleaved(sides, cfg.steps, cfg.warmup, cfg.device, cfg.clock)
    ms = {name: 1e3 * median(values) for name, values in times.items()}
    error = inversion_error(model, xs[0], peer=False)
    peer_error = None if peer is None else inversion_error(peer, xs[0], peer=True)
    label = f"L={size['levels']} K={size['steps']} hidden {size['hidden']}, batch {size['batch']}"
    return [
        parameter_row(NAME, model, peer),
        Row(NAME, f"training step ({label})", "ms", ms["flowgen"], ms.get("peer"), TARGET),
        Row(NAME, "max inversion error |x - f^-1(f(x))|", "abs", error, peer_error),
    ]
