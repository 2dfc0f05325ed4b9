"""Image datasets read from files: MNIST, CIFAR-10, CelebA (torchvision) and any ImageFolder.

Batches: ``x`` uint8 [B, C, H, W] integer levels in {0, ..., K-1} with K = 2**n_bits, ``y`` int64
labels [B]. Levels come from 8-bit pixels by dropping low bits, ``k = pixel >> (8 - n_bits)``
(i.e. floor(pixel / 2**(8 - n_bits))), so n_bits=5 maps 255 to 31. No float conversion happens
here; dequantisation belongs to the model.

Missing files raise :class:`~flowgen.data.errors.DatasetNotFoundError` within seconds: the
download host is probed with a 3 s TCP connect before torchvision is asked to download.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torchvision
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from flowgen.data.base import FlowDataModule, check_fractions, fraction_sizes, split_indices
from flowgen.data.errors import DatasetNotFoundError


def host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_n_bits(n_bits: int) -> None:
    """Raise ``ValueError`` unless ``n_bits`` is an integer in 1..8."""
    if not (isinstance(n_bits, int) and 1 <= n_bits <= 8):
        raise ValueError(f"n_bits must be an integer in 1..8, got {n_bits!r}")


class ToLevels:
    """uint8 pixels [C, H, W] in {0..255} -> uint8 levels ``pixel >> (8 - n_bits)`` in {0..2**n_bits - 1}."""

    def __init__(self, n_bits: int) -> None:
        check_n_bits(n_bits)
        self.shift = 8 - n_bits

    def __call__(self, pixels: Tensor) -> Tensor:
        return pixels >> self.shift


def level_transform(n_bits: int, *pil_ops: Callable) -> v2.Compose:
    """PIL image -> ``pil_ops`` (crop, resize, flip) -> uint8 [C, H, W] -> levels."""
    return v2.Compose([*pil_ops, v2.PILToTensor(), ToLevels(n_bits)])


class TransformedSubset(Dataset):
    """Items ``indices`` of a ``(PIL image, label)`` dataset as ``(transform(image), int label)``."""

    def __init__(self, base: Dataset, indices: Sequence[int], transform: Callable[[Image.Image], Tensor]) -> None:
        self.base = base
        self.indices = list(indices)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        image, label = self.base[self.indices[i]]
        return self.transform(image), int(label)


class _ImageDataModule(FlowDataModule):
    """Shared part: ``root``, ``n_bits``, the file check and download, the not-found error.

    Subclasses set ``title``, ``subfolder`` (under ``root``, where the files go), ``files``
    (paths checked, relative to that folder), ``layout`` (shown in errors; defaults to
    ``files``), ``source`` (where to get them) and ``host`` (None: no download).
    """

    title: str
    subfolder: str = ""
    files: tuple[str, ...] = ()
    layout: str = ""
    source: str
    host: str | None = None

    def __init__(
        self, name: str, data_shape: tuple[int, ...], root: str, n_bits: int, download: bool, **kwargs: Any
    ) -> None:
        check_n_bits(n_bits)
        super().__init__(**kwargs)
        self.root = Path(root).expanduser().absolute()
        self.n_bits = n_bits
        self.download = download
        self.name = name
        self.data_shape = data_shape
        self.num_levels = 2**n_bits
        self.is_image = True

    @property
    def folder(self) -> Path:
        """Absolute folder that holds the dataset's files."""
        return self.root / self.subfolder

    def prepare_data(self) -> None:
        """Check the files; download them if missing and ``download`` is true."""
        self._require_files(self.download)

    def setup(self, stage: str | None = None) -> None:
        self._require_files(download=False)
        super().setup(stage)

    def _missing(self) -> list[str]:
        return [f for f in self.files if not (self.folder / f).exists()]

    def _require_files(self, download: bool) -> None:
        missing = self._missing()
        if not missing:
            return
        if not download or self.host is None:
            reason = f"{len(missing)} expected file(s) missing, first {missing[0]!r}"
            if self.host is not None:
                reason += " (prepare_data() downloads them)" if self.download else " (download=false)"
            raise self._not_found(reason)
        if not host_reachable(self.host):
            raise self._not_found(f"files missing and the download host {self.host} is unreachable")
        try:
            self._download()
        except Exception as err:  # any failure of torchvision's downloader ends in the same advice
            raise self._not_found(f"download failed ({type(err).__name__}: {err})") from None
        if self._missing():
            raise self._not_found(f"download finished but {self._missing()[0]!r} is still missing")

    def _download(self) -> None:
        raise NotImplementedError

    def _open(self, dataset_cls: type[Dataset], **kwargs: Any) -> Dataset:
        """Construct a torchvision dataset; its integrity failures become DatasetNotFoundError."""
        try:
            return dataset_cls(str(self.root), download=False, **kwargs)
        except RuntimeError as err:
            raise self._not_found(f"files present but rejected by torchvision ({err})") from None

    def _not_found(self, reason: str) -> DatasetNotFoundError:
        layout = self.layout or "\n".join(self.files)
        return DatasetNotFoundError.build(self.title, self.folder, layout, self.source, reason)


class MNISTDataModule(_ImageDataModule):
    """MNIST, (1, 28, 28). ``val_size`` images of the official train set (fixed by
    ``split_seed``) form the validation set; test is the official 10k test set."""

    title = "MNIST"
    subfolder = "MNIST/raw"
    files = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    source = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/ (mirror of http://yann.lecun.com/exdb/mnist/); "
        "gunzip the four .gz files"
    )
    host = "ossci-datasets.s3.amazonaws.com"

    def __init__(
        self, root: str = "data", download: bool = True, n_bits: int = 8, val_size: int = 5000, **kwargs: Any
    ) -> None:
        super().__init__("mnist", (1, 28, 28), root, n_bits, download, **kwargs)
        self.val_size = val_size

    def _download(self) -> None:
        torchvision.datasets.MNIST(str(self.root), download=True)

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        train = self._open(torchvision.datasets.MNIST, train=True)
        test = self._open(torchvision.datasets.MNIST, train=False)
        levels = level_transform(self.n_bits)
        train_idx, val_idx, _ = split_indices(len(train), self.val_size, 0, self.split_seed)
        return (
            TransformedSubset(train, train_idx, levels),
            TransformedSubset(train, val_idx, levels),
            TransformedSubset(test, range(len(test)), levels),
        )


class CIFAR10DataModule(_ImageDataModule):
    """CIFAR-10, (3, 32, 32). ``val_size`` train images (fixed by ``split_seed``) form the
    validation set; ``random_flip`` flips training images horizontally with probability 1/2."""

    title = "CIFAR-10"
    subfolder = "cifar-10-batches-py"
    files = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
    source = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract it inside the data root)"
    host = "www.cs.toronto.edu"

    def __init__(
        self,
        root: str = "data",
        download: bool = True,
        n_bits: int = 8,
        val_size: int = 5000,
        random_flip: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__("cifar10", (3, 32, 32), root, n_bits, download, **kwargs)
        self.val_size = val_size
        self.random_flip = random_flip

    def _download(self) -> None:
        torchvision.datasets.CIFAR10(str(self.root), download=True)

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        train = self._open(torchvision.datasets.CIFAR10, train=True)
        test = self._open(torchvision.datasets.CIFAR10, train=False)
        levels = level_transform(self.n_bits)
        flip = (v2.RandomHorizontalFlip(),) if self.random_flip else ()
        train_idx, val_idx, _ = split_indices(len(train), self.val_size, 0, self.split_seed)
        return (
            TransformedSubset(train, train_idx, level_transform(self.n_bits, *flip)),
            TransformedSubset(train, val_idx, levels),
            TransformedSubset(test, range(len(test)), levels),
        )


class CelebADataModule(_ImageDataModule):
    """Aligned CelebA: centre crop 148 x 148, resize to ``image_size``, (3, image_size, image_size).

    Uses CelebA's own train/valid/test partition; labels ``y`` are the identity numbers.
    ``n_bits`` defaults to 5 as in Glow.
    """

    title = "CelebA (aligned)"
    subfolder = "celeba"
    files = (
        "img_align_celeba",
        "list_eval_partition.txt",
        "identity_CelebA.txt",
        "list_bbox_celeba.txt",
        "list_landmarks_align_celeba.txt",
        "list_attr_celeba.txt",
    )
    layout = "img_align_celeba/000001.jpg ... 202599.jpg\n" + "\n".join(files[1:])
    source = (
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive: Img/img_align_celeba.zip unzipped, "
        "Anno/*.txt, Eval/list_eval_partition.txt); torchvision's downloader needs `pip install gdown`"
    )
    host = "drive.google.com"

    def __init__(
        self, root: str = "data", download: bool = True, n_bits: int = 5, image_size: int = 64, **kwargs: Any
    ) -> None:
        super().__init__("celeba", (3, image_size, image_size), root, n_bits, download, **kwargs)
        self.image_size = image_size

    def _download(self) -> None:
        torchvision.datasets.CelebA(str(self.root), download=True)

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        levels = level_transform(self.n_bits, v2.CenterCrop(148), v2.Resize(self.image_size))
        train, val, test = (
            self._open(torchvision.datasets.CelebA, split=split, target_type="identity")
            for split in ("train", "valid", "test")
        )
        return (
            TransformedSubset(train, range(len(train)), levels),
            TransformedSubset(val, range(len(val)), levels),
            TransformedSubset(test, range(len(test)), levels),
        )


def _load_image(path: str, mode: str) -> Image.Image:
    with open(path, "rb") as f:
        return Image.open(f).convert(mode)


class ImageFolderDataModule(_ImageDataModule):
    """Images in torchvision ImageFolder layout under ``root`` (``root/<class>/<image>``).

    Each image is converted to ``channels`` (1: mode L, 3: RGB), resized so its short side is
    ``image_size`` and centre-cropped to (channels, image_size, image_size); labels are class
    indices. The train/val/test split is by fractions, fixed by ``split_seed``.
    """

    title = "ImageFolder"
    layout = "<class_a>/<image>.png\n<class_a>/...\n<class_b>/<image>.jpg"
    source = "your own images (any format PIL opens), one subfolder per class (a single class is fine)"

    def __init__(
        self,
        root: str,
        image_size: int,
        channels: int = 3,
        n_bits: int = 8,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        **kwargs: Any,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
        check_fractions(val_fraction, test_fraction)
        super().__init__("imagefolder", (channels, image_size, image_size), root, n_bits, False, **kwargs)
        self.image_size = image_size
        self.channels = channels
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def _missing(self) -> list[str]:
        has_class_dir = self.folder.is_dir() and any(p.is_dir() for p in self.folder.iterdir())
        return [] if has_class_dir else ["<class>/ subfolders"]

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        loader = functools.partial(_load_image, mode="L" if self.channels == 1 else "RGB")
        try:
            images = torchvision.datasets.ImageFolder(str(self.folder), loader=loader)
        except FileNotFoundError as err:  # class folders without any image file
            raise self._not_found(str(err)) from None
        levels = level_transform(self.n_bits, v2.Resize(self.image_size), v2.CenterCrop(self.image_size))
        n_val, n_test = fraction_sizes(len(images), self.val_fraction, self.test_fraction)
        parts = split_indices(len(images), n_val, n_test, self.split_seed)
        train, val, test = (TransformedSubset(images, idx, levels) for idx in parts)
        return train, val, test
