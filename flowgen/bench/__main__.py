"""``python -m flowgen.bench [WORKLOAD...]``: run workloads, print the table, write JSON.

    python -m flowgen.bench                                  # every workload, CPU, 1 thread
    python -m flowgen.bench cfm2d glow --json bench.json
    python -m flowgen.bench cfm2d --steps 3 --warmup 1 --quick   # smoke run, tiny sizes
    python -m flowgen.bench --device cuda --threads 4

The peers come with the ``bench`` extra (``pip install -e '.[bench]'``); without one, its
workload still runs flowgen's side and prints "-" for the peer and the ratio.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable, Sequence

import torch

from flowgen.bench import cfm2d, cfm_unet, cnf2d, glow, sampling
from flowgen.bench.config import BenchConfig
from flowgen.bench.peers import peer_versions
from flowgen.bench.table import Row, markdown, write_json
from flowgen.bench.timing import CLOCKS, default_clock, set_threads

WORKLOADS: dict[str, Callable[[BenchConfig], list[Row]]] = {
    "cfm2d": cfm2d.run,
    "cfm_unet": cfm_unet.run,
    "glow": glow.run,
    "cnf2d": cnf2d.run,
    "sampling": sampling.run,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flowgen.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD", help=f"any of {', '.join(WORKLOADS)} (default: all)")
    parser.add_argument("--device", default="cpu", help="torch device of both sides (cpu, cuda, cuda:1, ...)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads, the same for both sides")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default=None,
                        help="cpu: process CPU time (default on CPU: robust on a shared machine); wall (default on CUDA)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed ones")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="cfm2d training steps before W2/NFE (default 2000, 200 with --quick)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the rows and the run's settings to this file")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    return args


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    names = list(dict.fromkeys(args.workloads)) or list(WORKLOADS)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    set_threads(args.threads)
    train_steps = args.train_steps if args.train_steps is not None else (200 if args.quick else 2000)
    clock = args.clock or default_clock(device)
    cfg = BenchConfig(device, clock, args.steps, args.warmup, args.quick, train_steps, args.seed)
    rows: list[Row] = []
    timings = {}
    for name in names:
        start = time.perf_counter()
        print(f"[flowgen.bench] {name} ...", file=sys.stderr, flush=True)
        rows += WORKLOADS[name](cfg)
        timings[name] = round(time.perf_counter() - start, 1)
    print(markdown(rows))
    if args.json:
        meta = {
            "command": "python -m flowgen.bench " + " ".join(sys.argv[1:] if argv is None else argv),
            "device": str(device), "threads": args.threads, "clock": clock, "steps": args.steps, "warmup": args.warmup,
            "quick": args.quick, "train_steps": train_steps, "seed": args.seed, "workload_seconds": timings,
            "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "peers": peer_versions(),
        }
        write_json(args.json, rows, meta)
    return rows


if __name__ == "__main__":
    main()
