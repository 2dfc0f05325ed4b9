"""Shared fixtures: offline, quiet W&B, Hydra configs composed against conf/ with a temp run dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
os.environ.setdefault("WANDB_MODE", "disabled")
# the models in tests are small: one thread avoids oversubscribing CI's 2 cores (many times faster)
torch.set_num_threads(1)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

# quiet, single-process runs: no progress bars or model summaries in test logs
QUIET = ["~callbacks.rich_progress_bar", "~callbacks.rich_model_summary", "trainer.enable_progress_bar=false", "print_config=false"]


@pytest.fixture(scope="session")
def digits_features_dir(tmp_path_factory):
    """One cache of the digits FID classifier for the whole session, outside the repository."""
    return tmp_path_factory.mktemp("digits_features")


@pytest.fixture
def compose(tmp_path, digits_features_dir):
    """compose(*overrides, output_dir=None) -> DictConfig of conf/config.yaml; outputs go to
    ``output_dir`` (default tmp_path)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    def _compose(*overrides: str, quiet: bool = True, output_dir=None):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = hydra_compose("config", overrides=[*(QUIET if quiet else []), *overrides], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir or tmp_path)
            cfg.paths.log_dir = str(tmp_path / "logs")
            if cfg.get("callbacks") and cfg.callbacks.get("fid"):
                cfg.callbacks.fid.digits_cache_dir = str(digits_features_dir)
            del cfg.hydra
        return cfg

    yield _compose
    GlobalHydra.instance().clear()
