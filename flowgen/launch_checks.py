"""Start-up checks of how a run is launched, each failing with the fix in its message."""

from __future__ import annotations

import os

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

EXTERNAL_LAUNCH_VARS = ("LOCAL_RANK", "TORCHELASTIC_RUN_ID")


def processes_created_externally() -> bool:
    """True under torchrun, Lightning's own re-launch, or a SLURM job step with several tasks."""
    return any(v in os.environ for v in EXTERNAL_LAUNCH_VARS) or int(os.environ.get("SLURM_NTASKS", "1")) > 1


def check_multirun_strategy(multirun: bool, strategy: object, world: int) -> None:
    """Refuse Lightning's subprocess DDP inside a local Hydra multirun.

    ``ddp`` (and ``auto`` on several GPUs) re-runs ``python train.py <argv>`` once per extra
    device, ``-m`` included, so every job would start the whole sweep again in its children.
    """
    if not multirun or world <= 1 or not isinstance(strategy, str) or processes_created_externally():
        return
    if "spawn" in strategy or "fork" in strategy or "notebook" in strategy:
        return
    raise ValueError(f"trainer.strategy={strategy} with {world} processes re-launches train.py, which inside a "
                     "multirun (-m) would start nested sweeps: use trainer=ddp_spawn (or ddp_cpu) on one machine, "
                     "or launcher=slurm on a cluster")


def check_shared_run_dir(multirun: bool, overrides: list[str]) -> None:
    """Refuse processes started by srun or torchrun that could each pick their own run directory.

    Every such process composes the config itself; the default ``run_name`` is its start time,
    which can differ between processes (and after a requeue). A multirun job's directory is the
    sweep's, fixed at submission; Lightning's own re-launch passes ``hydra.run.dir``.
    """
    if multirun or not processes_created_externally():
        return
    if any(o.split("=", 1)[0].lstrip("+~") in ("run_name", "hydra.run.dir") for o in overrides):
        return
    raise ValueError("several processes were started outside Lightning (srun / torchrun) and each would name the run "
                     "directory after its own start time: pass a fixed run_name, e.g. run_name=job_${SLURM_JOB_ID}")


def check_launch(strategy: object, world: int) -> None:
    """Checks needing Hydra's runtime config (skipped when Hydra is not running, e.g. in tests)."""
    if not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    multirun = hydra.mode == RunMode.MULTIRUN
    check_multirun_strategy(multirun, strategy, world)
    check_shared_run_dir(multirun, [*hydra.overrides.task, *hydra.overrides.hydra])
    if "submitit" in str(hydra.launcher.get("_target_", "")) and not multirun:
        raise ValueError("launcher=slurm submits jobs only in multirun mode: add -m "
                         "(python train.py -m launcher=slurm ...)")
