"""Fréchet distance between feature Gaussians (FID), through torchmetrics (pure torch).

For features phi of real images (mean mu_r, covariance S_r) and of generated images (mu_g, S_g),

    FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2}),

with unbiased covariances (divide by N - 1). torchmetrics' ``FrechetInceptionDistance``
accumulates sum(phi) and sum(phi phi^T) in float64 per process and all-reduces them at
``compute``, so under DDP each rank feeds its own share of images and the result equals the
single-process value.

Feature networks (the metric name says which one was used):
- ``digits``: penultimate layer of a small classifier trained on the digits train split
  (``flowgen.metrics.digits_features``); ``fid_digits`` is NOT comparable with Inception FID.
- ``inception``: torch-fidelity's Inception-v3 pool3 (2048-d, the TF FID weights);
  ``fid_inception``. ``antialias=False`` is the legacy TF protocol (TF1 bilinear resize to
  299x299, as in the original FID code and most papers); ``antialias=True`` torchmetrics'
  default antialiased resize, which gives slightly different numbers.

Images enter as uint8 in {0..255}: integer levels k in {0..K-1} become round(k * 255 / (K-1));
floats in [0,1] become round(255 x) after clamping (never wrapped: torchmetrics'
``normalize=True`` does ``(x * 255).byte()``, which wraps values outside [0, 1], so flowgen never
uses it). Grey images are repeated to 3 channels for Inception.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

log = logging.getLogger(__name__)

INCEPTION_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL_HOST = "github.com"
FEATURES = ("digits", "inception")


class FIDWeightsNotFoundError(FileNotFoundError):
    """The Inception weights are neither on disk nor downloadable (offline)."""


# ----------------------------------------------------------------------------- conversions
def levels_to_uint8(k: Tensor, num_levels: int) -> Tensor:
    """Integer levels k in {0..K-1} -> uint8 round(k * 255 / (K-1)) (clamped to the level range)."""
    if num_levels < 2:
        raise ValueError(f"num_levels must be >= 2, got {num_levels}")
    k = k.to(torch.float64).clamp(0, num_levels - 1)
    return torch.round(k * (255.0 / (num_levels - 1))).to(torch.uint8)


def float_to_uint8(x: Tensor) -> Tensor:
    """Floats in [0,1] -> uint8 round(255 x), clamped first (1.2 -> 255, -0.1 -> 0, NaN -> 0), never wrapped."""
    x = torch.nan_to_num(x.detach().to(torch.float64), nan=0.0)
    return torch.round(x.clamp(0.0, 1.0) * 255.0).to(torch.uint8)


def to_rgb(x: Tensor) -> Tensor:
    """[B,1,H,W] -> [B,3,H,W] by repetition; 3-channel input unchanged."""
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    if x.shape[1] != 3:
        raise ValueError(f"Inception FID needs 1- or 3-channel images, got shape {tuple(x.shape)}")
    return x


# ----------------------------------------------------------------------------- maths
def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}) in float64.

    Tr (S1 S2)^{1/2} = Tr (S1^{1/2} S2 S1^{1/2})^{1/2}: the sum of square roots of the
    (clamped non-negative) eigenvalues of a symmetric PSD matrix, which is stable.
    """
    mu1, mu2, sigma1, sigma2 = (t.to(torch.float64) for t in (mu1, mu2, sigma1, sigma2))
    evals, evecs = torch.linalg.eigh(sigma1)
    root1 = (evecs * evals.clamp(min=0).sqrt()) @ evecs.T
    middle = root1 @ sigma2 @ root1
    tr_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * tr_sqrt


def feature_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """(mean, unbiased covariance) of features [N, d] in float64."""
    f = features.to(torch.float64)
    return f.mean(0), torch.cov(f.T)


# ----------------------------------------------------------------------------- Inception weights
def weights_host_reachable(host: str = INCEPTION_URL_HOST, port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to the weights' download host opens within ``timeout`` s."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_weights_path() -> Path:
    """Where torch.hub (and so torch-fidelity) caches the Inception weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILENAME


def resolve_inception_weights(weights_path: str | Path | None = None) -> str | None:
    """The Inception weights file to use, checked to load with ``weights_only=True``.

    Order: ``weights_path`` (must exist), else the torch hub cache; ``None`` means "not on disk,
    but the download host is reachable: let torch-fidelity download it". Offline and missing:
    ``FIDWeightsNotFoundError`` within seconds, saying where to put the file.
    """
    if weights_path is not None:
        path = Path(weights_path).expanduser().absolute()
        if not path.is_file():
            raise FIDWeightsNotFoundError(
                f"Inception weights not found at feature_extractor_weights_path={path}. Put {INCEPTION_FILENAME} "
                f"(from https://{INCEPTION_URL_HOST}/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILENAME}) there."
            )
    else:
        path = hub_weights_path()
        if not path.is_file():
            if weights_host_reachable():
                return None
            raise FIDWeightsNotFoundError(
                "Inception FID needs torch-fidelity's Inception-v3 weights, which are not on disk and cannot be "
                f"downloaded (no connection to {INCEPTION_URL_HOST}). Copy {INCEPTION_FILENAME} from a machine "
                f"with internet (https://{INCEPTION_URL_HOST}/toshas/torch-fidelity/releases/download/v0.2.0/"
                f"{INCEPTION_FILENAME}) to {path} (the torch hub cache, $TORCH_HOME/hub/checkpoints/) or anywhere "
                "and set feature_extractor_weights_path to it; or turn FID off (fid=none, or "
                "on_missing_weights=skip to continue without FID)."
            )
    try:
        torch.load(path, map_location="cpu", weights_only=True)  # no code execution from an unknown file
    except Exception as err:
        raise FIDWeightsNotFoundError(f"{path} is not a loadable weights-only state dict: {err}") from None
    return str(path)


# ----------------------------------------------------------------------------- protocol
@dataclass
class FIDProtocol:
    """Everything that changes an FID number; logged with every FID."""

    features: str  # digits | inception
    num_samples: int  # generated images (all ranks together)
    num_real: int = 0
    real_split: str = "train"
    temperature: float = 1.0
    antialias: bool | None = None  # Inception resize; False = legacy TF protocol
    sampler: dict[str, Any] = field(default_factory=dict)
    nfe: float | None = None
    seed: int = 0

    @property
    def metric_name(self) -> str:
        return f"fid_{self.features}"

    def describe(self) -> str:
        if self.features == "digits":
            net = "digits-classifier features (64-d; not comparable with Inception FID)"
        else:
            net = "Inception-v3 pool3 2048-d, " + ("antialiased resize" if self.antialias else "legacy TF1 resize")
        solver = ", ".join(f"{k}={v}" for k, v in self.sampler.items()) or "model default"
        nfe = f", NFE {self.nfe:g}" if self.nfe is not None else ""
        return (f"{net}; {self.num_samples} generated vs {self.num_real} {self.real_split} images; "
                f"T={self.temperature:g}; sampler {solver}{nfe}; seed {self.seed}")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "metric": self.metric_name, "description": self.describe()}


# ----------------------------------------------------------------------------- the metric
def build_fid(features: str, feature_net: nn.Module | None = None, weights_path: str | None = None,
              antialias: bool = True) -> FrechetInceptionDistance:
    """A torchmetrics FID keeping the real statistics across ``reset()`` (float64 states).

    ``features="digits"`` needs ``feature_net`` (``load_digits_feature_net``); ``"inception"``
    uses ``weights_path`` from ``resolve_inception_weights`` (None: torch-fidelity downloads).
    Feed it uint8 images through ``update_levels`` / ``update_uint8``.
    """
    if features == "digits":
        if feature_net is None:
            raise ValueError("features='digits' needs feature_net (flowgen.metrics.digits_features)")
        metric = FrechetInceptionDistance(feature=feature_net, reset_real_features=False, normalize=False)
    elif features == "inception":
        metric = FrechetInceptionDistance(feature=2048, reset_real_features=False, normalize=False,
                                          feature_extractor_weights_path=weights_path, antialias=antialias)
    else:
        raise ValueError(f"unknown FID features {features!r}; choose one of {FEATURES}")
    metric.flowgen_features = features
    return metric


def update_uint8(metric: FrechetInceptionDistance, images: Tensor, real: bool) -> None:
    """Add uint8 images [B,C,H,W] to the real or generated statistics."""
    if images.dtype != torch.uint8:
        raise TypeError(f"FID inputs must be uint8 (use levels_to_uint8 / float_to_uint8), got {images.dtype}")
    if getattr(metric, "flowgen_features", "inception") == "inception":
        images = to_rgb(images)
    metric.update(images.to(metric.device), real=real)


def update_levels(metric: FrechetInceptionDistance, levels: Tensor, num_levels: int, real: bool) -> None:
    """Add integer-level images [B,C,H,W] (K = num_levels) to the real or generated statistics."""
    update_uint8(metric, levels_to_uint8(levels, num_levels), real)


def rank_share(n: int, rank: int, world_size: int) -> int:
    """Images rank ``rank`` generates so that the ranks together make exactly n."""
    return n // world_size + (1 if rank < n % world_size else 0)


@torch.no_grad()
def add_generated(metric: FrechetInceptionDistance, sample: Callable[[int], Tensor], n: int, num_levels: int,
                  batch_size: int) -> None:
    """Add n images from ``sample(b) -> levels [b,C,H,W]`` in batches of ``batch_size``."""
    done = 0
    while done < n:
        b = min(batch_size, n - done)
        update_levels(metric, sample(b), num_levels, real=False)
        done += b


@torch.no_grad()
def add_real(metric: FrechetInceptionDistance, batches: Iterable[Tensor], num_levels: int) -> None:
    """Add real integer-level batches to the (persistent) real statistics."""
    for levels in batches:
        update_levels(metric, levels, num_levels, real=True)


def has_real_stats(metric: FrechetInceptionDistance) -> bool:
    return int(metric.real_features_num_samples) > 0


REAL_STATE = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


def save_real_stats(metric: FrechetInceptionDistance, path: str | Path, key: dict[str, Any]) -> None:
    """Save this process's real-feature sums (float64) with a ``key`` describing data and features."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"key": key, **{name: getattr(metric, name).cpu() for name in REAL_STATE}}, path)


def load_real_stats(metric: FrechetInceptionDistance, path: str | Path, key: dict[str, Any]) -> bool:
    """Load real-feature sums saved with the same ``key``; False when absent or made differently."""
    path = Path(path)
    if not path.is_file():
        return False
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("key") != key:
        log.warning("ignoring real FID statistics at %s: made with %s, need %s", path, saved.get("key"), key)
        return False
    for name in REAL_STATE:
        setattr(metric, name, saved[name].to(metric.device))
    return True
