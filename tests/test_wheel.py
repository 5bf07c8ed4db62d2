"""The vendored wheel (scripts/build_wheel.sh) on a host with Python and nothing else.

A container from the bare Debian base image (debootstrap minbase; python3 and
python3-venv from apt, no -dev package, none of Caffe's libraries) installs the
wheel and its Python dependencies from PyPI; ldd finds every library of every
native file; the wheel's minimal OpenCV decodes JPEG and PNG to the very pixels
of the default build's (Debian's) OpenCV; and Net trains LeNet 100 iterations on
Fashion-MNIST. PYSPARKNET_WHEEL=path tests a prebuilt wheel instead of building
one. Skipped, with the reason, where docker cannot run (scripts/test_docker.sh)."""
from __future__ import annotations

import io
import json
import os
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pysparknet.data import decode_image
from pysparknet.data.mnist import FASHION_MNIST_DIR

import docker_cluster
from docker_cluster import ROOT, run
from wheel_check import DECODE_MODES

pytestmark = pytest.mark.docker

ITERATIONS = 100
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # a proxy's CA included
# What a GPU host lacks: none of it may be installed in the container.
CAFFE_LIBRARIES = ("glog", "gflags", "protobuf", "boost", "hdf5", "lmdb", "leveldb",
                   "opencv", "openblas", "snappy")
# What Debian's full imgcodecs would have dragged into the wheel.
NOT_VENDORED = ("gdal", "gdcm", "openexr", "tiff", "webp", "openjp", "dcm", "geos", "poppler")
RESULTS: dict = {}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    prebuilt = os.environ.get("PYSPARKNET_WHEEL")
    if prebuilt:
        return Path(prebuilt).resolve()
    tic = time.monotonic()
    done = run(["bash", ROOT / "scripts" / "build_wheel.sh", tmp_path_factory.mktemp("dist")],
               5400)
    RESULTS["build_wheel_s"] = round(time.monotonic() - tic)
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bare_container(wheel, tmp_path_factory):
    """A running container of the bare base image with the wheel, the check
    script, test images and Fashion-MNIST mounted read-only; /out writable."""
    why_not = docker_cluster.docker_ready()
    if why_not is not None:
        pytest.skip(f"docker cannot run here: {why_not}")
    base = docker_cluster.base_image()
    images = write_test_images(tmp_path_factory.mktemp("images"))
    out = tmp_path_factory.mktemp("out")
    name = f"pysparknet-wheel-{uuid.uuid4().hex[:8]}"
    mounts = {wheel.parent: "/wheel", ROOT / "tests" / "wheel_check.py": "/check/wheel_check.py",
              images: "/images", FASHION_MNIST_DIR: "/usr/share/datasets/fashion-mnist"}
    if HOST_CA_BUNDLE.exists():
        mounts[HOST_CA_BUNDLE] = "/etc/pysparknet-ca.crt"
    args = [f"-v={host}:{inside}:ro" for host, inside in mounts.items()]
    run(["docker", "run", "-d", "--name", name, *args, f"-v={out}:/out", base,
         "sleep", "3600"], 120)
    try:
        yield Container(name, out, images)
    finally:
        run(["docker", "rm", "-f", name], 60, check=False)
        print(f"\nwheel results: {json.dumps(RESULTS)}")


class Container:
    def __init__(self, name: str, out: Path, images: Path):
        self.name, self.out, self.images = name, out, images

    def sh(self, script: str, timeout: float) -> str:
        env = ["-e", "PIP_CERT=/etc/pysparknet-ca.crt"] if HOST_CA_BUNDLE.exists() else []
        return run(["docker", "exec", "-w", "/tmp", *env, self.name, "sh", "-ec", script],
                   timeout).stdout


def write_test_images(folder: Path) -> Path:
    """Photo-like pixels (a gradient with noise) as baseline and progressive
    JPEG, grey JPEG, and PNG with alpha: what Caffe's data paths decode."""
    from PIL import Image

    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 200, 61)[None, :, None] + np.linspace(0, 50, 47)[:, None, None]
    rgb = np.clip(ramp + rng.normal(0, 25, (47, 61, 3)), 0, 255).astype(np.uint8)
    photo = Image.fromarray(rgb)
    photo.save(folder / "photo.jpg", quality=90)
    photo.save(folder / "progressive.jpg", quality=75, progressive=True)
    photo.convert("L").save(folder / "grey.jpg", quality=85)
    photo.convert("RGBA").save(folder / "alpha.png")
    return folder


def test_the_wheel_vendors_only_what_decoding_and_caffe_need(wheel):
    assert "manylinux" in wheel.name, wheel.name
    with zipfile.ZipFile(wheel) as archive:
        vendored = [i for i in archive.infolist()
                    if i.filename.startswith("pysparknet.libs/") and not i.is_dir()]
    names = [Path(i.filename).name.lower() for i in vendored]
    RESULTS.update(wheel=wheel.name, wheel_mb=round(wheel.stat().st_size / 1e6, 1),
                   vendored=len(names))
    assert any(name.startswith("libopencv_imgcodecs") for name in names), names
    assert not [n for n in names if any(lib in n for lib in NOT_VENDORED)], names


def test_installs_and_trains_lenet_in_a_bare_root(wheel, bare_container):
    tic = time.monotonic()
    bare_container.sh("apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install "
                      "-y -q --no-install-recommends python3 python3-venv", 900)
    packages = bare_container.sh("dpkg-query -W -f '${Package}\\n'", 60).split()
    assert not [p for p in packages if p.endswith("-dev")], packages
    assert not [p for p in packages if any(lib in p for lib in CAFFE_LIBRARIES)], packages
    bare_container.sh(f"python3 -m venv /opt/venv && /opt/venv/bin/pip install -q "
                      f"--disable-pip-version-check /wheel/{wheel.name}", 1200)
    RESULTS["install_s"] = round(time.monotonic() - tic)

    native = bare_container.sh(
        "cd /opt/venv/lib/python3*/site-packages && for f in pysparknet/_caffe/lib/* "
        "pysparknet/_caffe/bin/* pysparknet.libs/*; do echo \"== $f\"; ldd \"$f\"; done", 120)
    assert "not found" not in native, native
    assert native.count("== ") >= 10 and "libcaffe" in native, native

    tic = time.monotonic()
    line = bare_container.sh(f"/opt/venv/bin/python /check/wheel_check.py /images /out "
                             f"{ITERATIONS}", 900).strip().splitlines()[-1]
    report = json.loads(line)
    RESULTS.update(check_s=round(time.monotonic() - tic), **report)
    assert report["package"].startswith("/opt/venv/"), report
    assert report["caffe_tool_rc"] == 0 and "caffe version" in report["caffe_tool"], report
    assert report["iterations"] == ITERATIONS
    assert report["last_loss"] < 0.6 * report["first_loss"], report
    assert report["accuracy"] >= 0.6, report  # chance: 0.1


def test_the_minimal_opencv_decodes_the_default_builds_pixels(bare_container):
    """Runs after the training test, whose check script wrote decoded.npz."""
    decoded_path = bare_container.out / "decoded.npz"
    if not decoded_path.exists():
        pytest.fail("the container's check did not run (see the test before)")
    decoded = np.load(io.BytesIO(decoded_path.read_bytes()))
    expected = {f"{path.name}:{mode}": decode_image(path.read_bytes(), color, size)
                for path in sorted(bare_container.images.iterdir())
                for mode, (color, size) in DECODE_MODES.items()}
    assert sorted(decoded.files) == sorted(expected)
    for key, pixels in expected.items():
        assert decoded[key].shape == pixels.shape, key
        assert np.array_equal(decoded[key], pixels), \
            f"{key}: {np.count_nonzero(decoded[key] != pixels)} pixels differ"
