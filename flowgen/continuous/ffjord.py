"""FFJORD (Grathwohl et al. 2019) and its RNODE variant (Finlay et al. 2020): model builder.

- 2-D / tabular data: x -> ``num_blocks`` CNF blocks with a concat-squash MLP field
  (``hidden_dims`` 64-64-64, tanh) -> z ~ N(0, I); exact divergence by default (small D).
- Images: y in [0, 1]^D -> logit preprocessing (Jacobian included in log p(y)) ->
  ``MultiscaleCNF`` (time-conditioned conv fields, 64-64-64 softplus, squeezes and
  factor-outs) -> z ~ N(0, I); Hutchinson divergence with Rademacher probes by default.

Every field's last layer starts at zero, so the flow starts as the identity. Training and
evaluation solver settings are separate (RNODE: rk4 step 0.25 for training, dopri5 1e-5
for test), and ``kinetic_energy``/``jacobian_frobenius`` are RNODE's penalty weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from flowgen.continuous.block import CNFBlock
from flowgen.continuous.cnf import ContinuousFlow
from flowgen.continuous.multiscale import MultiscaleCNF, max_scales
from flowgen.continuous.solver import SolverOptions
from flowgen.flows.base import Chain
from flowgen.flows.preprocess import build_preprocess
from flowgen.flows.priors import StandardNormal
from flowgen.nets.concat_squash import ConcatSquashMLP
from flowgen.nets.time_conv import TimeConvNet


def build_ffjord(
    data_shape: tuple[int, ...],
    is_image: bool,
    hidden_dims: Sequence[int] = (64, 64, 64),
    activation: str | None = None,
    divergence: str | None = None,
    probe: str = "rademacher",
    probe_seed: int = 0,
    num_blocks: int = 1,
    num_scales: int | None = None,
    preprocess: str = "logit",
    logit_alpha: float = 1e-6,
    zero_init: bool = True,
    learn_end_time: bool = False,
    end_time: float = 1.0,
    train_solver: Mapping[str, Any] | None = None,
    eval_solver: Mapping[str, Any] | None = None,
    kinetic_energy: float = 0.0,
    jacobian_frobenius: float = 0.0,
) -> ContinuousFlow:
    """An FFJORD model for data of shape ``data_shape``.

    Args:
        hidden_dims: hidden widths (MLP units or conv channels) of each field.
        activation: None: tanh for 2-D data, softplus for images.
        divergence: None: "exact" for non-image data, "hutchinson" for images.
        probe: Hutchinson probe, "rademacher" or "gaussian"; probe_seed: its seed.
        num_blocks: CNF blocks (each its own field) stacked; for images, per stack of a scale.
        num_scales: image scales (None: as many as FFJORD uses, see ``max_scales``).
        preprocess, logit_alpha: image preprocessing (identity | center | logit).
        learn_end_time, end_time: the integration time T (learned: FFJORD's train_T).
        train_solver, eval_solver: ``SolverOptions`` fields as dicts (defaults dopri5 1e-5).
        kinetic_energy, jacobian_frobenius: RNODE penalty weights (0: off).
    """
    divergence = divergence or ("hutchinson" if is_image else "exact")
    activation = activation or ("softplus" if is_image else "tanh")

    def block(field) -> CNFBlock:
        return CNFBlock(field, divergence, probe, learn_end_time=learn_end_time, end_time=end_time)

    if is_image:
        if len(data_shape) != 3:
            raise ValueError(f"image FFJORD needs data of shape (C, H, W), got {data_shape}")
        scales = num_scales if num_scales is not None else max_scales(data_shape[1], data_shape[2])
        transform = MultiscaleCNF(
            tuple(data_shape), scales, num_blocks,
            lambda shape: block(TimeConvNet(shape[0], hidden_dims, activation, zero_init_last=zero_init)),
        )
        latent_shape: tuple[int, ...] = (math.prod(data_shape),)
        pre = build_preprocess(preprocess, logit_alpha)
    else:
        if len(data_shape) != 1:
            raise ValueError(f"FFJORD on non-image data needs flat vectors (D,), got {data_shape}")
        blocks = [block(ConcatSquashMLP(data_shape[0], hidden_dims, activation, zero_init)) for _ in range(num_blocks)]
        transform = blocks[0] if num_blocks == 1 else Chain(blocks)
        latent_shape = tuple(data_shape)
        pre = None
    return ContinuousFlow(
        transform,
        StandardNormal(),
        data_shape,
        latent_shape,
        preprocess=pre,
        train_solver=SolverOptions.create(train_solver),
        eval_solver=SolverOptions.create(eval_solver),
        regularizer_weights={"kinetic_energy": kinetic_energy, "jacobian_frobenius": jacobian_frobenius},
        probe_seed=probe_seed,
    )
