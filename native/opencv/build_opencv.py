#!/usr/bin/env python3
"""Build the minimal OpenCV a vendored wheel links, cached by source hash + options.

Debian's libopencv-imgcodecs406 links GDAL, GDCM, OpenEXR, TIFF and more (over
200 MB once auditwheel vendors them with their own dependencies). Image
decoding needs none of that: this builds core, imgproc, imgcodecs (JPEG through
libjpeg-turbo, PNG through libpng, OpenCV's built-in PNM/BMP/HDR/Sun raster) and
highgui (which Caffe's CMake asks for; no GUI backend) from Debian's own source
package with Debian's x86-64 CPU baseline, so the pixels are those of the
default build. scripts/build_wheel.sh points Caffe's and the shim's CMake at it
(OpenCV_DIR). Run it by hand to see; it prints the install prefix on stdout.

Layout of the cache ($PYSPARKNET_CACHE_DIR, default ~/.cache/pysparknet):
    opencv-<version>-minimal-<key>/
        src/ build/ install/   as for Caffe (native/caffe/build_caffe.py)
        BUILD.json             written last: its presence means the build is complete
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "caffe"))
from build_caffe import apply_patch, cache_root, extract, fetch, log, run_logged  # noqa: E402

SOURCE_JSON = HERE / "source.json"
MODULES = "core,imgproc,imgcodecs,highgui"
# Everything that would add a dependency beyond libjpeg, libpng and zlib.
WITHOUT = ("TIFF", "WEBP", "OPENJPEG", "JASPER", "OPENEXR", "GDAL", "GDCM", "GTK", "QT",
           "OPENGL", "VTK", "FFMPEG", "GSTREAMER", "V4L", "1394", "GPHOTO2", "OPENCL", "VA",
           "VA_INTEL", "IPP", "TBB", "OPENMP", "EIGEN", "LAPACK", "ITT", "PROTOBUF", "ADE",
           "CAROTENE", "QUIRC", "CUDA", "OPENVX")
OPTIONS = [
    "-DCMAKE_BUILD_TYPE=Release",
    # Debian's CXXFLAGS replace OpenCV's -O3 with -O2; its amd64 baseline is SSE2
    # (newer instruction sets are dispatched at run time, as there).
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2", "-DCMAKE_C_FLAGS_RELEASE=-O2",
    "-DCPU_BASELINE=SSE2", "-DCPU_BASELINE_DISABLE=SSE3",
    f"-DBUILD_LIST={MODULES}", "-DBUILD_SHARED_LIBS=ON",
    "-DBUILD_TESTS=OFF", "-DBUILD_PERF_TESTS=OFF", "-DBUILD_EXAMPLES=OFF", "-DBUILD_DOCS=OFF",
    "-DBUILD_opencv_apps=OFF", "-DBUILD_JAVA=OFF", "-DBUILD_opencv_python2=OFF",
    "-DBUILD_opencv_python3=OFF", "-DBUILD_JPEG=OFF", "-DBUILD_PNG=OFF", "-DBUILD_ZLIB=OFF",
    "-DWITH_JPEG=ON", "-DWITH_PNG=ON", *(f"-DWITH_{name}=OFF" for name in WITHOUT),
    "-DENABLE_PRECOMPILED_HEADERS=OFF", "-DOPENCV_DOWNLOAD_TRIES_LIST=",
    "-DOPENCV_GENERATE_PKGCONFIG=OFF", "-DBUILD_INFO_SKIP_TIMESTAMP=ON",
    "-DCMAKE_INSTALL_LIBDIR=lib", "-DCMAKE_INSTALL_RPATH=$ORIGIN",
]


def build_key(source: dict) -> str:
    """Everything that changes the built bits: sources, patches, options, this script."""
    digest = hashlib.sha256()
    for entry in ("orig", "debian"):
        digest.update(source[entry]["sha256"].encode())
    digest.update("\n".join(source["debian_patches"] + OPTIONS).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def prepare_source(source: dict, downloads: Path, src: Path) -> None:
    orig = fetch(source["orig"], source, downloads)
    debian = fetch(source["debian"], source, downloads)
    unpacked = src.with_name("src.unpacking")
    for stale in (src, unpacked):
        if stale.exists():
            shutil.rmtree(stale)
    unpacked.mkdir(parents=True)
    with tarfile.open(orig) as tar:  # one top-level folder, opencv-<version>
        extract(tar, unpacked)
    top, = unpacked.iterdir()
    top.rename(src)
    unpacked.rmdir()
    with tarfile.open(debian) as tar:
        extract(tar, src)
    for name in source["debian_patches"]:
        apply_patch(src, src / "debian/patches" / name)


def build(root: Path, source: dict, jobs: int) -> None:
    src, build_dir, install = root / "src", root / "build", root / "install"
    downloads = root.parent / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    started = time.time()
    prepare_source(source, downloads, src)
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir()
    logfile = build_dir / "build.log"
    log(f"configuring and building a minimal OpenCV ({MODULES}) in {build_dir} (log: {logfile})")
    run_logged(["cmake", "-G", "Ninja", str(src), f"-DCMAKE_INSTALL_PREFIX={install}",
                *OPTIONS], build_dir, logfile)
    run_logged(["cmake", "--build", ".", "--parallel", str(jobs)], build_dir, logfile)
    run_logged(["cmake", "--install", "."], build_dir, logfile)
    shutil.rmtree(src)  # 500 MB of sources no later step reads
    log(f"OpenCV built in {time.time() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rebuild", action="store_true", help="ignore a cached build")
    args = parser.parse_args()

    source = json.loads(SOURCE_JSON.read_text())
    key = build_key(source)
    root = cache_root() / f"opencv-{source['version']}-minimal-{key}"
    root.mkdir(parents=True, exist_ok=True)
    marker = root / "BUILD.json"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per key; others wait and reuse
        if args.rebuild and marker.exists():
            marker.unlink()
        if marker.exists():
            log(f"reusing cached OpenCV build {root}")
        else:
            build(root, source, args.jobs)
            info = {"version": source["version"], "key": key, "modules": MODULES,
                    "options": OPTIONS,
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            tmp = marker.with_suffix(".tmp")
            tmp.write_text(json.dumps(info, indent=2))
            os.replace(tmp, marker)
    print(root / "install")


if __name__ == "__main__":
    main()
