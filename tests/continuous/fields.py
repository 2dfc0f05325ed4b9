"""Shared analytic fields for the continuous-flow tests."""

import torch

from flowgen.continuous.vector_field import VectorField


class LinearField(VectorField):
    """v(t, x) = x A^T (for each row x): the flow over [0, 1] is x -> expm(A) x."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(a)

    def forward(self, t, x, **cond):
        return x @ self.a.T

