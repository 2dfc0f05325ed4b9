"""logger=wandb without network: a server that does not answer makes the run log offline within
seconds (never a long hang, even with an API key set), into a W&B run whose id comes from the run
directory, with the run's metrics and sample images."""

import json
import logging
import re
import socket
import time

import pytest

from flowgen.lit.wandb_logger import run_id_for, server_reachable
from flowgen.training import train

SMALL_NICE = ["model.flow.hidden_dim=32", "model.flow.num_hidden_layers=1", "fid=none"]


@pytest.fixture(autouse=True)
def fresh_wandb_service():
    """W&B keeps one service process per Python process, with the settings (server URL) of the
    run that started it: stop it after each test so later tests do not inherit this one's server."""
    yield
    import wandb

    wandb.teardown()


def test_run_id_is_fixed_by_the_run_directory_and_valid_for_wandb(tmp_path):
    a = run_id_for(tmp_path / "logs/train/runs/2026-01-01_00-00-00")
    assert a == run_id_for(tmp_path / "logs/train/runs/2026-01-01_00-00-00")
    assert a != run_id_for(tmp_path / "logs/train/multiruns/x/0")
    assert len(a) <= 64 and all(c.isalnum() or c in "-_" for c in a)


def test_unreachable_or_silent_server_is_detected_within_the_timeout():
    start = time.monotonic()
    assert not server_reachable("http://127.0.0.1:9", timeout_s=2.0)  # connection refused
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        assert not server_reachable(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=1.0)
    assert time.monotonic() - start < 5


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_online_mode_without_server_falls_back_to_offline_with_metrics_and_images(compose, tmp_path, monkeypatch,
                                                                                   caplog):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_SILENT", "true")
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="flowgen.lit.wandb_logger"):
        results = train(compose("debug=default", "logger=wandb", *SMALL_NICE))
    assert time.monotonic() - start < 120
    assert "logging offline" in caplog.text and "wandb sync" in caplog.text
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and runs[0].name.endswith(run_id_for(tmp_path))
    records = next(runs[0].glob("*.wandb")).read_bytes()  # W&B's record log, uploaded by `wandb sync`
    assert logged(records, "test/bpd", results["test/bpd"])
    for key in ("val/bpd", "train/loss", "train/images_per_s"):
        assert logged(records, key), key
    assert list((runs[0] / "files" / "media" / "images").rglob("*.png"))


def logged(records: bytes, key: str, value: float | None = None) -> bool:
    """A history/summary item in W&B's record log: the key, a few framing bytes, then its JSON value
    (``value`` exactly, or any number)."""
    value_pattern = re.escape(json.dumps(value).encode()) if value is not None else rb"-?\d"
    return re.search(re.escape(key.encode()) + rb".{1,4}" + value_pattern, records, re.DOTALL) is not None
