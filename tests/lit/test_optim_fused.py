"""build_optimizer: fused Adam/AdamW on CPU parameters, the same updates as the loop version."""

import torch

from flowgen.lit.optim import build_optimizer


def test_cpu_adam_is_fused_unless_told_otherwise():
    params = [torch.nn.Parameter(torch.randn(3))]
    assert build_optimizer(params, "adam").defaults["fused"] is True
    assert build_optimizer(params, "adamw").defaults["fused"] is True
    assert not build_optimizer(params, "adam", foreach=False).defaults["fused"]
    assert not build_optimizer(params, "adam", fused=False).defaults["fused"]
    assert not build_optimizer([{"params": params}], "adam").defaults["fused"]
    assert not build_optimizer(params, "adamax").defaults.get("fused")


def test_fused_adam_takes_the_same_steps_as_the_loop():
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 5, generator=gen), torch.randn(5, generator=gen)]
    grads = [[torch.randn(p.shape, generator=gen) for p in start] for _ in range(5)]
    results = []
    for fused in (None, False):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        options = {} if fused is None else {"fused": fused}
        opt = build_optimizer(params, "adam", lr=1e-2, weight_decay=0.1, **options)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone()
            opt.step()
        results.append(params)
    for fused_p, loop_p in zip(*results):
        torch.testing.assert_close(fused_p, loop_p, rtol=1e-6, atol=1e-7)
