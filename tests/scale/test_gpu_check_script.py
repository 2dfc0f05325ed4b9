"""scripts/gpu_check.py dry-runs on the CPU: every option trains, evaluation stays float32-exact."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_script_dry_run_on_cpu_reports_every_option(tmp_path):
    out = tmp_path / "throughput.json"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--device", "cpu", "--small", "--steps", "1",
                    "--warmup", "1", "--batch", "2", "--compile-backend", "eager", "--models", "glow", "cfm_cifar10",
                    "--out", str(out)], check=True, cwd=ROOT, timeout=600)
    report = json.loads(out.read_text())
    for name in ("glow", "cfm_cifar10"):
        assert set(report[name]) >= {"fp32", "bf16", "bf16+channels_last", "bf16+channels_last+compile"}
        assert all(report[name][k]["loss_dtype"] == "torch.float32" for k in ("fp32", "bf16"))
    assert max(report["glow"]["eval_max_abs_diff_nats"].values()) <= 1e-3
