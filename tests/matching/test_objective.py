"""The flow-matching loss: zero for the exact velocity, positive otherwise, OT pairing applied."""

import pytest
import torch

from flowgen.matching.objective import FlowMatchingObjective
from flowgen.matching.paths import build_path


def test_loss_vanishes_for_the_true_conditional_velocity_of_a_point_mass():
    """Data = one point c, source = N(0, I), CondOT with sigma_min = 0: u_t(x) = (c - x) / (1 - t)."""
    c = torch.tensor([2.0, -1.0])
    objective = FlowMatchingObjective(build_path("condot"))
    velocity = lambda t, x: (c - x) / (1 - t[:, None])  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(256, 2, generator=gen), c.expand(256, 2)
    assert objective(velocity, x0, x1, gen).item() < 1e-10
    assert objective(lambda t, x: torch.zeros_like(x), x0, x1, gen).item() > 1.0


def test_ot_coupling_lowers_the_loss_of_the_straight_line_field_and_conditions_pass_through():
    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(64, 2, generator=gen), torch.randn(64, 2, generator=gen) + 3.0
    seen = {}

    def velocity(t, x, label=None):
        seen["label"] = label
        return torch.full_like(x, 3.0)  # the mean displacement

    losses = {c: FlowMatchingObjective(build_path("icfm"), coupling=c)(velocity, x0, x1, torch.Generator().manual_seed(1), label=7)
              for c in ("independent", "ot")}
    assert losses["ot"] < losses["independent"] and seen["label"] == 7


def test_unknown_coupling_or_time_sampler_fails():
    with pytest.raises(ValueError, match="ot"):
        FlowMatchingObjective(build_path("icfm"), coupling="sinkhorn")
    with pytest.raises(ValueError, match="logit_normal"):
        FlowMatchingObjective(build_path("icfm"), time_sampler="beta")
