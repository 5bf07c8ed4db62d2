#!/usr/bin/env python3
"""Fetch, verify, patch and build BVLC Caffe, cached by source hash + options.

Run by the top-level CMakeLists.txt at configure time (and usable by hand). It
prints the install prefix of a finished build on stdout; everything else goes
to stderr. Standard library only: it runs inside pip's isolated build env.

Layout of the cache ($PYSPARKNET_CACHE_DIR, default ~/.cache/pysparknet):
    downloads/                    verified source tarballs, shared by all builds
    caffe-<version>-<cpu|cuda>-<key>/
        src/        the patched Caffe source tree (zoo prototxts are read here)
        build/      the CMake/ninja build tree and build.log
        install/    headers, libcaffe, the tools, share/caffe/caffe.proto
        BUILD.json  written last: its presence means the build is complete
"""
from __future__ import annotations

import argparse
import fcntl
import glob
import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_JSON = HERE / "source.json"
PATCH_DIR = HERE.parent / "patches"
TOOLS = ("caffe", "convert_imageset", "compute_image_mean", "convert_mnist_data",
         "extract_features", "upgrade_net_proto_text", "upgrade_net_proto_binary",
         "upgrade_solver_proto_text")


def log(msg: str) -> None:
    print(f"[build_caffe] {msg}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_root() -> Path:
    env = os.environ.get("PYSPARKNET_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pysparknet"


def cuda_toolkit() -> Path:
    """The CUDA toolkit whose nvcc compiles Caffe's kernels."""
    candidates = [os.environ.get(v) for v in ("PYSPARKNET_CUDA_HOME", "CUDA_HOME", "CUDA_PATH")]
    candidates += ["/usr/local/cuda", *sorted(glob.glob("/usr/local/cuda-*"), reverse=True)]
    for root in filter(None, candidates):
        if (Path(root) / "bin/nvcc").is_file():
            return Path(root)
    raise SystemExit("a CUDA build needs nvcc: no bin/nvcc under $CUDA_HOME, /usr/local/cuda "
                     "or /usr/local/cuda-*")


def site_dirs() -> list[Path]:
    """Where pip puts packages for the interpreter that runs the build (also
    inside pip's isolated build environment, whose sys.path hides them)."""
    dirs = [os.environ.get("PYSPARKNET_CUDA_SITE"), sysconfig.get_paths()["purelib"],
            sysconfig.get_paths()["platlib"], *site.getsitepackages(), *sys.path]
    return [Path(d) for d in dict.fromkeys(filter(None, dirs))]


def cuda_wheels() -> dict[str, Path]:
    """cuBLAS, cuRAND (and cuDNN, when there) from PyPI's nvidia-* wheels:
    nvidia/cu13/{include,lib} and nvidia/cudnn/{include,lib}, versioned names only."""
    found: dict[str, Path] = {}
    for site_dir in site_dirs():
        cu13, cudnn = site_dir / "nvidia/cu13", site_dir / "nvidia/cudnn"
        if "cublas" not in found and (cu13 / "lib/libcublas.so.13").exists() \
                and (cu13 / "lib/libcurand.so.10").exists():
            found.update(cublas=cu13 / "lib/libcublas.so.13",
                         curand=cu13 / "lib/libcurand.so.10", cu13_include=cu13 / "include")
        if "cudnn" not in found and (cudnn / "lib/libcudnn.so.9").exists():
            found.update(cudnn=cudnn / "lib/libcudnn.so.9", cudnn_include=cudnn / "include")
    if "cublas" not in found:
        raise SystemExit("a CUDA build needs cuBLAS and cuRAND from PyPI: pip install "
                         "'nvidia-cublas==13.*' 'nvidia-curand==10.*' 'nvidia-cudnn-cu13==9.*' "
                         "(README: the CUDA build); searched " + ", ".join(map(str, site_dirs())))
    return found


def relink(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def cuda_library_folder(folder: Path, wheels: dict[str, Path]) -> Path:
    """include/ with just cuBLAS's and cuRAND's headers (the wheel's include/
    also holds a newer CUDA runtime's, which must not shadow nvcc's own) and
    lib/ with the unversioned names FindCUDA looks for (it re-finds the
    libraries itself, ignoring preset paths), beside the versioned ones."""
    (folder / "include").mkdir(parents=True, exist_ok=True)
    (folder / "lib").mkdir(exist_ok=True)
    for header in wheels["cu13_include"].iterdir():
        if header.name.startswith(("cublas", "curand")):
            relink(folder / "include" / header.name, header)
    for name in ("cublas", "curand"):
        relink(folder / "lib" / f"lib{name}.so", wheels[name])
    # and their own dependencies (libcublasLt), which the linker must see
    for library in wheels["cublas"].parent.glob("lib*.so.*"):
        relink(folder / "lib" / library.name, library)
    return folder


def cuda_options(root: Path, cuda_arch: str) -> list[str]:
    wheels = cuda_wheels()
    # one folder per set of wheels: builds from other environments keep theirs
    wheel_set = hashlib.sha256(str(wheels["cublas"]).encode()).hexdigest()[:12]
    libraries = cuda_library_folder(root / "cuda" / wheel_set, wheels)
    real, ptx = cuda_arch.split(), cuda_arch.split()[-1:]
    # The wheel lays out nvidia/cu13/lib and nvidia/cudnn/lib beside
    # pysparknet/_caffe/{lib,bin} in site-packages: libcaffe and the tools find
    # them there without LD_LIBRARY_PATH (as torch's libraries do).
    rpath = ":".join(["$ORIGIN/../lib", "$ORIGIN/../../../nvidia/cu13/lib",
                      "$ORIGIN/../../../nvidia/cudnn/lib"])
    opts = [f"-DCUDA_TOOLKIT_ROOT_DIR={cuda_toolkit()}",
            f"-DCMAKE_LIBRARY_PATH={libraries / 'lib'}",
            f"-DCUDA_NVCC_FLAGS=-I{libraries / 'include'}",
            # CUDA 13 keeps thrust and cub in include/cccl, where only nvcc looks
            f"-DCMAKE_CXX_FLAGS=-isystem {libraries / 'include'} "
            f"-isystem {cuda_toolkit() / 'include/cccl'}",
            "-DCUDA_ARCH_NAME=Manual", f"-DCUDA_ARCH_BIN={' '.join(real)}",
            f"-DCUDA_ARCH_PTX={' '.join(ptx)}", f"-DCMAKE_INSTALL_RPATH={rpath}"]
    if "cudnn" in wheels:
        opts += ["-DUSE_CUDNN=ON", f"-DCUDNN_INCLUDE={wheels['cudnn_include']}",
                 f"-DCUDNN_LIBRARY={wheels['cudnn']}"]
    else:
        log("no nvidia-cudnn-cu13 wheel found: building without cuDNN")
    return opts


def cmake_options(cuda: bool, cuda_arch: str) -> list[str]:
    opts = [
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCPU_ONLY={'OFF' if cuda else 'ON'}",
        "-DUSE_CUDNN=OFF",
        "-DBLAS=Open",
        "-DUSE_OPENCV=ON", "-DUSE_LMDB=ON", "-DUSE_LEVELDB=ON",
        "-DALLOW_LMDB_NOLOCK=OFF",
        "-DBUILD_SHARED_LIBS=ON",
        "-DBUILD_python=OFF", "-DBUILD_python_layer=OFF",
        "-DBUILD_matlab=OFF", "-DBUILD_docs=OFF",
        # The tools find libcaffe next to them wherever the tree is copied
        # (the cache, or pysparknet/_caffe inside the wheel).
        "-DCMAKE_INSTALL_RPATH=$ORIGIN/../lib",
        "-DCMAKE_INSTALL_RPATH_USE_LINK_PATH=OFF",
        "-DCMAKE_INSTALL_LIBDIR=lib",
    ]
    if cuda:  # later -D settings win: these replace USE_CUDNN and the rpath
        opts += cuda_options(cache_root(), cuda_arch)
    return opts


def build_key(source: dict, options: list[str]) -> str:
    """Everything that changes the built bits: sources, patches, options, this script."""
    digest = hashlib.sha256()
    digest.update(source["orig"]["sha256"].encode())
    digest.update(source["debian"]["sha256"].encode())
    for patch in sorted(PATCH_DIR.glob("*.patch")):
        digest.update(patch.name.encode() + patch.read_bytes())
    digest.update("\n".join(options).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract a (checksummed) tarball, refusing paths that leave dest: the "data"
    filter where Python has it (3.11.4+), the same check by hand before."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        if root not in (target, *target.parents) or member.issym() and \
                Path(member.linkname).is_absolute() or member.isdev():
            raise SystemExit(f"refusing {member.name!r} in {tar.name}: outside {dest}")
    tar.extractall(dest)


def fetch(entry: dict, source: dict, downloads: Path) -> Path:
    target = downloads / entry["name"]
    if target.exists() and sha256_of(target) == entry["sha256"]:
        return target
    local_dir = os.environ.get("PYSPARKNET_CAFFE_SOURCE_DIR")
    if local_dir and (Path(local_dir) / entry["name"]).exists():
        shutil.copyfile(Path(local_dir) / entry["name"], target.with_suffix(".part"))
    else:
        mirror = os.environ.get("PYSPARKNET_DEBIAN_MIRROR", source["mirror"]).rstrip("/")
        url = f"{mirror}/{source['pool']}/{entry['name']}"
        log(f"downloading {url}")
        with urllib.request.urlopen(url, timeout=120) as resp, \
                open(target.with_suffix(".part"), "wb") as out:
            shutil.copyfileobj(resp, out)
    got = sha256_of(target.with_suffix(".part"))
    if got != entry["sha256"]:
        target.with_suffix(".part").unlink()
        raise SystemExit(f"checksum mismatch for {entry['name']}: got {got}, "
                         f"expected {entry['sha256']}")
    os.replace(target.with_suffix(".part"), target)
    return target


def apply_patch(src: Path, patch: Path) -> None:
    subprocess.run(["patch", "-p1", "--forward", "--quiet", "-i", str(patch)],
                   cwd=src, check=True)


def prepare_source(source: dict, downloads: Path, src: Path) -> None:
    orig = fetch(source["orig"], source, downloads)
    debian = fetch(source["debian"], source, downloads)
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    with tarfile.open(orig) as tar:  # the orig tarball has no top-level folder
        extract(tar, src)
    with tarfile.open(debian) as tar:
        extract(tar, src)
    series = (src / "debian/patches/series").read_text().split()
    for name in series:
        apply_patch(src, src / "debian/patches" / name)
    for patch in sorted(PATCH_DIR.glob("*.patch")):
        log(f"applying {patch.name}")
        apply_patch(src, patch)


def run_logged(cmd: list[str], cwd: Path, logfile: Path) -> None:
    with open(logfile, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-40:]
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
                         + "\n".join(tail) + f"\n(full log: {logfile})")


def build(root: Path, source: dict, options: list[str], jobs: int) -> None:
    src, build_dir, install = root / "src", root / "build", root / "install"
    downloads = root.parent / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    started = time.time()
    prepare_source(source, downloads, src)
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir()
    logfile = build_dir / "build.log"
    log(f"configuring and building Caffe in {build_dir} (log: {logfile})")
    run_logged(["cmake", "-G", "Ninja", str(src), f"-DCMAKE_INSTALL_PREFIX={install}",
                *options], build_dir, logfile)
    run_logged(["cmake", "--build", ".", "--parallel", str(jobs)], build_dir, logfile)
    run_logged(["cmake", "--install", "."], build_dir, logfile)
    # The tools that live under examples/ are built but not installed upstream.
    bindir = install / "bin"
    for tool in TOOLS:
        if not (bindir / tool).exists():
            found = list(build_dir.glob(f"**/{tool}")) + list(build_dir.glob(f"**/{tool}.bin"))
            found = [p for p in found if p.is_file() and os.access(p, os.X_OK)]
            if found:
                shutil.copy2(found[0], bindir / tool)
    missing = [t for t in ("caffe", "convert_imageset", "compute_image_mean",
                           "convert_mnist_data") if not (bindir / t).exists()]
    if missing:
        raise SystemExit(f"Caffe build finished without tools: {missing}")
    share = install / "share" / "caffe"
    share.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "src/caffe/proto/caffe.proto", share / "caffe.proto")
    log(f"Caffe built in {time.time() - started:.0f} s")


def cuda_include(options: list[str]) -> str:
    """The cuBLAS/cuRAND header folder a CUDA build's nvcc was given ('' for CPU)."""
    flags = [o for o in options if o.startswith("-DCUDA_NVCC_FLAGS=-I")]
    return flags[-1].removeprefix("-DCUDA_NVCC_FLAGS=-I") if flags else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuda", action="store_true", help="build with CUDA (default: CPU only)")
    parser.add_argument("--cuda-arch", default="80 90",
                        help="real architectures of a CUDA build; PTX for the last")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rebuild", action="store_true", help="ignore a cached build")
    args = parser.parse_args()

    source = json.loads(SOURCE_JSON.read_text())
    options = cmake_options(args.cuda, args.cuda_arch)
    key = build_key(source, options)
    flavour = "cuda" if args.cuda else "cpu"
    root = cache_root() / f"caffe-{source['version']}-{flavour}-{key}"
    root.mkdir(parents=True, exist_ok=True)
    marker = root / "BUILD.json"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per key; others wait and reuse
        if args.rebuild and marker.exists():
            marker.unlink()
        if marker.exists():
            log(f"reusing cached Caffe build {root}")
        else:
            build(root, source, options, args.jobs)
            info = {"version": source["version"], "key": key, "cuda": args.cuda,
                    "options": options, "source_dir": str(root / "src"),
                    "cuda_library_include": cuda_include(options),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            tmp = marker.with_suffix(".tmp")
            tmp.write_text(json.dumps(info, indent=2))
            os.replace(tmp, marker)
    print(root / "install")


if __name__ == "__main__":
    main()
