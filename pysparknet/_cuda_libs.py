"""Load a CUDA build's libraries from PyPI's nvidia-* wheels, as torch does.

libcaffe and the shim carry RPATHs to the wheels' folders beside
pysparknet in the same site-packages. When the wheels live elsewhere on
sys.path (a --target install, a second site folder), this loads them first
by full path, so the dynamic loader finds them already in the process.
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path

# Dependency order: cuDNN's dispatcher library loads its engine libraries by
# name, which resolves only once they are in the process.
WHEEL_LIBRARIES = (
    ("cu13", "libcudart.so.13"),
    ("cu13", "libcublasLt.so.13"),
    ("cu13", "libcublas.so.13"),
    ("cu13", "libcurand.so.10"),
    ("cu13", "libnvrtc.so.13"),  # cuDNN's runtime-compiled engines
    ("cudnn", "libcudnn_graph.so.9"),
    ("cudnn", "libcudnn_engines_runtime_compiled.so.9"),
    ("cudnn", "libcudnn_engines_precompiled.so.9"),
    ("cudnn", "libcudnn_heuristic.so.9"),
    ("cudnn", "libcudnn_ops.so.9"),
    ("cudnn", "libcudnn_cnn.so.9"),
    ("cudnn", "libcudnn.so.9"),
)


def is_cuda_build(caffe_dir: Path) -> bool:
    build = caffe_dir / "share" / "BUILD.json"
    return build.exists() and bool(json.loads(build.read_text()).get("cuda"))


def find_wheel_library(folder: str, name: str) -> Path | None:
    for entry in sys.path:
        candidate = Path(entry or ".") / "nvidia" / folder / "lib" / name
        if candidate.exists():
            return candidate
    return None


def library_folders() -> list[str]:
    """The wheels' library folders, for Caffe's tools run as child processes
    (their RPATH covers only wheels in pysparknet's own site folder)."""
    folders = {str(path.parent) for path in
               (find_wheel_library(folder, name) for folder, name in WHEEL_LIBRARIES) if path}
    return sorted(folders)


def preload(caffe_dir: Path) -> list[str]:
    """Load what the wheels provide; return the names no wheel provided."""
    if not is_cuda_build(caffe_dir):
        return []
    missing = []
    for folder, name in WHEEL_LIBRARIES:
        path = find_wheel_library(folder, name)
        if path is None:
            missing.append(name)
            continue
        try:
            ctypes.CDLL(str(path), mode=os.RTLD_NOW | ctypes.RTLD_GLOBAL)
        except OSError:  # an older wheel set; the shim's load says what is missing
            missing.append(name)
    return missing
