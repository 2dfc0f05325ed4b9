"""Every data x model combination composes and builds; bad configs fail at start-up, clearly."""

import time
from pathlib import Path

import hydra
import pytest
from hydra.errors import ConfigCompositionException, InstantiationException

from flowgen.training import train

DATA = ["digits", "toy2d", "mnist", "cifar10", "celeba", "imagefolder"]
MODELS = ["nice", "realnvp", "glow", "ffjord", "cfm"]
IMAGE_ONLY = {"realnvp", "glow"}
COMBINATIONS = [(d, m) for d in DATA for m in MODELS if not (d == "toy2d" and m in IMAGE_ONLY)]


@pytest.mark.parametrize("data, model", COMBINATIONS)
def test_every_data_model_combination_builds(compose, data, model, tmp_path):
    cfg = compose(f"data={data}", f"model={model}", f"data.root={tmp_path}" if data == "imagefolder" else "seed=1")
    datamodule = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model, data=datamodule.spec())
    assert module.data_shape == datamodule.data_shape
    assert module.is_image == datamodule.is_image
    for group in ("callbacks", "logger"):
        for entry in cfg[group].values():
            assert "_target_" in entry


@pytest.mark.parametrize("model", sorted(IMAGE_ONLY))
def test_image_only_models_refuse_2d_data_at_start_up(compose, model):
    cfg = compose("data=toy2d", f"model={model}")
    with pytest.raises(InstantiationException, match="image"):
        hydra.utils.instantiate(cfg.model, data={"shape": [2], "num_levels": None, "is_image": False})


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "ddp", "ddp_cpu"])
@pytest.mark.parametrize("logger", ["csv", "tensorboard", "wandb", "many"])
def test_trainer_and_logger_configs_compose(compose, trainer, logger):
    cfg = compose(f"trainer={trainer}", f"logger={logger}")
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    assert all("_target_" in entry for entry in cfg.logger.values())


EXPERIMENTS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_its_small_models_build(compose, experiment, tmp_path):
    cfg = compose(f"experiment={experiment}")
    assert cfg.task_name == experiment and cfg.model.flow.name in MODELS
    if cfg.data._target_.endswith(("DigitsDataModule", "Toy2dDataModule")):  # CPU-sized: build them too
        datamodule = hydra.utils.instantiate(cfg.data)
        module = hydra.utils.instantiate(cfg.model, data=datamodule.spec())
        assert module.data_shape == datamodule.data_shape


def test_experiment_and_debug_configs_compose(compose):
    cfg = compose("experiment=nice_mnist", "debug=default")
    assert cfg.data._target_.endswith("MNISTDataModule") and cfg.trainer.limit_train_batches == 5


def test_unknown_key_fails_at_composition(compose):
    with pytest.raises(ConfigCompositionException):
        compose("model.flow.num_coupling=3")
    with pytest.raises(ConfigCompositionException):
        compose("data=digitz")


def test_unknown_model_option_names_the_valid_options(compose):
    cfg = compose("+model.flow.depth=3")
    with pytest.raises(InstantiationException, match=r"unknown option\(s\) \['depth'\].*num_couplings"):
        hydra.utils.instantiate(cfg.model, data={"shape": [2], "num_levels": None, "is_image": False})


def test_unknown_toy_density_fails_before_training(compose):
    cfg = compose("data=toy2d", "data.name=spiralz")
    with pytest.raises(InstantiationException, match="8gaussians"):
        train(cfg)


def test_missing_dataset_offline_fails_within_seconds(compose, tmp_path):
    cfg = compose("data=mnist", f"data.root={tmp_path}/nowhere", "data.download=false")
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(cfg)
    assert time.monotonic() - start < 20


def test_unknown_optimizer_or_schedule_fails_when_the_model_is_built(compose):
    data = {"shape": [2], "num_levels": None, "is_image": False}
    with pytest.raises(InstantiationException, match="adamax"):
        hydra.utils.instantiate(compose("model.optimizer.name=sgd").model, data=data)
    with pytest.raises(InstantiationException, match="cosine"):
        hydra.utils.instantiate(compose("model.scheduler.name=step").model, data=data)
