"""train.py as a command: a 2-job multirun (one job on 1 process, one with 2-process DDP through
ddp_spawn) writes one run directory per job and does not nest; a run killed after its first
checkpoint and started again with the same command resumes from last.ckpt in the same run
directory."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
QUIET = ["~callbacks.rich_progress_bar", "~callbacks.rich_model_summary", "~callbacks.sample_figures",
         "fid=none", "trainer.enable_progress_bar=false", "print_config=false"]
SMALL = ["debug=default", "model.flow.hidden_dim=32", "model.flow.num_hidden_layers=1", "model.flow.num_couplings=4",
         "trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0"]


def run_train(args: list[str], multirun: bool = False) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    command = [sys.executable, str(ROOT / "train.py"), *(["-m"] if multirun else []), *QUIET, *SMALL, *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_multirun_with_ddp_spawn_writes_one_run_dir_per_job_and_does_not_nest(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train(["trainer=default,ddp_cpu", "test=false", f"hydra.sweep.dir={sweep}",
                      f"paths.log_dir={tmp_path / 'logs'}"], multirun=True)
    out, _ = proc.communicate(timeout=540)
    assert proc.returncode == 0, out[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job, trainer in (("0", "default"), ("1", "ddp_cpu")):
        results = json.loads((sweep / job / "results.json").read_text())
        assert results["val/bpd"] > 0 and (sweep / job / "checkpoints" / "last.ckpt").is_file()
        assert f"trainer={trainer}" in (sweep / job / ".hydra" / "overrides.yaml").read_text()
    assert out.count("Launching 2 jobs locally") == 1
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("multiruns"))


def read_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_killed_run_resumes_from_last_ckpt_in_the_same_run_directory(tmp_path):
    args = ["run_name=preempted", f"paths.log_dir={tmp_path}", "trainer.max_epochs=6", "trainer.limit_train_batches=4",
            "test=false"]
    run_dir = tmp_path / "debug" / "runs" / "preempted"
    last = run_dir / "checkpoints" / "last.ckpt"
    first = run_train(args)
    deadline = time.monotonic() + 300
    while not last.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.kill()  # a preemption without warning: SIGKILL right after the first checkpoint
    first.communicate()
    killed = read_ckpt(last)
    assert killed["epoch"] < 5, "the first run finished before it could be killed"

    second = run_train(args)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out[-3000:]
    assert f"resume=auto: continuing from {last}" in out
    assert f"Restoring states from the checkpoint path at {last}" in out
    final = read_ckpt(last)
    assert final["global_step"] == 6 * 4 and final["epoch"] == 5
    # the second segment logs into the same run directory (the killed one never flushed its rows)
    rows = list(csv.DictReader(open(run_dir / "csv" / "metrics.csv")))
    assert sorted({int(float(r["epoch"])) for r in rows if r.get("val/bpd")}) == list(range(killed["epoch"] + 1, 6))
