"""``train(cfg)``: instantiate data, model, callbacks, loggers and trainer; fit; test; report.

Writes into ``cfg.paths.output_dir`` (the Hydra run directory): ``results.json`` with the
logged metrics under their names (``test/bpd`` ...), ``train_time_s``, ``num_params`` and
``ckpt_path`` (the checkpoint whose weights produced the test metrics; ``train/skipped_steps``
counts steps skipped for a non-finite loss or gradient), next to
``checkpoints/``, ``samples/`` and the loggers' files. With ``resume=auto`` a run whose
directory already holds a checkpoint continues from it (``flowgen.resume``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import WeightAveraging
from pytorch_lightning.loggers import WandbLogger

from flowgen.api import check_same_model, module_from_checkpoint, read_checkpoint
from flowgen.batching import apply_global_batch_size, trainer_world_size
from flowgen.config_tree import print_config_tree
from flowgen.launch_checks import check_launch
from flowgen.lit.fid_callback import fid_results
from flowgen.resume import find_resume_checkpoint

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry with a ``_target_`` of a callbacks/logger group (None-valued entries are off)."""
    if not group:
        return []
    return [hydra.utils.instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry]


def averaging_last(callbacks: list[Any]) -> list[Any]:
    """Callbacks with weight averaging (EMA) moved to the end (stable order otherwise).

    Lightning calls hooks in list order and ``WeightAveraging`` swaps the averaged weights in at
    ``on_validation_epoch_start`` and out at ``on_validation_epoch_end``: last in the list, its
    swap-back comes after every other callback's validation-end work (FID, sample figures),
    which so evaluates the averaged weights like the validation steps do.
    """
    return sorted(callbacks, key=lambda cb: isinstance(cb, WeightAveraging))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job described by ``cfg``; return the results written to results.json."""
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("global_batch_size"):
        apply_global_batch_size(cfg)
    check_launch(cfg.trainer.get("strategy", "auto"), trainer_world_size(cfg.trainer))
    _auto_resume(cfg, output_dir)
    print_config_tree(cfg, save_to=output_dir / "config_tree.log", show=cfg.get("print_config", True))
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    # a corrupt, unsafe or foreign checkpoint fails now, with a clear message
    checkpoint = read_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None

    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()  # a missing dataset fails here, not after the model is built
    if checkpoint is not None and not cfg.get("train", True):
        model = module_from_checkpoint(checkpoint)  # testing a checkpoint: its own model options
    else:
        model = hydra.utils.instantiate(cfg.model, data=datamodule.spec())
        if checkpoint is not None:
            check_same_model(checkpoint, model.hparams)
    del checkpoint
    if cfg.get("optimized_metric") is None:
        with open_dict(cfg):
            cfg.optimized_metric = model.default_monitor
    callbacks = averaging_last(instantiate_group(cfg.get("callbacks")))
    loggers = instantiate_group(cfg.get("logger"))
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams({"config": OmegaConf.to_container(cfg, resolve=True)})

    train_time = 0.0
    if cfg.get("train", True):
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        train_time = time.perf_counter() - start
    metrics = {k: v for k, v in trainer.callback_metrics.items()}

    tested_ckpt = None
    if cfg.get("test", True):
        tested_ckpt = _checkpoint_to_test(trainer, cfg)
        trainer.test(model, datamodule=datamodule, ckpt_path=tested_ckpt)
        metrics.update(trainer.callback_metrics)

    results = {k: float(v) for k, v in sorted(metrics.items()) if torch.as_tensor(v).numel() == 1}
    results.update(
        train_time_s=round(train_time, 3),
        ckpt_path=str(Path(tested_ckpt).resolve()) if tested_ckpt else None,
        num_params=sum(p.numel() for p in model.model.parameters()),
        optimized_metric=cfg.optimized_metric,
    )
    results.update(fid_results(callbacks))  # test/fid_<features>_protocol: how the test FID was made
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        log.info("results written to %s", output_dir / "results.json")
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()  # writes the summary; a resumed job continues this run id
    return results


def _auto_resume(cfg: DictConfig, output_dir: Path) -> None:
    """``resume=auto``: with ``ckpt_path`` null, set it to this run directory's newest checkpoint, if any."""
    mode = cfg.get("resume", "auto")
    if mode not in ("auto", "never"):
        raise ValueError(f"resume={mode!r}: choose auto (continue from the run directory's last.ckpt) or never")
    if mode == "never" or cfg.get("ckpt_path") or not cfg.get("train", True):
        return
    found = find_resume_checkpoint(output_dir, OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath"))
    if found is not None:
        log.info("resume=auto: continuing from %s (resume=never starts afresh)", found)
        with open_dict(cfg):
            cfg.ckpt_path = str(found)


def _checkpoint_to_test(trainer: pl.Trainer, cfg: DictConfig) -> str | None:
    """The best checkpoint of this run, else its last one, else ``cfg.ckpt_path`` (testing without training)."""
    if not cfg.get("train", True):
        return cfg.get("ckpt_path")
    callback = trainer.checkpoint_callback
    if callback is not None:
        for path in (callback.best_model_path, callback.last_model_path):
            if path and Path(path).is_file():
                return path
    log.warning("no checkpoint was written; testing the weights in memory")
    return None
