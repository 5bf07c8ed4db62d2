"""The CUDA build's plumbing that runs without a GPU: finding PyPI's nvidia-*
wheels at build time, the folder FindCUDA gets, and finding them again at run
time. (The GPU checks themselves: scripts/gpu_check.sh on a GPU host.)"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pysparknet import _cuda_libs
from pysparknet._native import CAFFE_DIR

REPO = Path(__file__).resolve().parents[1]


def build_caffe_module():
    spec = importlib.util.spec_from_file_location("build_caffe",
                                                  REPO / "native/caffe/build_caffe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_wheels(site: Path, cudnn: bool = True) -> Path:
    """The layout nvidia-cublas, -curand and -cudnn-cu13 install (versioned names only)."""
    cu13 = site / "nvidia/cu13"
    (cu13 / "lib").mkdir(parents=True)
    (cu13 / "include").mkdir()
    for name in ("libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libcudart.so.13"):
        (cu13 / "lib" / name).write_bytes(b"")
    for name in ("cublas_v2.h", "cublas_api.h", "curand.h", "cuda_runtime.h"):
        (cu13 / "include" / name).write_text("")
    if cudnn:
        (site / "nvidia/cudnn/lib").mkdir(parents=True)
        (site / "nvidia/cudnn/include").mkdir()
        (site / "nvidia/cudnn/lib/libcudnn.so.9").write_bytes(b"")
    return site


def test_the_build_finds_the_wheels_and_gives_findcuda_unversioned_names(tmp_path, monkeypatch):
    build = build_caffe_module()
    site = fake_wheels(tmp_path / "site")
    monkeypatch.setenv("PYSPARKNET_CUDA_SITE", str(site))
    wheels = build.cuda_wheels()
    assert wheels["cublas"] == site / "nvidia/cu13/lib/libcublas.so.13"
    assert wheels["cudnn_include"] == site / "nvidia/cudnn/include"
    folder = build.cuda_library_folder(tmp_path / "cuda", wheels)
    assert (folder / "lib/libcublas.so").resolve() == wheels["cublas"].resolve()
    assert (folder / "lib/libcurand.so").resolve() == wheels["curand"].resolve()
    # cuBLAS's and cuRAND's headers only: the wheel's newer CUDA runtime headers
    # must not shadow nvcc's own
    assert sorted(p.name for p in (folder / "include").iterdir()) == [
        "cublas_api.h", "cublas_v2.h", "curand.h"]


def test_without_the_wheels_the_build_says_what_to_install(tmp_path, monkeypatch):
    build = build_caffe_module()
    monkeypatch.setattr(build, "site_dirs", lambda: [tmp_path])
    with pytest.raises(SystemExit, match="pip install 'nvidia-cublas==13.*'"):
        build.cuda_wheels()


def test_without_cudnn_the_build_goes_on_without_it(tmp_path, monkeypatch):
    build = build_caffe_module()
    monkeypatch.setattr(build, "site_dirs", lambda: [fake_wheels(tmp_path / "site", cudnn=False)])
    monkeypatch.setattr(build, "cache_root", lambda: tmp_path / "cache")
    options = build.cmake_options(True, "80 90")
    assert "-DUSE_CUDNN=OFF" in options and "-DUSE_CUDNN=ON" not in options
    assert "-DCUDA_ARCH_BIN=80 90" in options and "-DCUDA_ARCH_PTX=90" in options
    assert any("nvidia/cu13/lib" in o for o in options if o.startswith("-DCMAKE_INSTALL_RPATH"))


def test_run_time_finds_the_wheels_on_sys_path(tmp_path, monkeypatch):
    site = fake_wheels(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    assert _cuda_libs.find_wheel_library("cu13", "libcublas.so.13") == \
        site / "nvidia/cu13/lib/libcublas.so.13"
    assert str(site / "nvidia/cudnn/lib") in _cuda_libs.library_folders()


def test_a_cpu_build_loads_no_cuda_library():
    if _cuda_libs.is_cuda_build(CAFFE_DIR):
        pytest.skip("this is a CUDA build")
    assert _cuda_libs.preload(CAFFE_DIR) == []
