#!/usr/bin/env bash
# Multi-GPU training on one machine through torchrun (PyTorch DDP under mmengine):
#   tools/dist_train.sh CONFIG NGPUS [train.py options...]
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NGPUS [--work-dir DIR] [--resume] [--amp] [--cfg-options k=v ...]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
PORT=${PORT:-29500}
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."
exec "$PYTHON" -m torch.distributed.run --nproc_per_node="$GPUS" --master_port="$PORT" \
    tools/train.py "$CONFIG" --launcher pytorch "$@"
