"""Model families by name: plain-dict specs -> torch models (no Lightning, no Hydra).

A checkpoint stores the spec as plain data, so a model is rebuilt from this registry and
never from an import path read out of a file (no code runs on load).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from flowgen.continuous.ffjord import build_ffjord
from flowgen.flows.glow import build_glow
from flowgen.flows.nice import build_nice
from flowgen.flows.realnvp import build_realnvp
from flowgen.matching.model import build_cfm

MODELS: dict[str, Callable[..., nn.Module]] = {
    "nice": build_nice,
    "realnvp": build_realnvp,
    "glow": build_glow,
    "ffjord": build_ffjord,
    "cfm": build_cfm,
}

# Keys of the data spec a builder may take (DataModule.spec(): shape, num_levels, is_image).
_DATA_KEYS = {"data_shape": "shape", "num_levels": "num_levels", "is_image": "is_image"}


def build_model(spec: dict[str, Any], data: dict[str, Any]) -> nn.Module:
    """Build ``MODELS[spec['name']]`` with the remaining keys of ``spec`` and the data spec.

    Unknown names or keys raise ``ValueError`` naming what is accepted.
    """
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in MODELS:
        raise ValueError(f"unknown model name {name!r}; choose one of {sorted(MODELS)}")
    builder = MODELS[name]
    params = inspect.signature(builder).parameters
    allowed = [p for p in params if p not in _DATA_KEYS]
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ValueError(f"model {name!r} got unknown option(s) {unknown}; its options are {allowed}")
    data_kwargs = {arg: data[key] for arg, key in _DATA_KEYS.items() if arg in params}
    if "data_shape" in data_kwargs:
        data_kwargs["data_shape"] = tuple(data_kwargs["data_shape"])
    return builder(**data_kwargs, **spec)
