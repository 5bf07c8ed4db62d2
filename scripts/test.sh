#!/usr/bin/env bash
# The tests: set up, then run the whole suite against the real Caffe build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pytest -ra "$@" tests
