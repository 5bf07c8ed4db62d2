"""Where this installation's Caffe build and its command-line tools are."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from . import _cuda_libs, _native

TOOL_NAMES = ("caffe", "convert_imageset", "compute_image_mean", "convert_mnist_data",
              "extract_features", "upgrade_net_proto_text", "upgrade_net_proto_binary",
              "upgrade_solver_proto_text")


def caffe_tools() -> dict[str, Path]:
    """Caffe's own tools, built from the same source and options as the shim."""
    bindir = _native.CAFFE_DIR / "bin"
    return {name: bindir / name for name in TOOL_NAMES if (bindir / name).exists()}


def caffe_tool(name: str) -> Path:
    tools = caffe_tools()
    if name not in tools:
        raise FileNotFoundError(f"Caffe tool {name!r} is not in this build "
                                f"({_native.CAFFE_DIR / 'bin'}); have {sorted(tools)}")
    return tools[name]


def build_info() -> dict:
    """The Caffe build: version, options, cache key, source tree, library, tools."""
    info = json.loads((_native.CAFFE_DIR / "share" / "BUILD.json").read_text())
    info.update({
        "caffe": _native.sn_version().decode(),
        "cuda": bool(_native.sn_has_cuda()),
        "library": str(_native.LIBRARY),
        "tools": {name: str(path) for name, path in caffe_tools().items()},
    })
    return info


def run_tool(name: str, args: list[str], cwd=None) -> str:
    """Run one of Caffe's tools of this build; return its log (glog writes to stderr).

    The tool inherits this process's environment, so OpenBLAS runs as many
    threads there as here (the thread count changes sgemm's rounding).
    """
    env = {**os.environ, "GLOG_logtostderr": "1"}
    if _cuda_libs.is_cuda_build(_native.CAFFE_DIR):
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [*_cuda_libs.library_folders(), *filter(None, [env.get("LD_LIBRARY_PATH")])])
    proc = subprocess.run([str(caffe_tool(name)), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(map(str, args))} failed "
                           f"({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stderr
