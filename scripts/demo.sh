#!/usr/bin/env bash
# The main job: set up, then train LeNet on Fashion-MNIST and print test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/sparknet demo "$@"
