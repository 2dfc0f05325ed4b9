"""Hydra entry point: `python train.py [overrides]` (see conf/config.yaml and README.md)."""

import os
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from flowgen.training import train  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Train and test one model; return ``optimized_metric`` for sweepers."""
    results = train(cfg)
    return results.get(cfg.optimized_metric)


if __name__ == "__main__":
    main()
