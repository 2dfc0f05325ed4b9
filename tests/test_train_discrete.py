"""RealNVP and Glow through train.py's code path: digits runs improve bpd, bad set-ups fail at
start-up, and every paper-recipe experiment config composes, builds and runs a few steps on small
local stand-in data."""

import csv
import json
import struct
import time
from pathlib import Path

import hydra
import pytest
import torch
from hydra.errors import InstantiationException
from PIL import Image

from flowgen import load_model
from flowgen.training import train


ROOT = Path(__file__).resolve().parents[1]
# FID callbacks are chosen per image dataset when the `fid` group exists; these runs test the flows only
NO_FID = ["~callbacks.fid"] if (ROOT / "conf" / "fid" / "none.yaml").is_file() else []
EXPERIMENTS = {
    "glow_cifar10": {"levels": 3, "steps": 32, "hidden_channels": 512, "coupling": "affine"},
    "glow_cifar10_additive": {"levels": 3, "steps": 32, "hidden_channels": 512, "coupling": "additive"},
    "realnvp_cifar10": {"num_scales": 2, "features": 64, "num_blocks": 8, "preprocess": "logit"},
    "glow_mnist": {"levels": 2, "steps": 32, "hidden_channels": 512},
    "glow_celeba": {"levels": 4, "steps": 32, "coupling": "additive"},
}


def first_val_bpd(run_dir: Path) -> float:
    rows = list(csv.DictReader(open(run_dir / "csv" / "metrics.csv")))
    return next(float(r["val/bpd"]) for r in rows if r.get("val/bpd"))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["realnvp", "glow"])
def test_short_digits_run_improves_bpd_and_loads_back(compose, tmp_path, model):
    results = train(compose(f"model={model}", "trainer.max_epochs=3", *NO_FID))
    assert json.loads((tmp_path / "results.json").read_text()) == results
    assert results["train/skipped_steps"] == 0
    assert results["test/bpd"] < 4.09  # beats the uniform density log2(17)
    assert results["test/bpd"] < first_val_bpd(tmp_path) - 0.1  # and improved during training
    assert (tmp_path / "samples" / "test.png").is_file()
    m = load_model(results["ckpt_path"])
    assert not m.model.needs_data_init()
    k = m.sample(8, temperature=0.7)
    assert k.shape == (8, 1, 8, 8) and k.dtype == torch.uint8


@pytest.mark.parametrize("model, option", [("glow", "levels=4"), ("realnvp", "num_scales=5")])
def test_image_size_not_divisible_fails_at_start_up_naming_levels_and_size(compose, model, option):
    start = time.monotonic()
    with pytest.raises(InstantiationException, match=r"L=\d .*image size 8x8"):
        train(compose(f"model={model}", f"model.flow.{option}", *NO_FID))
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("model", ["realnvp", "glow"])
def test_non_image_data_fails_at_start_up(compose, model):
    with pytest.raises(InstantiationException, match=f"{model} needs image data"):
        train(compose("data=toy2d", f"model={model}"))


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_experiment_config_composes_and_builds_its_model(compose, experiment):
    cfg = compose(f"experiment={experiment}", *NO_FID)
    assert cfg.task_name == experiment
    for key, value in EXPERIMENTS[experiment].items():
        assert cfg.model.flow[key] == value, key
    datamodule = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model, data=datamodule.spec())
    assert module.data_shape == datamodule.data_shape
    assert module.model.needs_data_init() == (cfg.model.flow.name == "glow")  # ActNorm in Glow only
    if cfg.model.flow.name == "glow":
        assert cfg.model.max_grad_norm is not None and cfg.model.scheduler.warmup_steps > 0
        assert cfg.model.optimizer.name == "adamax"


def write_fake_mnist(root: Path, n_train: int = 48, n_test: int = 16) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = torch.randint(0, 256, (n, 28, 28), generator=gen, dtype=torch.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.numpy().tobytes())
        labels = torch.randint(0, 10, (n,), generator=gen, dtype=torch.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.numpy().tobytes())


def write_fake_images(root: Path, size: int, n: int = 40) -> None:
    folder = root / "class0"
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    for i in range(n):
        pixels = torch.randint(0, 256, (size, size, 3), generator=gen, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")


FEW_STEPS = ["debug=default", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
             "trainer.limit_test_batches=1", "callbacks.sample_figures.num_samples=4", "data.batch_size=8",
             "data.eval_batch_size=8", "model.data_init_samples=16", *NO_FID]


@pytest.mark.slow
@pytest.mark.parametrize("experiment, data, tiny", [
    ("glow_mnist", ["data.val_size=8"], ["model.flow.steps=2", "model.flow.hidden_channels=16"]),
    ("realnvp_cifar10", ["data=imagefolder", "data.image_size=32", "data.channels=3"],
     ["model.flow.features=8", "model.flow.num_blocks=1"]),
    ("glow_celeba", ["data=imagefolder", "data.image_size=64", "data.channels=3", "data.n_bits=5"],
     ["model.flow.steps=1", "model.flow.hidden_channels=8"]),
])
def test_experiment_runs_a_few_steps_on_small_local_data(compose, tmp_path, experiment, data, tiny):
    root = tmp_path / "data"
    if experiment == "glow_mnist":
        write_fake_mnist(root)
    else:
        write_fake_images(root, int(data[1].split("=")[1]))
    results = train(compose(f"experiment={experiment}", *data, f"data.root={root}", "data.num_workers=0",
                            "data.download=false" if experiment == "glow_mnist" else "seed=0", *tiny, *FEW_STEPS))
    assert torch.isfinite(torch.tensor(results["test/bpd"])) and results["train/skipped_steps"] == 0
