#!/usr/bin/env bash
# The container tests: set up (as scripts/test.sh), then scripts/docker_setup.sh
# (docker.io with a running dockerd, debootstrap, Compose v2 as `docker compose`),
# then build the image and run the cluster tests (tests/test_docker.py),
# and build the vendored wheel and install it in a bare container (tests/test_wheel.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/docker_setup.sh
exec .venv/bin/pytest -ra -s -m docker "$@" tests/test_docker.py tests/test_wheel.py
