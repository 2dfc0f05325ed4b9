"""Image datamodules on tiny fake datasets written to tmp_path; never touches the network."""

import os
import pickle
import struct
import time
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from flowgen.data import vision
from flowgen.data.errors import DatasetNotFoundError
from flowgen.data.vision import CelebADataModule, CIFAR10DataModule, ImageFolderDataModule, MNISTDataModule


def everything(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def ready(dm):
    dm.prepare_data()
    dm.setup()
    return dm


def rows(images: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(r) for r in images.reshape(len(images), -1).tolist()}


# ---------------------------------------------------------------- MNIST: real idx files


def write_idx(path: Path, array: np.ndarray) -> None:
    """Big-endian idx file of uint8 data (magic 0x0800 | ndim), as in the MNIST distribution."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_root(tmp_path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    train = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    test[0, 0, 0], test[0, 0, 1] = 255, 0
    write_idx(raw / "train-images-idx3-ubyte", train)
    write_idx(raw / "train-labels-idx1-ubyte", rng.integers(0, 10, 30, dtype=np.uint8))
    write_idx(raw / "t10k-images-idx3-ubyte", test)
    test_labels = np.arange(12, dtype=np.uint8) % 10
    write_idx(raw / "t10k-labels-idx1-ubyte", test_labels)
    return tmp_path, test, test_labels


@pytest.mark.parametrize("n_bits", [8, 5])
def test_mnist_levels_from_idx_files(mnist_root, n_bits):
    root, test_images, test_labels = mnist_root
    dm = ready(MNISTDataModule(root=str(root), download=False, n_bits=n_bits, val_size=6, batch_size=8))
    assert dm.spec() == {"name": "mnist", "shape": [1, 28, 28], "num_levels": 2**n_bits, "is_image": True}
    assert [len(d) for d in (dm.train_set, dm.val_set, dm.test_set)] == [24, 6, 12]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    xt, yt = everything(dm.test_dataloader())
    expected = torch.from_numpy(test_images).unsqueeze(1) >> (8 - n_bits)
    assert torch.equal(xt, expected) and torch.equal(yt, torch.from_numpy(test_labels).long())
    assert xt[0, 0, 0, 0] == 2**n_bits - 1 and xt[0, 0, 0, 1] == 0  # 255 -> 31 for 5 bits


def test_mnist_validation_carved_from_train_by_split_seed(mnist_root):
    root = str(mnist_root[0])
    val = [
        everything(ready(MNISTDataModule(root=root, val_size=6, split_seed=s)).val_dataloader())[0] for s in (0, 0, 1)
    ]
    assert torch.equal(val[0], val[1]) and not torch.equal(val[0], val[2])
    train, _ = everything(ready(MNISTDataModule(root=root, val_size=6)).train_dataloader())
    assert len(rows(train)) == 24 and not rows(train) & rows(val[0])


def test_n_bits_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="n_bits"):
        MNISTDataModule(n_bits=9)
    with pytest.raises(ValueError, match="n_bits"):
        CIFAR10DataModule(n_bits=0)


# ---------------------------------------------------------------- CIFAR-10: fake pickled batches


@pytest.fixture
def cifar_root(tmp_path, monkeypatch) -> tuple[Path, np.ndarray, np.ndarray]:
    # torchvision checks md5 sums of the real files; accept any file that exists instead
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    def dump(name: str, obj: dict) -> None:
        # the real files are Python 2 pickles, read back with str keys; protocol 2 + str keys matches
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    train = rng.integers(0, 256, (20, 3072), dtype=np.uint8)
    for i in range(5):
        dump(f"data_batch_{i + 1}", {"data": train[4 * i : 4 * i + 4], "labels": [i] * 4})
    test = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
    dump("test_batch", {"data": test, "labels": [1, 2, 3, 4, 5]})
    dump("batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    return tmp_path, train.reshape(-1, 3, 32, 32), test.reshape(-1, 3, 32, 32)


def test_cifar10_batches(cifar_root):
    root, _, test = cifar_root
    dm = ready(CIFAR10DataModule(root=str(root), val_size=5, batch_size=4))
    assert [len(d) for d in (dm.train_set, dm.val_set, dm.test_set)] == [15, 5, 5]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    xt, yt = everything(dm.test_dataloader())
    assert torch.equal(xt, torch.from_numpy(test)) and yt.tolist() == [1, 2, 3, 4, 5]


def test_cifar10_flips_training_images_only(cifar_root):
    root, train, _ = cifar_root
    originals = {img.tobytes() for img in train}
    flipped = {img[..., ::-1].copy().tobytes() for img in train}
    torch.manual_seed(0)
    dm = ready(CIFAR10DataModule(root=str(root), val_size=5, random_flip=True))
    seen = [img.numpy().tobytes() for _ in range(3) for img in everything(dm.train_dataloader())[0]]
    assert any(s in flipped for s in seen) and any(s in originals for s in seen)
    assert all(s in flipped | originals for s in seen)
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        for _ in range(3):
            assert not any(img.numpy().tobytes() in flipped for img in everything(loader)[0])
    no_flip = ready(CIFAR10DataModule(root=str(root), val_size=5, random_flip=False))
    assert all(img.numpy().tobytes() in originals for img in everything(no_flip.train_dataloader())[0])


# ---------------------------------------------------------------- CelebA: fake aligned layout

CELEBA_COLOURS = [(10, 20, 30), (40, 50, 60), (70, 80, 90), (100, 110, 120), (130, 140, 150), (250, 255, 8)]
CELEBA_PARTITION = [0, 0, 1, 1, 2, 2]  # torchvision fails on a split of one image


@pytest.fixture
def celeba_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(torchvision.datasets.CelebA, "_check_integrity", lambda self: True)
    folder = tmp_path / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(CELEBA_COLOURS))]
    for name, colour in zip(names, CELEBA_COLOURS, strict=True):
        # 178 x 218 like CelebA: a solid central 148 x 148 square in a red frame that the crop removes
        image = Image.new("RGB", (178, 218), (255, 0, 0))
        image.paste(colour, (15, 35, 163, 183))
        image.save(folder / "img_align_celeba" / name, format="PNG")  # lossless, whatever the suffix

    def table(file: str, header: str | None, values: list[str]) -> None:
        head = f"{len(values)}\n{header}\n" if header else ""
        (folder / file).write_text(head + "".join(f"{n} {v}\n" for n, v in zip(names, values, strict=True)))

    table("list_eval_partition.txt", None, [str(p) for p in CELEBA_PARTITION])
    table("identity_CelebA.txt", None, [str(100 + i) for i in range(len(names))])
    table("list_bbox_celeba.txt", "image_id x_1 y_1 width height", ["1 2 3 4"] * len(names))
    table("list_landmarks_align_celeba.txt", "a b c d e f g h i j", [" ".join(["5"] * 10)] * len(names))
    table("list_attr_celeba.txt", "Smiling Young", ["1 -1"] * len(names))
    return tmp_path


def test_celeba_uses_its_own_split_crop_resize_and_bits(celeba_root):
    dm = ready(CelebADataModule(root=str(celeba_root), image_size=16, batch_size=2))
    assert dm.spec() == {"name": "celeba", "shape": [3, 16, 16], "num_levels": 32, "is_image": True}
    assert [len(d) for d in (dm.train_set, dm.val_set, dm.test_set)] == [2, 2, 2]
    xt, yt = everything(dm.test_dataloader())
    assert xt.shape == (2, 3, 16, 16) and xt.dtype == torch.uint8 and yt.dtype == torch.int64
    assert yt.tolist() == [104, 105]  # identities of the two test images
    # only the central square survives the crop; 5-bit levels are the 8-bit colour >> 3
    expected = torch.tensor(CELEBA_COLOURS[4:], dtype=torch.uint8) >> 3
    assert torch.equal(xt, expected[:, :, None, None].expand(2, 3, 16, 16))
    xv, _ = everything(dm.val_dataloader())
    assert xv.shape == (2, 3, 16, 16) and xv.max() <= 31


# ---------------------------------------------------------------- ImageFolder


@pytest.fixture
def folder_root(tmp_path) -> Path:
    """10 solid-colour images (grey value 20 * i in every channel) in two class folders."""
    for i in range(10):
        cls = tmp_path / "images" / ("cat" if i < 4 else "dog")
        cls.mkdir(parents=True, exist_ok=True)
        size = (20, 12) if i % 2 else (12, 12)  # some non-square images
        Image.new("RGB", size, (20 * i, 20 * i, 20 * i)).save(cls / f"{i}.png")
    return tmp_path / "images"


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_split_by_fractions(folder_root, channels):
    dm = ImageFolderDataModule(str(folder_root), 8, channels, val_fraction=0.2, test_fraction=0.2, batch_size=3)
    ready(dm)
    assert dm.spec() == {"name": "imagefolder", "shape": [channels, 8, 8], "num_levels": 256, "is_image": True}
    parts = [everything(loader) for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader())]
    assert [len(x) for x, _ in parts] == [6, 2, 2]
    ids = []
    for x, y in parts:
        assert x.shape[1:] == (channels, 8, 8) and x.dtype == torch.uint8 and y.dtype == torch.int64
        assert (x == x[:, :1, :1, :1]).all()  # solid images stay solid
        i = x[:, 0, 0, 0].long() // 20
        assert torch.equal(y, (i >= 4).long())  # class index: cat 0, dog 1
        ids += i.tolist()
    assert sorted(ids) == list(range(10))  # a partition of the 10 images


def test_image_folder_split_seed_and_bits(folder_root):
    def val_images(split_seed: int) -> torch.Tensor:
        dm = ImageFolderDataModule(str(folder_root), 4, n_bits=3, val_fraction=0.3, split_seed=split_seed)
        return everything(ready(dm).val_dataloader())[0]

    assert torch.equal(val_images(0), val_images(0)) and not torch.equal(val_images(0), val_images(1))
    assert set(val_images(0).unique().tolist()) <= {(20 * i) >> 5 for i in range(10)}  # 3-bit levels


def test_image_folder_missing(tmp_path):
    dm = ImageFolderDataModule(str(tmp_path / "nowhere"), image_size=8)
    with pytest.raises(DatasetNotFoundError, match="<class_a>") as info:
        dm.prepare_data()
    assert str(tmp_path / "nowhere") in str(info.value)


# ---------------------------------------------------------------- offline errors


MODULES = [
    (MNISTDataModule, "MNIST/raw", "train-images-idx3-ubyte", "ossci-datasets.s3.amazonaws.com"),
    (CIFAR10DataModule, "cifar-10-batches-py", "data_batch_1", "www.cs.toronto.edu/~kriz"),
    (CelebADataModule, "celeba", "list_eval_partition.txt", "mmlab.ie.cuhk.edu.hk"),
]


@pytest.mark.parametrize(("cls", "folder", "file", "url"), MODULES)
def test_missing_files_without_download(tmp_path, monkeypatch, cls, folder, file, url):
    monkeypatch.setattr(vision, "host_reachable", lambda host: pytest.fail("must not probe the network"))
    dm = cls(root=str(tmp_path), download=False)
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    assert time.monotonic() - start < 20
    message = str(info.value)
    for needle in (str((tmp_path / folder).resolve()), file, url, "data.download=true", "download=false"):
        assert needle in message
    assert isinstance(info.value, FileNotFoundError) and info.value.__context__ is None
    with pytest.raises(DatasetNotFoundError):  # setup alone gives the same error
        dm.setup()


@pytest.mark.parametrize(("cls", "folder", "file", "url"), MODULES)
def test_unreachable_host_fails_fast_without_download_attempt(tmp_path, monkeypatch, cls, folder, file, url):
    monkeypatch.setattr(vision, "host_reachable", lambda host: False)
    monkeypatch.setattr(cls, "_download", lambda self: pytest.fail("must not try to download"))
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError, match="unreachable") as info:
        cls(root=str(tmp_path), download=True).prepare_data()
    assert time.monotonic() - start < 20
    assert str((tmp_path / folder).resolve()) in str(info.value)


def test_failed_download_becomes_dataset_not_found(tmp_path, monkeypatch):
    def broken(self):
        raise URLError("connection reset")

    monkeypatch.setattr(vision, "host_reachable", lambda host: True)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", broken)
    with pytest.raises(DatasetNotFoundError, match="download failed.*connection reset") as info:
        CIFAR10DataModule(root=str(tmp_path), download=True).prepare_data()
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_corrupt_files_become_dataset_not_found(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in CIFAR10DataModule.files:
        (folder / name).write_bytes(b"junk")  # present, but torchvision's md5 check rejects them
    with pytest.raises(DatasetNotFoundError, match="rejected by torchvision"):
        ready(CIFAR10DataModule(root=str(tmp_path), download=False))
