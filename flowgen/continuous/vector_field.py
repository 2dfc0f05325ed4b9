"""The vector-field interface of continuous flows and a wrapper counting its evaluations.

A vector field (velocity) is a module ``v(t, x, **cond) -> dx/dt`` with the shape of x:
``t`` is a 0-dim tensor (one time for the whole batch, as ODE solvers call it) or a
Tensor[B] (one time per sample, as flow-matching training calls it); ``cond`` holds optional
conditioning (e.g. class labels) that a network may accept. t = 0 is noise, t = 1 data.

``CountingField`` wraps any right-hand side ``f(t, y)`` of an ODE solve (a vector field or
an augmented dynamics) and counts its calls: the number of function evaluations (NFE).
A fresh counter is made per solve, so forward and adjoint (backward) evaluations of that
solve can be told apart.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class VectorField(nn.Module):
    """Interface: ``forward(t, x, **cond) -> v`` with v.shape == x.shape."""

    def forward(self, t: Tensor, x: Tensor, **cond: Any) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class CountingField(nn.Module):
    """``f(t, y)`` with a call counter ``nfe``; ``mark()`` remembers the count at the end of
    the forward solve, so ``nfe_forward``/``nfe_backward`` split the calls before/after it."""

    def __init__(self, func: nn.Module) -> None:
        super().__init__()
        self.func = func
        self.nfe = 0
        self._forward_nfe: int | None = None

    def forward(self, t: Tensor, y: Any, **cond: Any) -> Any:
        self.nfe += 1
        return self.func(t, y, **cond)

    def mark(self) -> None:
        """Call when the forward solve has finished."""
        self._forward_nfe = self.nfe

    @property
    def nfe_forward(self) -> int:
        return self.nfe if self._forward_nfe is None else self._forward_nfe

    @property
    def nfe_backward(self) -> int:
        """Evaluations after ``mark()``: the adjoint solve of the backward pass (0 with direct backprop)."""
        return 0 if self._forward_nfe is None else self.nfe - self._forward_nfe
