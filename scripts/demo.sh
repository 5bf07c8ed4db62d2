#!/usr/bin/env bash
# The main job: set up, then SparkNet-train Caffe's LeNet on Fashion-MNIST on a
# local Spark cluster of 2 workers (tau=50), printing progress per round and the
# final test accuracy. Extra arguments go to `sparknet train` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/sparknet train --model lenet --data fashion-mnist --workers 2 --tau 50 \
  --rounds 60 --metrics runs/demo-metrics.jsonl "$@"
