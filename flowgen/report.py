"""Compare runs: a Markdown table (stdout + file) and a PNG figure from their results.json.

    python -m flowgen.report logs/train/runs/A logs/train/runs/B logs/evaluate/runs/C [--out reports/cmp]

Columns: run, model and data (from the run's .hydra/config.yaml or config_tree.log when
present), test bpd (with dequantisation samples), every ``test/fid_*`` value (the metric name
says which features), FID samples and temperature, NFE (``test/nfe`` / ``test/fid_nfe``),
parameters, train time and images/s when logged (any ``*images_per_s*`` / ``*throughput*`` key).
A missing value shows as "-". The figure has one bar panel per numeric column of interest.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

FIXED = [
    ("test/bpd", "test bpd"),
    ("test/dequant_samples", "dequant S"),
    ("test/nll", "test nll"),
]
TAIL = [
    ("test/fid_num_samples", "FID N"),
    ("test/fid_temperature", "FID T"),
    ("test/nfe", "NFE (bpd)"),
    ("test/fid_nfe", "NFE (sampling)"),
    ("num_params", "params"),
    ("train_time_s", "train time"),
]
PLOTTED = ("test bpd", "test nll", "params", "train time", "images/s")


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """results.json of a run directory (or the file itself) plus model/data names when found."""
    path = Path(run_dir)
    path = path / "results.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no results.json in {run_dir}")
    results = json.loads(path.read_text())
    results["_run"] = path.parent.name
    model, data = _names(path.parent)
    results["_model"] = model or str(results.get("model", ""))
    results["_data"] = data or str(results.get("data", ""))
    return results


def _names(run: Path) -> tuple[str, str]:
    """(model, data) from the run's saved Hydra config, best effort."""
    config = run / ".hydra" / "config.yaml"
    if config.is_file():
        try:
            from omegaconf import OmegaConf

            cfg = OmegaConf.load(config)
            model = str(OmegaConf.select(cfg, "model.flow.name", default="") or "")
            data = str(OmegaConf.select(cfg, "data.name", default="") or OmegaConf.select(cfg, "data._target_", default="") or "")
            return model, data.rsplit(".", 1)[-1].replace("DataModule", "").lower()
        except Exception:  # a broken config must not break the report
            pass
    return "", ""


def columns(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(key, header) pairs present in at least one run, in a fixed order."""
    keys = {k for r in runs for k in r}
    fids = sorted(k for k in keys if k.startswith("test/fid_") and isinstance(_first(runs, k), (int, float))
                  and k not in dict(TAIL) and not k.endswith("_s"))
    speed = sorted(k for k in keys if "images_per_s" in k or "throughput" in k)
    cols = [c for c in FIXED if c[0] in keys]
    cols += [(k, k.removeprefix("test/").replace("fid_", "FID ")) for k in fids]
    cols += [c for c in TAIL if c[0] in keys]
    cols += [(k, "images/s") for k in speed[:1]]
    return cols


def _first(runs: list[dict[str, Any]], key: str) -> Any:
    return next((r[key] for r in runs if key in r), None)


def _fmt(value: Any, key: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key == "num_params":
        return f"{value / 1e6:.2f}M" if value >= 1e5 else f"{int(value)}"
    if key == "train_time_s":
        return f"{value / 60:.1f} min" if value >= 60 else f"{value:.0f} s"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def markdown(runs: list[dict[str, Any]]) -> str:
    """The comparison table as Markdown, plus each run's FID protocol below it."""
    cols = columns(runs)
    header = ["run", "model", "data", *(h for _, h in cols)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in runs:
        cells = [r["_run"], r["_model"] or "-", r["_data"] or "-", *(_fmt(r.get(k), k) for k, _ in cols)]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r['_run']}: {k.removeprefix('test/')}: {v}" for r in runs for k, v in r.items() if k.endswith("_protocol")]
    if notes:
        lines += ["", "FID protocols (fid_digits uses digits-classifier features and is not comparable with Inception FID):", *notes]
    return "\n".join(lines) + "\n"


def label(run: dict[str, Any]) -> str:
    """A run's name in figures: ``run (model)``, or the model alone for numbered multirun jobs."""
    if not run["_model"]:
        return run["_run"]
    return run["_model"] if run["_run"].isdigit() else f"{run['_run']} ({run['_model']})"


def figure(runs: list[dict[str, Any]], path: Path) -> Path | None:
    """Bar charts of bpd/nll, each FID, parameters, train time and images/s across runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(k, h) for k, h in columns(runs) if h in PLOTTED or h.startswith("FID ") and h not in ("FID N", "FID T")]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    names = [label(r) for r in runs]
    for ax, (key, title) in zip(axes[0], panels):
        values = [float(r[key]) if isinstance(r.get(key), (int, float)) else float("nan") for r in runs]
        ax.bar(range(len(runs)), values, color="tab:blue")
        ax.set_xticks(range(len(runs)), names, rotation=45, ha="right", fontsize=7)
        ax.set_title(title + (" (s)" if key == "train_time_s" else ""))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m flowgen.report", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories (or results.json files)")
    parser.add_argument("--out", default="reports/report", help="output prefix: writes <out>.md and <out>.png")
    args = parser.parse_args(argv)
    runs = [load_run(r) for r in args.runs]
    table = markdown(runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table)
    png = figure(runs, out.with_suffix(".png"))
    sys.stdout.write(table)
    sys.stdout.write(f"\nwritten: {out.with_suffix('.md')}" + (f", {png}" if png else "") + "\n")
    return table


if __name__ == "__main__":
    main()
