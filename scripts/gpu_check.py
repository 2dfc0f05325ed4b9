"""Throughput, peak memory and precision of training steps under each performance option.

For Glow and the flow-matching U-Net at the sizes of the bench workloads (Glow L=3 K=8 hidden 512
at 3x32x32; the ~1.1 M-parameter U-Net at 1x28x28) and of the CIFAR-10 recipes
(``glow_cifar10``, ``cfm_cifar10``), on synthetic batches (no dataset needed), it times
``--steps`` optimizer steps (after warm-up, compile included in warm-up) with: fp32 | bf16
networks | + channels-last | + torch.compile, and checks the precision contract: evaluation is exactly the fp32 model (no autocast), training log-likelihoods stay float32.

    python scripts/gpu_check.py --out logs/gpu_check/throughput.json
    python scripts/gpu_check.py --device cpu --small --steps 2 --compile-backend eager   # a dry run
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from flowgen.performance import autocast_networks, channels_last_networks, compile_networks
from flowgen.registry import build_model

OPTIONS = {"fp32": (), "bf16": ("bf16",), "bf16+channels_last": ("bf16", "cl"),
           "bf16+channels_last+compile": ("bf16", "cl", "compile")}


# the models checked: the bench workloads' sizes (python -m flowgen.bench) and the CIFAR-10 recipes
MODELS = {
    "glow": ({"name": "glow", "levels": 3, "steps": 8, "hidden_channels": 512, "coupling": "affine",
              "preprocess": "center"}, (3, 32, 32)),
    "cfm_unet": ({"name": "cfm"}, (1, 28, 28)),
    "glow_cifar10": ("glow_cifar10", (3, 32, 32)),
    "cfm_cifar10": ("cfm_cifar10", (3, 32, 32)),
}
SMALL = {"glow": {"steps": 2, "hidden_channels": 16},
         "cfm": {"net": {"base_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1, "attention_resolutions": []}}}
CONF = Path(__file__).resolve().parents[1] / "conf"


def experiment_flow(experiment: str) -> dict:
    """model.flow of conf/experiment/<experiment>.yaml over its model's defaults (conf/model/)."""
    from omegaconf import OmegaConf

    exp = OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml")
    defaults = OmegaConf.to_container(exp.defaults)
    name = next(d["override /model"] for d in defaults if isinstance(d, dict) and "override /model" in d)
    base = OmegaConf.load(CONF / "model" / f"{name}.yaml").flow
    return OmegaConf.to_container(OmegaConf.merge(base, exp.model.flow), resolve=True)


def build(name: str, small: bool, device: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """(model, image shape) of ``MODELS[name]``; small: tiny networks for a dry run."""
    spec, shape = MODELS[name]
    spec = experiment_flow(spec) if isinstance(spec, str) else dict(spec)
    if small:
        spec.update(SMALL[spec["name"]])
    data = {"shape": list(shape), "num_levels": 256, "is_image": True}
    torch.manual_seed(0)
    return build_model(spec, data).to(device), shape


def is_glow(name: str) -> bool:
    return name.startswith("glow")


def loss_fn(name: str, model: torch.nn.Module, y: torch.Tensor) -> torch.Tensor:
    """Glow: mean negative log-likelihood (nats); CFM: the flow-matching regression loss."""
    return -model.log_prob(y).mean() if is_glow(name) else model.matching_loss(y)


def time_steps(name: str, model: torch.nn.Module, y: torch.Tensor, steps: int, warmup: int) -> dict[str, float]:
    """images/s over ``steps`` Adam steps after ``warmup`` ones; on CUDA the peak memory (10^9 bytes)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            if y.is_cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(name, model, y)
        loss.backward()
        optimizer.step()
    if y.is_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    out = {"images_per_s": steps * y.shape[0] / seconds, "loss": loss.item(), "loss_dtype": str(loss.dtype)}
    if y.is_cuda:
        out["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return out


def check(name: str, args: argparse.Namespace) -> dict[str, dict]:
    """Every option of OPTIONS on a copy of one initial model; Glow also compares evaluation with fp32."""
    device = args.device
    reference, shape = build(name, args.small, device)
    y = torch.rand(args.batch, *shape, device=device, generator=torch.Generator(device).manual_seed(0))
    if is_glow(name):
        reference.data_init(y)
    results = {}
    for label, options in OPTIONS.items():
        model = copy.deepcopy(reference)
        dtype = torch.bfloat16 if "bf16" in options else None
        if "cl" in options:
            channels_last_networks(model)
        if "compile" in options:
            compile_networks(model, autocast=dtype, backend=args.compile_backend)
        elif dtype is not None:
            autocast_networks(model, dtype)
        if is_glow(name):  # the contract: evaluation is the float32 model, bit for bit up to kernels
            with torch.no_grad():
                model.eval()
                ref = copy.deepcopy(reference).eval().log_prob(y)
                diff = (model.log_prob(y) - ref).abs().max().item()
            results.setdefault("eval_max_abs_diff_nats", {})[label] = diff
        results[label] = time_steps(name, model, y, args.steps, args.warmup)
        print(f"{name:12s} {label:28s} {results[label]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="tiny networks (a quick dry run)")
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    report = {"device": torch.cuda.get_device_name() if args.device == "cuda" else args.device,
              "torch": torch.__version__, "batch": args.batch, "steps": args.steps}
    for name in args.models:
        report[name] = check(name, args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name in args.models:
        base = report[name]["fp32"]["images_per_s"]
        speedups = {k: round(v["images_per_s"] / base, 2) for k, v in report[name].items() if "images_per_s" in v}
        print(f"{name}: speed-up over fp32 {speedups}")
    bad = {f"{name} {k}": v for name in args.models if is_glow(name)
           for k, v in report[name]["eval_max_abs_diff_nats"].items() if v > 1e-3}
    if bad:
        raise SystemExit(f"evaluation differs from the float32 model: {bad}")


if __name__ == "__main__":
    main()
