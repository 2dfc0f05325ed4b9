"""Weights & Biases logger that never blocks a run and continues the W&B run of its job.

- Run id: ``id``, else ``WANDB_RUN_ID`` (set by a W&B sweep agent), else derived from the run
  directory (``save_dir``), so a rerun, requeued or preempted job, which resumes in its own
  directory, also continues its W&B run (``resume="allow"``).
- Offline fallback: unless W&B is already offline or disabled (``offline=true`` or
  ``WANDB_MODE=offline|disabled``), the server (``WANDB_BASE_URL``, default api.wandb.ai) is
  probed for ``connect_timeout_s`` seconds; if it does not answer the run logs offline, with a
  warning naming ``wandb sync``, instead of waiting minutes for W&B's own retries.
- ``WANDB_DIR`` is set to ``save_dir``, so processes started by ``ddp_spawn``, which attach to
  this run, also write its files (images) into the run directory.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lightning_fabric.utilities.rank_zero import rank_zero_only
from pytorch_lightning.loggers import WandbLogger as _WandbLogger

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.wandb.ai"
QUIET_MODES = ("offline", "dryrun", "disabled")


def run_id_for(run_dir: str | Path) -> str:
    """A W&B run id (<= 64 of [A-Za-z0-9_-]) fixed by the absolute run directory."""
    path = Path(run_dir).resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{path.parent.name}-{path.name}").strip("-")
    return f"{readable[:53]}-{digest}"


def server_reachable(url: str, timeout_s: float) -> bool:
    """True when ``url`` answers an HTTP request (any status) within ``timeout_s`` seconds.

    Runs in a daemon thread so that a stalled DNS lookup cannot block past the timeout;
    proxies from the environment are honoured as W&B itself would.
    """
    answered: list[bool] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(url, timeout=timeout_s).close()
            answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)
        except (OSError, ValueError):
            answered.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    return bool(answered and answered[0])


class WandbLogger(_WandbLogger):
    """Lightning's ``WandbLogger`` with a job-derived run id and the offline fallback.

    Args:
        save_dir: the run directory; W&B files go to ``<save_dir>/wandb/``.
        id: W&B run id (None: ``WANDB_RUN_ID`` or ``run_id_for(save_dir)``).
        offline: log offline from the start (upload later with ``wandb sync``).
        connect_timeout_s: seconds to wait for the W&B server before falling back to offline.
        **kwargs: the rest of ``pytorch_lightning.loggers.WandbLogger`` / ``wandb.init``
            (project, entity, group, tags, job_type, name, log_model, ...).
    """

    def __init__(self, save_dir: str, id: str | None = None, offline: bool = False, connect_timeout_s: float = 5.0,
                 **kwargs: Any) -> None:
        mode = str(kwargs.get("mode") or os.environ.get("WANDB_MODE", "online")).lower()
        if not offline and mode not in QUIET_MODES and rank_zero_only.rank == 0:  # only rank 0 logs
            url = os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)
            if not server_reachable(url, connect_timeout_s):
                log.warning("W&B server %s did not answer within %.0f s: logging offline to %s/wandb/; upload "
                            "later with `wandb sync %s/wandb/offline-run-*`", url, connect_timeout_s, save_dir,
                            save_dir)
                kwargs["mode"] = "offline"
        run_id = id or os.environ.get("WANDB_RUN_ID") or run_id_for(save_dir)  # a sweep agent sets WANDB_RUN_ID
        os.environ["WANDB_DIR"] = str(save_dir)  # where ddp_spawn workers, attached to this run, write its files
        super().__init__(save_dir=save_dir, id=run_id, offline=offline, **kwargs)
