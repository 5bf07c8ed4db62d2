#!/usr/bin/env bash
# The GPU checks of a CUDA build, on a GPU host that has a driver and Python
# (no Java, no Spark). Installs the CUDA wheel (--no-deps) into a fresh target
# folder; the nvidia-* CUDA wheels are the interpreter's own (install them with
# pip install "WHEEL[cuda]" where they are missing). Then runs
# bench/gpu_checks.py (CPU/GPU agreement, the GPU
# feed, out-of-memory recovery, LeNet accuracy, a sticky kernel fault),
# bench/bench_zoo_forward_backward.py (Net vs `caffe time` vs PyTorch),
# bench/bench_gpu_conv_batch.py (Caffe's own convolution, batched) and,
# given Caffe's test binary, Caffe's own GPU tests. Writes everything to OUT.
#
#   bash scripts/gpu_check.sh WHEEL [OUT]      (default OUT: gpu-check-<date>)
#
# Environment:
#   GPU_CHECK_SITE       use this already-installed site folder instead of WHEEL
#   GPU_CHECK_LIBS       a folder of shared libraries the wheel does not vendor
#   GPU_CHECK_CAFFE_TESTS  caffe-tests-cuda.tar.xz from `build_wheel.sh --cuda
#                        --caffe-tests`: Caffe's GPU tests of the wheel's own build,
#                        on the wheel's libraries (unpacked at /: the tests read
#                        their data from the build's absolute paths)
#   GPU_CHECK_TESTBIN    or: Caffe's test.testbin of the same build (GPU tests)
#   GPU_CHECK_CAFFE_SRC  and that build's source tree (its tests read test_data)
#   GPU_CHECK_STEPS      which steps run (default: "checks speed tests")
#   GPU_CHECK_TEST_FILTERS  Caffe's test filters, run one after another (default:
#                        cuDNN's layers, then every other GPU test)
#   PYSPARKNET_FASHION_MNIST  Fashion-MNIST's idx folder (the accuracy check)
#   PYTHON               the interpreter (default python3; torch there adds the
#                        PyTorch baselines)
set -uo pipefail
cd "$(dirname "$0")/.."
wheel=${1:?usage: gpu_check.sh WHEEL [OUT]}
out=${2:-gpu-check-$(date +%Y%m%d-%H%M%S)}
python=${PYTHON:-python3}
mkdir -p "$out"
log() { echo "[gpu_check] $*" | tee -a "$out/summary.txt"; }

site=${GPU_CHECK_SITE:-}
if [ -z "$site" ]; then
  site=$(mktemp -d)/site
  # --no-deps for pysparknet's Spark side; the CUDA wheels come with [cuda]
  "$python" -m pip install -q --target "$site" --no-deps "$wheel" || exit 1
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
[ -n "${GPU_CHECK_LIBS:-}" ] && export LD_LIBRARY_PATH="$GPU_CHECK_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$python" -m pip list 2>/dev/null | grep -i -E "^(nvidia-|torch )"
  (cd /tmp && "$python" -c "import json, pysparknet; info = pysparknet.build_info(); print(json.dumps({k: info[k] for k in ('caffe', 'cuda', 'library')}))")
} 2>&1 | tee "$out/machine.txt"

steps=" ${GPU_CHECK_STEPS:-checks speed tests} "
if [[ $steps == *" checks "* ]]; then
  log "checks: agreement, feed, out-of-memory recovery, accuracy, sticky fault"
  timeout "${GPU_CHECK_STEP_TIMEOUT:-1800}" "$python" bench/gpu_checks.py --out "$out/gpu_checks.json" 2>&1 | tee "$out/gpu_checks.log"
fi

if [[ $steps == *" speed "* ]]; then
  log "speed: Net vs caffe time vs PyTorch"
  torch_flag=$("$python" -c "import torch; print('--torch' if torch.cuda.is_available() else '')" 2>/dev/null)
  timeout "${GPU_CHECK_STEP_TIMEOUT:-1800}" "$python" bench/bench_zoo_forward_backward.py --device gpu:0 --nets lenet alexnet googlenet \
    --iterations "${GPU_CHECK_ITERATIONS:-30}" $torch_flag 2>&1 | tee "$out/speed.log"
  log "speed: Caffe's own GPU convolution, per image vs batched"
  timeout "${GPU_CHECK_STEP_TIMEOUT:-1800}" "$python" bench/bench_gpu_conv_batch.py \
    --iterations "${GPU_CHECK_ITERATIONS:-30}" 2>&1 | tee "$out/conv_batch.log"
fi

[[ $steps == *" tests "* ]] || unset GPU_CHECK_CAFFE_TESTS GPU_CHECK_TESTBIN
if [ -n "${GPU_CHECK_CAFFE_TESTS:-}" ]; then
  tar -xJf "$GPU_CHECK_CAFFE_TESTS" -C / || exit 1
  GPU_CHECK_TESTBIN=/$(tar -tJf "$GPU_CHECK_CAFFE_TESTS" | grep 'test\.testbin$')
  GPU_CHECK_CAFFE_SRC=$(dirname "$GPU_CHECK_TESTBIN")/../../src
  export LD_LIBRARY_PATH="$site/pysparknet.libs:$site/pysparknet/_caffe/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ -n "${GPU_CHECK_TESTBIN:-}" ]; then
  # cuDNN's layers first (the ported code), then the rest of the GPU tests;
  # single and double precision alike. The binary finds the CUDA wheels where
  # pysparknet does; Caffe's tests read its source tree's test_data.
  cuda_libs=$(cd /tmp && "$python" -c "from pysparknet import _cuda_libs; print(':'.join(_cuda_libs.library_folders()))")
  # Typed tests run on the GPU as /2 (float) and /3 (double); GPU-only test
  # cases carry GPU (or Im2colKernel) in their names.
  read -r -a filters <<<"${GPU_CHECK_TEST_FILTERS:-*CuDNN* */2.*:*/3.*:*GPU*:*Im2colKernel*:-*CuDNN*}"
  for filter in "${filters[@]}"; do
    name=$(echo "$filter" | tr -dc 'A-Za-z')
    log "Caffe's GPU tests: $filter"
    (cd "${GPU_CHECK_CAFFE_SRC:-.}" && LD_LIBRARY_PATH="$cuda_libs:${LD_LIBRARY_PATH:-}" \
      timeout "${GPU_CHECK_TEST_TIMEOUT:-600}" "$GPU_CHECK_TESTBIN" --gtest_filter="$filter") \
      > "$out/caffe_tests_$name.log" 2>&1
    status=$?
    passed=$(grep -c '^\[       OK \]' "$out/caffe_tests_$name.log")
    failed=$(grep '^\[  FAILED  \] .*\.' "$out/caffe_tests_$name.log" | sort -u)
    log "$filter: exit $status, $passed passed, failed: ${failed:-none}"
    grep -E '^\[==========\] [0-9]+ tests? from .* ran' "$out/caffe_tests_$name.log" | tee -a "$out/summary.txt"
  done
fi
grep -h '"pass"' "$out/gpu_checks.json" >/dev/null 2>&1 && \
  "$python" -c "import json,sys; s=json.load(open(sys.argv[1])); print({k: v.get('pass') for k, v in s.items()})" \
  "$out/gpu_checks.json" | tee -a "$out/summary.txt"
grep -A8 "^| net" "$out/speed.log" >> "$out/summary.txt" 2>/dev/null
log "done: $out"
