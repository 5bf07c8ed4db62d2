#!/usr/bin/env bash
# Caffe's own gtest suite (test.testbin) against this project's patched Caffe
# build: the cached build tree from native/caffe/build_caffe.py, so the tests
# see exactly the sources, patches and options the wheel ships.
#
#   bash scripts/caffe_tests.sh              CPU build, all (CPU) tests
#   bash scripts/caffe_tests.sh --cuda       CUDA build: builds the tests; runs the
#                                            GPU ones (single and double precision,
#                                            cuDNN's included) where a GPU is
#   bash scripts/caffe_tests.sh [--cuda] -- --gtest_filter='*Convolution*'
#
# Building the tests takes about 9 minutes on 2 cores (CPU); running them 20 s.
set -euo pipefail
cd "$(dirname "$0")/.."
build_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) build_args+=(--cuda); shift ;;
    --) shift; break ;;
    *) echo "usage: caffe_tests.sh [--cuda] [-- gtest arguments]" >&2; exit 2 ;;
  esac
done
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
prefix=$("$python" native/caffe/build_caffe.py "${build_args[@]}")
build="$prefix/../build"
echo "[caffe_tests] building test.testbin in $build"
cmake --build "$build" --target test.testbin --parallel "$(nproc)" >"$build/tests-build.log" 2>&1 || {
  tail -30 "$build/tests-build.log"; exit 1; }
testbin=$(find "$build" -name test.testbin -type f | head -1)
gtest_args=("$@")
if [ ${#build_args[@]} -eq 0 ] && [ ${#gtest_args[@]} -eq 0 ]; then
  gtest_args=(--gtest_filter='-*GPU*')  # as Caffe's own Makefile runs a CPU_ONLY build
elif [ ${#gtest_args[@]} -eq 0 ]; then
  if nvidia-smi >/dev/null 2>&1; then
    # typed tests on the GPU are /2 (float) and /3 (double); the GPU-only cases
    # name it (or are cuDNN's, or the im2col kernels')
    gtest_args=(--gtest_filter='*/2.*:*/3.*:*GPU*:*CuDNN*:*Im2colKernel*')
  else
    echo "[caffe_tests] no GPU here: built $testbin; run its GPU tests on a GPU host"
    exit 0
  fi
fi
echo "[caffe_tests] $testbin ${gtest_args[*]}"
cd "$prefix/../src"  # the tests read src/caffe/test/test_data relative to here
"$testbin" "${gtest_args[@]}"
