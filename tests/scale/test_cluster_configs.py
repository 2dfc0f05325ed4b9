"""Cluster and sweep configs compose into what their tools expect (no cluster needed): the SLURM
launcher's submitit parameters and job array, Optuna sweeps, the W&B sweep example, run
directories, launch checks and auto-resume."""

import os
import re
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import OmegaConf

from flowgen.launch_checks import check_multirun_strategy, check_shared_run_dir
from flowgen.resume import find_resume_checkpoint
from flowgen.training import train

ROOT = Path(__file__).resolve().parents[2]


def hydra_config(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


class FakeExecutor:
    """Stands in for submitit.AutoExecutor: records what the launcher asks of it."""

    calls: list = []

    def __init__(self, cluster: str, **init) -> None:
        FakeExecutor.calls.append(("init", cluster, init))

    def update_parameters(self, **params) -> None:
        FakeExecutor.calls.append(("params", params))

    def map_array(self, fn, *job_args):
        jobs = list(zip(*job_args))
        FakeExecutor.calls.append(("array", jobs))
        return [type("Job", (), {"results": lambda self: [JobReturn()]})() for _ in jobs]


def test_slurm_launcher_submits_a_job_array_with_one_task_per_gpu(tmp_path, monkeypatch):
    import submitit

    cfg = hydra_config("launcher=slurm", "experiment=glow_cifar10", "trainer.devices=4", "trainer.num_nodes=2",
                       "hydra.launcher.partition=gpu", "hydra.launcher.setup=[module load cuda]",
                       f"hydra.sweep.dir={tmp_path}")
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.plugins[0].auto_requeue is False  # submitit owns requeue
    monkeypatch.setattr(submitit, "AutoExecutor", FakeExecutor)
    FakeExecutor.calls = []
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    launcher.launch([[f"seed={s}"] for s in (1, 2, 3)], initial_job_idx=0)

    (_, cluster, init), (_, params), (_, jobs) = FakeExecutor.calls
    assert cluster == "slurm" and init == {"folder": f"{tmp_path}/.submitit/%j", "slurm_max_num_timeout": 20}
    assert {k: params[k] for k in ("gpus_per_node", "tasks_per_node", "nodes", "timeout_min", "cpus_per_task")} == {
        "gpus_per_node": 4, "tasks_per_node": 4, "nodes": 2, "timeout_min": 1440, "cpus_per_task": 8}
    assert params["slurm_partition"] == "gpu" and params["slurm_signal_delay_s"] == 120
    assert params["slurm_setup"] == ["module load cuda"] and params["name"] == "glow_cifar10"
    assert [job[0] for job in jobs] == [["seed=1"], ["seed=2"], ["seed=3"]]  # one array task per seed
    assert [job[2] for job in jobs] == [0, 1, 2]  # job numbers: run dirs <sweep dir>/0, /1, /2


def test_optuna_search_composes_with_tpe_over_lr_width_and_depth():
    cfg = hydra_config("hparams_search=optuna")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert sweeper.direction == "minimize" and cfg.optimized_metric == "val/bpd" and cfg.hydra.mode == RunMode.MULTIRUN
    assert set(sweeper.params) == {"model.optimizer.lr", "model.flow.hidden_dim", "model.flow.num_couplings"}
    glow = hydra_config("hparams_search=optuna_glow")
    assert glow.model.flow.name == "glow"
    assert set(glow.hydra.sweeper.params) == {"model.optimizer.lr", "model.flow.hidden_channels", "model.flow.steps"}
    for search in (cfg, glow):  # every searched key exists in the model's config
        assert all(OmegaConf.select(search, key) is not None for key in search.hydra.sweeper.params)


def test_wandb_sweep_example_passes_valid_hydra_overrides():
    sweep = yaml.safe_load((ROOT / "sweeps" / "wandb_glow.yaml").read_text())
    assert "${args_no_hyphens}" in sweep["command"] and sweep["program"] == "train.py"
    fixed = [arg for arg in sweep["command"] if not arg.startswith("${")]
    sampled = []
    for key, spec in sweep["parameters"].items():
        sampled.append(f"{key}={spec['values'][0] if 'values' in spec else spec['min']}")
    cfg = hydra_config(*fixed, *sampled)  # a mistyped key would fail here
    assert cfg.model.flow.name == "glow" and "wandb" in cfg.logger


def test_run_name_makes_the_run_directory_deterministic():
    cfg = hydra_config("run_name=job_1234_7")
    assert cfg.hydra.run.dir.endswith("/train/runs/job_1234_7")
    default = hydra_config().hydra.run.dir  # the start time
    assert re.search(r"/train/runs/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d$", default)


def test_ddp_that_relaunches_argv_is_refused_inside_a_local_multirun(monkeypatch):
    for var in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="trainer=ddp_spawn"):
        check_multirun_strategy(True, "ddp", 2)
    check_multirun_strategy(True, "ddp_spawn", 2)
    check_multirun_strategy(True, "ddp", 1)
    check_multirun_strategy(False, "ddp", 8)
    monkeypatch.setenv("SLURM_NTASKS", "8")  # the submitit launcher: SLURM created the processes
    check_multirun_strategy(True, "ddp", 8)


def test_srun_or_torchrun_processes_need_a_fixed_run_name(monkeypatch):
    for var in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    check_shared_run_dir(False, [])  # one process: its own start time is fine
    monkeypatch.setenv("SLURM_NTASKS", "8")
    with pytest.raises(ValueError, match="run_name=job_"):
        check_shared_run_dir(False, ["experiment=glow_cifar10"])
    check_shared_run_dir(False, ["run_name=job_42"])
    check_shared_run_dir(False, ["hydra.run.dir=/runs/x"])  # Lightning's re-launch of ranks > 0
    check_shared_run_dir(True, [])  # a multirun job: the sweep's directory


def test_ddp_spawn_trainer_is_the_local_multi_gpu_choice():
    cfg = hydra_config("trainer=ddp_spawn")
    assert cfg.trainer.strategy == "ddp_spawn" and cfg.trainer.accelerator == "gpu"


def test_auto_resume_takes_the_newest_of_last_and_hpc_checkpoints(tmp_path):
    assert find_resume_checkpoint(tmp_path) is None
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.write_bytes(b"x")
    assert find_resume_checkpoint(tmp_path) == last
    hpc = tmp_path / "hpc_ckpt_2.ckpt"
    hpc.write_bytes(b"x")
    os.utime(last, (1, 1))
    assert find_resume_checkpoint(tmp_path) == hpc


def test_unknown_resume_mode_names_the_choices(compose):
    with pytest.raises(ValueError, match="auto .* or never"):
        train(compose("resume=always"))
