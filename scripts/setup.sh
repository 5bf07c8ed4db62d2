#!/usr/bin/env bash
# Set up pysparknet on a fresh Debian/Ubuntu machine: system packages, a
# virtual environment in .venv, and `pip install .` (which builds Caffe once,
# cached in ~/.cache/pysparknet, and the native shim). PYSPARKNET_CUDA=ON
# builds for CUDA (with cuDNN) instead: it needs CUDA 13's nvcc, and takes the
# CUDA libraries from PyPI's nvidia-* wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

packages=(build-essential cmake ninja-build pkg-config patch curl ca-certificates
          protobuf-compiler libprotobuf-dev libgoogle-glog-dev libgflags-dev
          libboost-system-dev libboost-thread-dev libboost-filesystem-dev
          libopenblas-dev libopenblas0-openmp liblmdb-dev libleveldb-dev libsnappy-dev libhdf5-dev
          libopencv-dev dataset-fashion-mnist
          iproute2 nftables)  # the network lab (scripts/netlab.py): ip, tc, nft
python3 -m venv --help >/dev/null 2>&1 || packages+=(python3-venv python3-dev)
command -v java >/dev/null 2>&1 || packages+=(default-jre-headless)  # Spark
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Caffe's CPU layers run their loops on OpenMP (patch 0013); OpenBLAS built on
# OpenMP shares those threads, where its pthreads build (Debian's default) would
# spin a second pool on the same cores (bench/bench_cpu_threads.py measures both).
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
for lib in libopenblas.so.0 libblas.so.3 liblapack.so.3; do
  choice=/usr/lib/$arch/openblas-openmp/$lib
  if [ -e "$choice" ] && [ "$(readlink -f "/usr/lib/$arch/$lib")" != "$(readlink -f "$choice")" ]; then
    echo "[setup] the system's $lib: OpenBLAS on OpenMP (update-alternatives)"
    $sudo update-alternatives --set "$lib-$arch" "$choice" >/dev/null
  fi
done

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
extras=test,ml,docs,mlflow  # docs: the site's build, which the tests run; mlflow: tracking's tests
if [ "${PYSPARKNET_CUDA:-OFF}" = ON ]; then
  # The CUDA build finds cuBLAS, cuRAND and cuDNN in PyPI's nvidia-* wheels, so
  # they go in first: the [cuda] extra of pyproject.toml, read from there.
  command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] || {
    echo "[setup] PYSPARKNET_CUDA=ON needs CUDA 13's nvcc (on PATH or /usr/local/cuda)" >&2; exit 1; }
  echo "[setup] installing the CUDA libraries' wheels"
  .venv/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['cuda']))" \
    | xargs .venv/bin/python -m pip install -q
  extras=test,ml,docs,mlflow,cuda
fi
echo "[setup] building pysparknet (Caffe is reused from the cache when present)"
.venv/bin/python -m pip install -q ".[$extras]"
echo "[setup] done in $(( $(date +%s) - start )) s"
