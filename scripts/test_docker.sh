#!/usr/bin/env bash
# The container tests: set up (as scripts/test.sh), make sure docker and
# debootstrap are there (Debian's docker.io; dockerd is started by hand when
# none runs), then build the image and run the cluster tests (tests/test_docker.py),
# and build the vendored wheel and install it in a bare container (tests/test_wheel.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
exec .venv/bin/pytest -ra -s -m docker "$@" tests/test_docker.py tests/test_wheel.py
