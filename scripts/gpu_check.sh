#!/usr/bin/env bash
# GPU checks in a few minutes on one GPU machine (docs/clusters.md): throughput and peak memory of
# fp32 / bf16 networks / channels-last / torch.compile, the precision contract, and DDP through
# train.py: a run with trainer=ddp on every visible GPU, then its checkpoint tested on 1 GPU and
# with DDP, whose test/bpd must agree. Everything goes to $OUT (default logs/gpu_check).
#   bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-logs/gpu_check}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")

echo "== 1. throughput, bf16 networks, channels-last, compile (synthetic 3x32x32 batches)"
$PY scripts/gpu_check.py --out "$OUT/throughput.json"

echo "== 2. DDP on $NGPU GPU(s): train Glow on digits with bf16 networks, then test its checkpoint twice"
COMMON=(debug=default model=glow model.flow.steps=4 fid=none print_config=false "paths.log_dir=$OUT"
        trainer.max_epochs=2 trainer.limit_train_batches=1.0 trainer.limit_val_batches=1.0 trainer.limit_test_batches=1.0
        data.eval_batch_size=64 "~callbacks.rich_progress_bar" trainer.enable_progress_bar=false)
$PY train.py "${COMMON[@]}" trainer=ddp "trainer.devices=$NGPU" run_name=ddp_train callbacks.performance.autocast=bf16
CKPT="$OUT/debug/runs/ddp_train/checkpoints/last.ckpt"
$PY train.py "${COMMON[@]}" trainer=gpu run_name=test_1gpu train=false "ckpt_path=$CKPT"
$PY train.py "${COMMON[@]}" trainer=ddp "trainer.devices=$NGPU" run_name=test_ddp train=false "ckpt_path=$CKPT"
$PY - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
runs = Path(sys.argv[1]) / "debug" / "runs"
train, one, ddp = (json.loads((runs / name / "results.json").read_text()) for name in ("ddp_train", "test_1gpu", "test_ddp"))
print(f"train/images_per_s {train.get('train/images_per_s')}  train/peak_mem_gb {train.get('train/peak_mem_gb')}")
print(f"test/bpd: 1 GPU {one['test/bpd']:.7f}  DDP {ddp['test/bpd']:.7f}")
assert abs(one["test/bpd"] - ddp["test/bpd"]) <= 1e-5 * one["test/bpd"], "DDP test bpd differs from 1 GPU"
print("gpu_check: all checks passed")
PYEOF
