#!/usr/bin/env python3
"""Caffe's test binary, packed to run beside an installed vendored wheel.

A GPU host has a driver and Python, not glog, protobuf, boost, HDF5 or OpenCV:
the wheel brings its own copies of those (pysparknet.libs/, renamed by
auditwheel). This takes the test.testbin built in the wheel's own Caffe build
tree, points each library it needs at the wheel's renamed copy (patchelf; the
renames are read off the wheel's libcaffe against the build's), and
packs it with the test data Caffe's tests read from the absolute paths of that
build's source tree (EXAMPLES_SOURCE_DIR, ABS_TEST_DATA_DIR are compiled in).

    python native/caffe/bundle_tests.py BUILD_DIR WHEEL OUT.tar.xz

Unpack with `tar -xJf OUT.tar.xz -C /`; run the binary from its source tree
(`<tree>/src`) with LD_LIBRARY_PATH set to the installed wheel's
pysparknet.libs and pysparknet/_caffe/lib (scripts/gpu_check.sh does).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# What the tests read from the source tree, relative to it.
TEST_DATA = ("src/caffe/test/test_data", "examples/images")


def needed(elf: Path) -> list[str]:
    return subprocess.run(["patchelf", "--print-needed", str(elf)], check=True,
                          capture_output=True, text=True).stdout.split()


def wheel_renames(build: Path, wheel: Path, work: Path) -> dict[str, str]:
    """What auditwheel renamed: libcaffe's needed libraries as built, against
    the same list in the wheel's repaired copy (patchelf keeps the order)."""
    member = "pysparknet/_caffe/lib/libcaffe.so.1.0.0"
    with zipfile.ZipFile(wheel) as archive:
        repaired = Path(archive.extract(member, work))
    built, renamed = needed(build / "lib" / "libcaffe.so.1.0.0"), needed(repaired)
    if len(built) != len(renamed):
        sys.exit(f"bundle_tests: {wheel.name}'s libcaffe needs {len(renamed)} libraries, "
                 f"the build's {len(built)}: not the same Caffe build")
    return {old: new for old, new in zip(built, renamed) if old != new}


def relinked_testbin(testbin: Path, renames: dict[str, str], work: Path) -> Path:
    copy = work / testbin.name
    shutil.copy2(testbin, copy)
    for soname in needed(copy):
        renamed = renames.get(soname)
        if renamed:
            subprocess.run(["patchelf", "--replace-needed", soname, renamed, str(copy)],
                           check=True)
        print(f"  {soname} -> {renamed or '(the system, the CUDA wheels or the wheel itself)'}",
              file=sys.stderr)
    subprocess.run(["patchelf", "--remove-rpath", str(copy)], check=True)
    return copy


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    build, wheel, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), Path(sys.argv[3])
    testbin = build / "test" / "test.testbin"
    source = build.parent / "src"
    if not testbin.is_file():
        sys.exit(f"bundle_tests: no {testbin}: build the test.testbin target first")
    with tempfile.TemporaryDirectory() as work:
        renames = wheel_renames(build, wheel, Path(work))
        relinked = relinked_testbin(testbin, renames, Path(work))
        with tarfile.open(out, "w:xz") as bundle:
            bundle.add(relinked, arcname=str(testbin).lstrip("/"))
            for folder in TEST_DATA:
                bundle.add(source / folder, arcname=str(source / folder).lstrip("/"))
    print(f"[bundle_tests] {out}: {out.stat().st_size / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
