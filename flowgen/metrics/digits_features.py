"""An offline feature network for FID on 8x8 digits (pure torch).

Inception-v3 features need 299x299 natural images and downloaded weights; for scikit-learn's
8x8 digits flowgen instead uses the penultimate layer (``num_features`` = 64, after ReLU) of a
small MLP classifier trained on the digits TRAIN split. It trains deterministically in a few
seconds on a CPU (full batch, fixed seed, Adam) and is cached as a plain state dict
(``torch.save(state_dict)``, loaded with ``weights_only=True``) under
``<data_dir>/digits_features/``.

FID computed with these features is called ``fid_digits``: it is a Fréchet distance between
Gaussians fitted to *these* features and is NOT comparable with Inception FID (``fid_inception``)
or with any published number.

Input convention (shared with Inception FID in flowgen): uint8 images [B, 1, 8, 8] in {0..255};
the digit levels k in {0..16} map to round(k * 255 / 16) (``flowgen.metrics.fid.levels_to_uint8``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)

CACHE_NAME = "classifier_v1.pt"
TRAIN_SEED = 0
TRAIN_STEPS = 300


class DigitsFeatureNet(nn.Module):
    """MLP on uint8 [B,1,8,8]: x/255 -> fc256 -> ReLU -> fc64 -> ReLU (features) -> fc10 (logits).

    ``forward(x)`` returns the 64-d penultimate features (what FID uses); ``logits(x)`` the class
    scores. No dropout or batch norm, so its output does not depend on train/eval mode.
    """

    num_features = 64

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 256)
        self.fc2 = nn.Linear(256, self.num_features)
        self.head = nn.Linear(self.num_features, 10)

    def features(self, x: Tensor) -> Tensor:
        """uint8 (or float in [0,255]) images [B,1,8,8] -> float32 features [B,64]."""
        x = x.to(torch.float32).flatten(1) / 255.0
        return F.relu(self.fc2(F.relu(self.fc1(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def train_digits_classifier(images: Tensor, labels: Tensor, steps: int = TRAIN_STEPS, seed: int = TRAIN_SEED) -> DigitsFeatureNet:
    """Full-batch Adam (lr 3e-3, weight decay 1e-4) on uint8 images [N,1,8,8] and labels [N].

    Deterministic: fixed seed for the initialisation, no data shuffling, one CPU thread; the
    same inputs give the same weights bit for bit on one machine.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DigitsFeatureNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    images, labels = images.cpu(), labels.cpu().long()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest and makes the sums reproducible
    try:
        with torch.enable_grad():
            for _ in range(steps):
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net.logits(images), labels)
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    net.requires_grad_(False)
    return net.eval()


def load_digits_feature_net(cache_dir: str | Path, train_split: Callable[[], tuple[Tensor, Tensor]]) -> DigitsFeatureNet:
    """The cached classifier from ``cache_dir``; if missing, trained on ``train_split()`` (uint8
    images [N,1,8,8] in 0..255 and labels, the digits TRAIN split) and saved there first.

    The cache holds only a state dict and is read with ``torch.load(weights_only=True)``;
    it is written atomically (temp file + rename), so concurrent DDP ranks are safe.
    """
    path = Path(cache_dir).expanduser().absolute() / CACHE_NAME
    net = DigitsFeatureNet()
    if path.is_file():
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.requires_grad_(False)
        return net.eval()
    images, labels = train_split()
    net = train_digits_classifier(images, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save(net.state_dict(), tmp)
    os.replace(tmp, path)
    log.info("trained the digits FID feature network; cached at %s", path)
    return net


@torch.no_grad()
def accuracy(net: DigitsFeatureNet, images: Tensor, labels: Tensor) -> float:
    """Fraction of uint8 images [N,1,8,8] classified as ``labels``."""
    return (net.logits(images).argmax(1) == labels).float().mean().item()
