"""Speed and memory options for the networks inside couplings and vector fields (pure torch).

design.md section 3: log-dets, inverses, priors and ODE states stay in float32; only the
conditioner networks of couplings (``AdditiveCoupling.net``, ``AffineCoupling.net``) and the
vector fields of CNF blocks (``CNFBlock.field``) may run in bf16. The options act on exactly
those modules, in place, without changing their parameter names (checkpoints stay
interchangeable with the options on or off):

- ``autocast_networks(model)``: bf16 autocast while the network is in training mode (never in
  evaluation, so val/test bpd and samples are float32); outputs are cast back to the input's
  dtype before any log-det or ODE arithmetic sees them.
- ``channels_last_networks(model)``: 4-D weights and inputs in channels-last memory format.
- ``compile_networks(model, autocast=None, **options)``: ``torch.compile`` of each network,
  with the bf16 autocast inside the compiled code when ``autocast`` is given.

Gradient checkpointing of coupling networks is a model option (``model.flow.checkpoint_nets``
for RealNVP and Glow); continuous flows save memory with the adjoint (``adjoint: true``).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from flowgen.continuous.block import CNFBlock
from flowgen.flows.coupling import AdditiveCoupling, AffineCoupling


def conditioner_networks(model: nn.Module) -> list[nn.Module]:
    """The coupling networks and CNF vector fields of ``model``, outermost first."""
    nets = []
    for module in model.modules():
        if isinstance(module, (AdditiveCoupling, AffineCoupling)):
            nets.append(module.net)
        elif isinstance(module, CNFBlock):
            nets.append(module.field)
    return nets


def _first_tensor(args: tuple[Any, ...]) -> torch.Tensor | None:
    return next((a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()), None)


def _cast_floats(output: Any, dtype: torch.dtype) -> Any:
    """Floating tensors of a network's output (a tensor, or a tuple/list of them) in ``dtype``."""
    if isinstance(output, torch.Tensor):
        return output.to(dtype) if output.is_floating_point() else output
    if isinstance(output, (tuple, list)):
        return type(output)(_cast_floats(o, dtype) for o in output)
    return output


class NetworkAutocast:
    """Forward hooks running a network under autocast(``dtype``) in training mode (eager); floating
    outputs are cast back to the dtype of the network's first floating input."""

    def __init__(self, dtype: torch.dtype = torch.bfloat16) -> None:
        self.dtype = dtype
        self._open: list[tuple[torch.autocast, torch.dtype]] = []

    def __getstate__(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "_open": []}

    def enter(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = _first_tensor(args)
        device = x.device.type if x is not None else "cpu"
        context = torch.autocast(device, dtype=self.dtype, enabled=module.training)
        context.__enter__()
        self._open.append((context, x.dtype if x is not None else torch.float32))

    def exit(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        context, dtype = self._open.pop()
        context.__exit__(None, None, None)
        return _cast_floats(output, dtype)


def _has_autocast(net: nn.Module) -> bool:
    return any(isinstance(getattr(h, "__self__", None), NetworkAutocast) for h in net._forward_pre_hooks.values())


def autocast_networks(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> int:
    """Run every conditioner network under autocast(``dtype``) in training; returns how many
    networks were changed (networks already hooked are left as they are)."""
    count = 0
    for net in conditioner_networks(model):
        if _has_autocast(net):
            continue
        hooks = NetworkAutocast(dtype)
        net.register_forward_pre_hook(hooks.enter)
        net.register_forward_hook(hooks.exit, always_call=True)
        count += 1
    return count


def _channels_last_inputs(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.contiguous(memory_format=torch.channels_last) if isinstance(a, torch.Tensor) and a.dim() == 4 else a
                 for a in args)


def channels_last_networks(model: nn.Module) -> int:
    """Channels-last weights and 4-D inputs for every conditioner network; returns their number."""
    nets = conditioner_networks(model)
    for net in nets:
        net.to(memory_format=torch.channels_last)
        if _channels_last_inputs not in net._forward_pre_hooks.values():
            net.register_forward_pre_hook(_channels_last_inputs)
    return len(nets)


def _autocast_call(net: nn.Module, dtype: torch.dtype, *args: Any, **kwargs: Any) -> Any:
    """``net(*args)`` under autocast(``dtype``) when training, outputs in the input's dtype."""
    x = _first_tensor(args)
    with torch.autocast(x.device.type if x is not None else "cpu", dtype=dtype, enabled=net.training):
        output = net._call_impl(*args, **kwargs)
    return _cast_floats(output, x.dtype if x is not None else torch.float32)


def compile_networks(model: nn.Module, autocast: torch.dtype | None = None, **options: Any) -> int:
    """``torch.compile`` every conditioner network in place with ``options`` (mode, backend, ...);
    returns their number. ``autocast``: also run the networks under autocast(dtype) in training,
    inside the compiled code (TorchDynamo cannot trace the hooks of ``autocast_networks``, whose
    context opens in one hook and closes in another). Like ``nn.Module.compile`` this sets the
    module's ``_compiled_call_impl``, which copies and pickles drop: a copy runs uncompiled, in
    float32 (apply the options in each process, as ``flowgen.lit.performance`` does)."""
    nets = conditioner_networks(model)
    for net in nets:
        if _has_autocast(net):
            raise ValueError("a network already has autocast hooks: call compile_networks(model, autocast=dtype) "
                             "instead of autocast_networks followed by compile_networks")
        if autocast is None:
            net.compile(**options)
        else:
            net._compiled_call_impl = torch.compile(functools.partial(_autocast_call, net, autocast), **options)
    return len(nets)
