"""FID during training (every n validation epochs) and at test time, as a Lightning callback.

Logged under ``<stage>/fid_<features>`` (``val/fid_digits``, ``test/fid_inception``) with
``<stage>/fid_num_samples``, ``<stage>/fid_temperature`` and ``<stage>/fid_nfe`` next to it;
the full protocol (features, resize protocol, real split and count, sampler, seed) is logged
as text and appended to ``<run dir>/fid.jsonl``; the test protocol also lands in results.json
(``test/fid_<features>_protocol``).

Real statistics come from the datamodule's ``real_split`` (train by default), each rank
adding its own shard (indices rank::world), computed once and kept across evaluations
(``reset_real_features=False``), optionally cached on disk. Each rank generates exactly its
share of ``num_samples`` with its own seeded stream; torchmetrics all-reduces the float64
feature sums at ``compute``. The feature network is built in ``setup`` (before training), so
missing Inception weights offline stop the run within seconds.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchmetrics.image.fid import FrechetInceptionDistance

from flowgen.lit.noise import seeded_generator
from flowgen.metrics import fid as fidlib
from flowgen.metrics.digits_features import load_digits_feature_net

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- shared with flowgen.evaluate
def resolve_features(features: str, data_name: str) -> str:
    """``auto`` -> ``digits`` for the digits dataset, else ``inception``."""
    if features == "auto":
        return "digits" if data_name == "digits" else "inception"
    if features not in fidlib.FEATURES:
        raise ValueError(f"unknown FID features {features!r}; choose auto or one of {fidlib.FEATURES}")
    return features


def digits_train_split() -> tuple[Tensor, Tensor]:
    """uint8 images [N,1,8,8] (levels scaled to 0..255) and labels of the default digits TRAIN split."""
    from flowgen.data.digits import DigitsDataModule

    dm = DigitsDataModule()
    dm.setup("fit")
    levels, labels = _stack(dm.train_set)
    return fidlib.levels_to_uint8(levels, dm.num_levels), labels


def _stack(dataset: Dataset) -> tuple[Tensor, Tensor]:
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([torch.as_tensor(x) for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


_UNRESOLVED = object()


def inception_weights_or_skip(weights_path: str | None, on_missing_weights: str) -> tuple[bool, str | None]:
    """(available, path) of the Inception weights; raises ``FIDWeightsNotFoundError`` when missing
    and ``on_missing_weights == "error"``, else warns and returns (False, None)."""
    if on_missing_weights not in ("error", "skip"):
        raise ValueError(f"on_missing_weights must be 'error' or 'skip', got {on_missing_weights!r}")
    try:
        return True, fidlib.resolve_inception_weights(weights_path)
    except fidlib.FIDWeightsNotFoundError as err:
        if on_missing_weights == "skip":
            log.warning("continuing WITHOUT FID (on_missing_weights=skip): %s", err)
            return False, None
        raise


def make_fid_metric(features: str, digits_cache_dir: str | Path, weights_path: Any = _UNRESOLVED,
                    antialias: bool = True, on_missing_weights: str = "error") -> FrechetInceptionDistance | None:
    """The FID metric for ``features`` (digits | inception); None when the Inception weights are
    missing and ``on_missing_weights == "skip"``. ``weights_path`` from ``inception_weights_or_skip``
    (already resolved) or a configured path / None (resolved here)."""
    if features == "digits":
        return fidlib.build_fid("digits", feature_net=load_digits_feature_net(digits_cache_dir, digits_train_split))
    ok, path = inception_weights_or_skip(None if weights_path is _UNRESOLVED else weights_path, on_missing_weights)
    if not ok:
        return None
    return fidlib.build_fid("inception", weights_path=path, antialias=antialias)


def real_dataset(datamodule: Any, split: str) -> Dataset:
    sets = {"train": datamodule.train_set, "val": datamodule.val_set, "test": datamodule.test_set}
    if split not in sets:
        raise ValueError(f"real_split must be train, val or test, got {split!r}")
    return sets[split]


def ensure_real_stats(metric: FrechetInceptionDistance, dataset: Dataset, num_levels: int, rank: int, world_size: int,
                      batch_size: int, cache_path: str | Path | None = None, cache_key: dict[str, Any] | None = None) -> int:
    """Add this rank's shard (indices rank::world) of ``dataset`` to the real statistics once;
    returns the number of real images over all ranks."""
    n_real = len(dataset)
    if fidlib.has_real_stats(metric):
        return n_real
    key = {**(cache_key or {}), "rank": rank, "world_size": world_size, "num_real": n_real}
    path = None
    if cache_path is not None:
        path = Path(cache_path)
        if world_size > 1:  # each rank caches its own shard
            path = path.with_name(f"{path.stem}_rank{rank}of{world_size}{path.suffix}")
        if fidlib.load_real_stats(metric, path, key):
            log.info("real FID statistics loaded from %s", path)
            return n_real
    shard = Subset(dataset, range(rank, n_real, world_size))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False)
    fidlib.add_real(metric, (x for x, _ in loader), num_levels)
    if path is not None:
        fidlib.save_real_stats(metric, path, key)
    return n_real


def generated_fid(module: Any, metric: FrechetInceptionDistance, num_samples: int, temperature: float, seed: int,
                  batch_size: int, rank: int, world_size: int, solver: dict[str, Any] | None = None) -> tuple[float, float]:
    """Generate this rank's share of ``num_samples`` (seeded by (seed, rank)), add them, compute
    the FID (all ranks must call it). Returns (FID, NFE per sample batch: 1 for discrete flows)."""
    solver = dict(solver or {})
    generator = seeded_generator(module.device, seed, rank)
    nfes: list[float] = []

    def sample(b: int) -> Tensor:
        levels = module.sample(b, temperature, generator=generator, **solver)
        stats = getattr(module.model, "solver_stats", None)
        values = {k: float(v) for k, v in (stats() if stats is not None else {}).items() if "nfe" in k.lower()}
        nfes.append(next(iter(values.values())) if values else 1.0)
        return levels

    metric.reset()  # generated statistics only; the real ones stay
    fidlib.add_generated(metric, sample, fidlib.rank_share(num_samples, rank, world_size), module.num_levels, batch_size)
    value = float(metric.compute())
    return value, (sum(nfes) / len(nfes) if nfes else 1.0)


# ----------------------------------------------------------------------------- the callback
class FIDCallback(pl.Callback):
    """FID of generated images against the real ``real_split`` (image data only).

    Args:
        features: auto (digits -> digits classifier, otherwise Inception) | digits | inception.
        num_samples: generated images for in-training FID (all ranks together).
        test_num_samples: generated images for test FID (default: ``num_samples``).
        every_n_val_epochs: FID after every n-th validation epoch (0: never during training).
        test: compute FID when the trainer tests (``test/fid_<features>``, in results.json).
        temperature, seed, batch_size, solver: sampling options (solver kwargs go to ``sample``).
        real_split: train | val | test: the reference images.
        antialias: Inception resize; false = legacy TF protocol.
        feature_extractor_weights_path: Inception weights file (default: the torch hub cache).
        on_missing_weights: error (stop at start-up) | skip (warn and run without FID).
        digits_cache_dir: where the digits classifier is cached.
        real_stats_cache: file for the real statistics (None: recompute each run).
    """

    def __init__(self, features: str = "auto", num_samples: int = 1000, test_num_samples: int | None = None,
                 every_n_val_epochs: int = 0, test: bool = True, temperature: float = 1.0, seed: int = 0,
                 batch_size: int = 500, real_split: str = "train", antialias: bool = True,
                 feature_extractor_weights_path: str | None = None, on_missing_weights: str = "error",
                 digits_cache_dir: str = "data/digits_features", real_stats_cache: str | None = None,
                 solver: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.features = features
        self.num_samples = num_samples
        self.test_num_samples = test_num_samples or num_samples
        self.every_n_val_epochs = every_n_val_epochs
        self.test = test
        self.temperature = temperature
        self.seed = seed
        self.batch_size = batch_size
        self.real_split = real_split
        self.antialias = antialias
        self.weights_path = feature_extractor_weights_path
        self.on_missing_weights = on_missing_weights
        self.digits_cache_dir = digits_cache_dir
        self.real_stats_cache = real_stats_cache
        self.solver = dict(solver or {})
        self.metric: FrechetInceptionDistance | None = None
        self.protocols: dict[str, dict[str, Any]] = {}
        self._resolved: str | None = None
        self._num_real = 0
        self._enabled = test or every_n_val_epochs > 0
        self._weights: Any = feature_extractor_weights_path
        if self._enabled and features == "inception":  # fail (or skip) now, before anything is trained
            self._enabled, self._weights = inception_weights_or_skip(feature_extractor_weights_path, on_missing_weights)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.metric is not None or not self._enabled or not getattr(pl_module, "is_image", False):
            return
        data_name = getattr(trainer.datamodule, "name", "") if trainer.datamodule is not None else ""
        self._resolved = resolve_features(self.features, data_name)
        weights = self._weights if self.features == "inception" else self.weights_path
        self.metric = make_fid_metric(self._resolved, self.digits_cache_dir, weights, self.antialias, self.on_missing_weights)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_val_epochs <= 0 or trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_val_epochs:
            return
        self._evaluate(trainer, pl_module, "val", self.num_samples)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.test:
            self._evaluate(trainer, pl_module, "test", self.test_num_samples)

    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str, n: int) -> None:
        if self.metric is None or trainer.datamodule is None:
            return
        metric = self.metric.to(pl_module.device)
        rank, world = trainer.global_rank, trainer.world_size
        data_name = getattr(trainer.datamodule, "name", "data")
        key = {"data": data_name, "split": self.real_split, "features": self._resolved, "antialias": self.antialias,
               "num_levels": pl_module.num_levels}
        self._num_real = ensure_real_stats(metric, real_dataset(trainer.datamodule, self.real_split), pl_module.num_levels,
                                           rank, world, self.batch_size, self.real_stats_cache, key)
        was_training = pl_module.training
        pl_module.eval()
        value, nfe = generated_fid(pl_module, metric, n, self.temperature, self.seed, self.batch_size, rank, world, self.solver)
        pl_module.train(was_training)
        protocol = fidlib.FIDProtocol(features=self._resolved, num_samples=n, num_real=self._num_real,
                                      real_split=self.real_split, temperature=self.temperature,
                                      antialias=self.antialias if self._resolved == "inception" else None,
                                      sampler=self.solver, nfe=nfe, seed=self.seed)
        name = f"{stage}/{protocol.metric_name}"
        for key_, v in ((name, value), (f"{stage}/fid_num_samples", n), (f"{stage}/fid_temperature", self.temperature),
                        (f"{stage}/fid_nfe", nfe)):
            pl_module.log(key_, float(v), sync_dist=True)  # equal on every rank; the mean keeps it
        self.protocols[stage] = {"value": value, "epoch": trainer.current_epoch, **protocol.as_dict()}
        log.info("%s = %.4f (%s)", name, value, protocol.describe())
        if trainer.is_global_zero:
            path = Path(trainer.default_root_dir) / "fid.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(json.dumps({"stage": stage, **self.protocols[stage]}) + "\n")


def fid_results(callbacks: list[Any]) -> dict[str, str]:
    """``{"test/fid_<features>_protocol": description}`` of the test FID of any FIDCallback (for results.json)."""
    out = {}
    for cb in callbacks:
        if isinstance(cb, FIDCallback) and "test" in cb.protocols:
            p = cb.protocols["test"]
            out[f"test/{p['metric']}_protocol"] = p["description"]
    return out
