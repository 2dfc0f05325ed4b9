"""`python train.py hparams_search=optuna` runs an Optuna TPE study whose objective is the value
train.py returns for optimized_metric (val/bpd), one run directory per trial."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_trial_optuna_study_minimises_val_bpd(tmp_path):
    sweep = tmp_path / "sweep"
    command = [sys.executable, str(ROOT / "train.py"), "hparams_search=optuna", "debug=default",
               "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=1", f"hydra.sweep.dir={sweep}",
               f"paths.log_dir={tmp_path}",
               "~callbacks.rich_progress_bar", "~callbacks.rich_model_summary", "~callbacks.sample_figures",
               "fid=none", "test=false", "trainer.enable_progress_bar=false", "print_config=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = [json.loads((sweep / str(i) / "results.json").read_text())["val/bpd"] for i in range(2)]
    assert best["best_value"] == pytest.approx(min(trials))
    assert set(best["best_params"]) == {"model.optimizer.lr", "model.flow.hidden_dim", "model.flow.num_couplings"}
