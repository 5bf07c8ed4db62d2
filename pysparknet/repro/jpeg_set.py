"""A small JPEG set in ImageNet's folder layout, for the AlexNet/GoogLeNet runs' tests.

train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, from the real ImageNet photos that
PyPI's foolbox==3.3.4 ships (foolbox/data/imagenet_NN_CLASSID.jpg) and the
wnids of timm's imagenet_synsets.txt (line i = class i), both installed with
`pip install --no-deps --target` into a cache folder and read as files (never
imported: they need torch). Each class is filled out with Pillow-made variants
of its photo (random crops, flips, brightness), re-encoded as JPEG; the val
images are other variants of the same photos. It exercises the real nets and
the real input path; its accuracy says nothing about ImageNet.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

PACKAGES = ("foolbox==3.3.4", "timm==1.0.31")
INSTALL_TIMEOUT_S = 300
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / \
    "pysparknet" / "repro-packages"


def _package_dir(name: str, target: Path):
    spec = importlib.machinery.PathFinder.find_spec(name, [str(target)])
    return None if spec is None else Path(spec.origin).parent


def registry_files(cache: Path = DEFAULT_CACHE) -> tuple[list[Path], list[str]]:
    """(foolbox's ImageNet photos, timm's wnids), installing the wheels if needed."""
    cache = Path(cache)
    if _package_dir("foolbox", cache) is None or _package_dir("timm", cache) is None:
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                               "--target", str(cache), *PACKAGES], capture_output=True,
                              text=True, timeout=INSTALL_TIMEOUT_S)
        if done.returncode:
            raise RuntimeError(f"pip could not install {' '.join(PACKAGES)} into {cache}: "
                               f"{done.stderr.strip()[-500:]}")
        importlib.invalidate_caches()  # the finders cached the folder before the install
    photos = sorted((_package_dir("foolbox", cache) / "data").glob("imagenet_*.jpg"))
    synsets = _package_dir("timm", cache) / "data" / "_info" / "imagenet_synsets.txt"
    if not photos or not synsets.is_file():
        raise RuntimeError(f"{cache}: no foolbox ImageNet photos or timm synsets found")
    return photos, synsets.read_text().split()


def _variant(image, rng: np.random.Generator):
    """A random crop (60-100% of each side), maybe mirrored, brightness 0.7-1.3."""
    from PIL import ImageEnhance, ImageOps

    w, h = image.size
    cw, ch = (int(s * rng.uniform(0.6, 1.0)) for s in (w, h))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = image.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    return ImageEnhance.Brightness(out).enhance(float(rng.uniform(0.7, 1.3)))


def build(root, train_per_class: int = 6, val_per_class: int = 2, size: int = 256,
          cache: Path = DEFAULT_CACHE, seed: int = 0) -> list[str]:
    """Write root/train and root/val; returns the class wnids, in label order."""
    from PIL import Image

    photos, wnids = registry_files(cache)
    rng = np.random.default_rng(seed)
    by_class = {}
    for photo in photos:  # imagenet_NN_CLASSID.jpg
        found = re.fullmatch(r"imagenet_\d+_(\d+)\.jpg", photo.name)
        if found:
            by_class.setdefault(wnids[int(found.group(1))], []).append(photo)
    for wnid, files in sorted(by_class.items()):
        sources = [Image.open(f).convert("RGB") for f in files]
        for split, count in (("train", train_per_class), ("val", val_per_class)):
            folder = Path(root) / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = _variant(sources[i % len(sources)], rng).resize((size, size))
                image.save(folder / f"{wnid}_{split}_{i}.JPEG", quality=90)
    return sorted(by_class)
