"""Evaluate a checkpoint: test bpd and FID, sample grid, optional PNG dump (conf/evaluate.yaml).

    python -m flowgen.evaluate ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt
    python -m flowgen.evaluate ckpt_path=... metrics=[fid] num_samples=50000 temperature=0.7 save_pngs=50000
    python -m flowgen.evaluate -m ckpt_path=... metrics=[w2] +solver.method=euler +solver.steps=1,2,4,8,100

Writes into its Hydra run directory (``logs/evaluate/runs/<time>/``): ``results.json``
(``test/bpd`` with ``test/dequant_samples``, ``test/fid_<features>`` with its protocol,
``test/nfe`` for continuous models, for 2-D data ``test/w2`` (exact W2 of ``num_samples``
samples, default 1024, to as many test points, with ``test/w2_floor`` from training points and
``test/sample_nfe``), ``ckpt_path``, ``num_params``), ``samples/grid.png`` and,
with ``save_pngs=N``, N generated images as ``generated/000000.png ...`` for external FID tools.

The data come from ``data`` if given (a datamodule config), else the run's own
``.hydra/config.yaml`` next to the checkpoint, else ``conf/data/<dataset>.yaml``. With the
defaults (one dequantisation sample from the model's ``eval_seed``; FID with the callback's
seed, batch size and sample count) it reproduces the ``test/`` metrics of ``train.py``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
import torch  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402

from flowgen.api import load_model  # noqa: E402
from flowgen.lit.fid_callback import (  # noqa: E402
    ensure_real_stats,
    generated_fid,
    make_fid_metric,
    real_dataset,
    resolve_features,
)
from flowgen.lit.noise import seeded_generator  # noqa: E402
from flowgen.metrics import fid as fidlib  # noqa: E402
from flowgen.metrics.bpd import BitsPerDim, dequantized_log_prob  # noqa: E402
from flowgen.metrics.w2 import w2_distance  # noqa: E402
from flowgen.viz.image_grid import save_level_grid  # noqa: E402

log = logging.getLogger(__name__)
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
DEFAULT_FID_SAMPLES = {"digits": 2000, "inception": 50000}


def data_config(cfg: DictConfig, ckpt_path: Path, spec: dict[str, Any]) -> DictConfig:
    """The datamodule config: ``cfg.data``, else the run's saved config, else conf/data/<name>.yaml."""
    if cfg.get("data") is not None:
        return cfg.data
    run_config = ckpt_path.resolve().parent.parent / ".hydra" / "config.yaml"
    if run_config.is_file():
        data = OmegaConf.load(run_config).get("data")
        if data is not None:
            log.info("data config from %s", run_config)
            return data
    name = spec["name"] if spec["is_image"] else "toy2d"
    data = OmegaConf.load(CONF_DIR / "data" / f"{name}.yaml")
    if not spec["is_image"]:
        data.name = spec["name"]
    return data


def sampler_options(cfg: DictConfig) -> dict[str, Any]:
    """Keyword arguments of ``module.sample``: the ODE settings of ``cfg.solver`` plus
    ``guidance_scale`` when set (class-conditional flow matching)."""
    options = _solver_only(cfg)
    if cfg.get("guidance_scale") is not None:
        options["guidance_scale"] = float(cfg.guidance_scale)
    return options


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Run the evaluation described by ``cfg`` (conf/evaluate.yaml); return what results.json holds."""
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = Path(cfg.ckpt_path)
    metrics = list(cfg.metrics)
    unknown = set(metrics) - {"bpd", "fid", "w2"}
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from bpd, fid (images), w2 (2-D data)")
    module = load_model(ckpt_path, map_location=cfg.device)
    spec = dict(module.hparams["data"])
    with open_dict(cfg):
        cfg.data = data_config(cfg, ckpt_path, spec)
    datamodule = hydra.utils.instantiate(cfg.data)
    if spec["name"] != datamodule.name and spec["is_image"]:
        log.warning("checkpoint was trained on %s, evaluating on %s", spec["name"], datamodule.name)

    # FID set-up first: missing Inception weights fail now, not after the bpd pass
    fid_metric, features = None, None
    if "fid" in metrics and module.is_image:
        features = resolve_features(cfg.fid.features, datamodule.name)
        fid_metric = make_fid_metric(features, cfg.fid.digits_cache_dir, cfg.fid.feature_extractor_weights_path,
                                     cfg.fid.antialias, cfg.fid.on_missing_weights)
    datamodule.prepare_data()
    datamodule.setup("test")
    results: dict[str, Any] = {}
    if "bpd" in metrics:
        results.update(_likelihood(module, datamodule, cfg.dequant_samples, _solver_only(cfg)))
    if fid_metric is not None:
        results.update(_fid(module, fid_metric, features, datamodule, cfg))
    if "w2" in metrics and not module.is_image:
        results.update(_w2(module, datamodule, cfg))
    results.update(_figures(module, out, cfg))
    results.update(model=module.hparams["flow"].get("name"), data=spec["name"])
    results.update(ckpt_path=str(ckpt_path.resolve()), num_params=sum(p.numel() for p in module.model.parameters()))
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    log.info("results written to %s:\n%s", out / "results.json", json.dumps(results, indent=2))
    return results


def _solver_only(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.solver`` as keyword arguments of a continuous model's ``log_prob`` (empty: its eval_solver)."""
    return OmegaConf.to_container(cfg.solver, resolve=True) if cfg.get("solver") else {}


@torch.no_grad()
def _likelihood(module, datamodule, dequant_samples: int | None, solver: dict[str, Any]) -> dict[str, float]:
    """test/bpd exactly as ``test_step`` (same noise stream: ``eval_generator()`` through the batches
    in order); ``solver`` (continuous models) replaces the model's evaluation ODE settings."""
    if solver and not hasattr(module.model, "solver_stats"):
        raise ValueError("solver options apply to continuous models (ffjord, cfm); drop `solver` for this checkpoint")
    log_prob = functools.partial(module.model.log_prob, **solver) if solver else module.log_prob
    start = time.perf_counter()
    if not module.is_image:
        total, count = 0.0, 0
        for x, _ in datamodule.test_dataloader():
            nll = -log_prob(x.to(module.device)).double()
            total, count = total + nll.sum().item(), count + nll.numel()
        out = {"test/nll": total / count}
    else:
        samples = int(dequant_samples or module.hparams.get("eval_dequant_samples", 1))
        metric = BitsPerDim()
        for b, (k, _) in enumerate(datamodule.test_dataloader()):
            log_p = dequantized_log_prob(log_prob, k.to(module.device), module.num_levels, samples,
                                         module.eval_generator(b))
            metric.update(log_p.cpu(), module.num_dims, module.num_levels)
        out = {"test/bpd": float(metric.compute()), "test/dequant_samples": float(samples)}
    stats = getattr(module.model, "solver_stats", None)
    for name, value in (stats() if stats is not None else {}).items():
        out[f"test/{name}"] = float(value)
    out["likelihood_time_s"] = round(time.perf_counter() - start, 3)
    return out


def _fid(module, metric, features: str, datamodule, cfg: DictConfig) -> dict[str, Any]:
    n = int(cfg.num_samples or DEFAULT_FID_SAMPLES[features])
    key = {"data": datamodule.name, "split": cfg.fid.real_split, "features": features, "antialias": cfg.fid.antialias,
           "num_levels": module.num_levels}
    start = time.perf_counter()
    num_real = ensure_real_stats(metric.to(module.device), real_dataset(datamodule, cfg.fid.real_split), module.num_levels,
                                 0, 1, cfg.batch_size, cfg.fid.real_stats_cache, key)
    solver = sampler_options(cfg)
    value, nfe = generated_fid(module, metric, n, cfg.temperature, cfg.sample_seed, cfg.batch_size, 0, 1, solver)
    protocol = fidlib.FIDProtocol(features=features, num_samples=n, num_real=num_real, real_split=cfg.fid.real_split,
                                  temperature=cfg.temperature, antialias=cfg.fid.antialias if features == "inception" else None,
                                  sampler=solver, nfe=nfe, seed=cfg.sample_seed)
    log.info("test/%s = %.4f (%s)", protocol.metric_name, value, protocol.describe())
    return {
        f"test/{protocol.metric_name}": value,
        "test/fid_num_samples": float(n),
        "test/fid_temperature": float(cfg.temperature),
        "test/fid_nfe": nfe,
        f"test/{protocol.metric_name}_protocol": protocol.describe(),
        "fid_time_s": round(time.perf_counter() - start, 3),
    }


@torch.no_grad()
def _w2(module, datamodule, cfg: DictConfig) -> dict[str, float]:
    """test/w2 of seeded samples (``cfg.solver`` settings) against the first n test points."""
    n = min(int(cfg.num_samples or 1024), len(datamodule.test_set), len(datamodule.train_set))
    points = datamodule.test_set.tensors[0][:n].float()
    samples = module.sample(n, cfg.temperature, generator=seeded_generator(module.device, cfg.sample_seed, 0),
                            **sampler_options(cfg)).cpu()
    out = {"test/w2": w2_distance(samples, points), "test/w2_floor": w2_distance(datamodule.train_set.tensors[0][:n].float(), points),
           "test/w2_num_samples": float(n)}
    stats = getattr(module.model, "solver_stats", None)
    if stats is not None:
        out["test/sample_nfe"] = float(stats()["nfe"])
    return out


@torch.no_grad()
def _figures(module, out: Path, cfg: DictConfig) -> dict[str, Any]:
    """Sample grid (images) and optional PNG dump of ``save_pngs`` generated images."""
    if not module.is_image:
        return {}
    generator = seeded_generator(module.device, cfg.sample_seed, 0)
    solver = sampler_options(cfg)
    n = int(cfg.grid_samples)
    if n > 0:
        levels = module.sample(n, cfg.temperature, generator=generator, **solver)
        save_level_grid(levels, module.num_levels, out / "samples" / "grid.png", nrow=max(1, int(n**0.5)))
    if not cfg.save_pngs:
        return {}
    from PIL import Image

    folder = out / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    done, generator = 0, seeded_generator(module.device, cfg.sample_seed, 1)
    while done < cfg.save_pngs:
        b = min(cfg.batch_size, cfg.save_pngs - done)
        images = fidlib.levels_to_uint8(module.sample(b, cfg.temperature, generator=generator, **solver), module.num_levels)
        for i, image in enumerate(images.cpu().permute(0, 2, 3, 1).numpy()):
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / f"{done + i:06d}.png")
        done += b
    return {"generated_pngs": str(folder)}


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
