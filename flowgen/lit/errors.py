"""Errors raised while training."""


class NonFiniteLossError(RuntimeError):
    """Too many consecutive optimisation steps had a non-finite loss or gradient."""


class NonFiniteStateError(RuntimeError):
    """The model holds non-finite weights; no checkpoint is written from it."""
