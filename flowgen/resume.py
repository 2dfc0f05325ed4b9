"""Automatic resumption in a deterministic run directory (``resume: auto``).

A job that is rerun, requeued or preempted starts again with the same run directory (a fixed
``run_name``, or the submitit launcher's ``<sweep dir>/<job number>``); it continues from the
newest of ``checkpoints/last.ckpt`` and Lightning's SLURM ``hpc_ckpt_<n>.ckpt`` found there.
"""

from __future__ import annotations

from pathlib import Path


def find_resume_checkpoint(output_dir: str | Path, checkpoint_dir: str | Path | None = None) -> Path | None:
    """The most recently written of ``<checkpoint_dir>/last.ckpt`` (default ``<output_dir>/checkpoints``)
    and ``<output_dir>/hpc_ckpt_*.ckpt``, or None when there is none."""
    output_dir = Path(output_dir)
    candidates = [Path(checkpoint_dir or output_dir / "checkpoints") / "last.ckpt", *output_dir.glob("hpc_ckpt_*.ckpt")]
    found = [p for p in candidates if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
