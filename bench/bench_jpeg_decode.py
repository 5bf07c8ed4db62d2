"""JPEG decode + resize + crop images/s per core vs. the JPEG library's own decode.

The same files every way, one process, one core (no threads). Baselines: the
JPEG library's own decode of each file to an array and nothing else, through
Pillow (libjpeg-turbo) and through pysparknet's native path without resizing
(OpenCV's imdecode, the decoder Caffe uses). pysparknet's pipeline is
`decode_image(data, color=True, size=(256, 256))` (decode, resize as
convert_imageset does, BGR channels-first) plus the 227x227 centre crop
CaffeNet's TEST phase takes. Files: --count JPEGs of --width x --height
(quality 90) generated from smooth noise, or --folder with real ones.

    python bench/bench_jpeg_decode.py [--count 200] [--folder DIR]
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from results_io import interleave, record, timed  # bench/, beside this script
from PIL import Image

from pysparknet.data import decode_image, encode_image


def generated_jpegs(count, width, height):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    files = []
    for _ in range(count):
        fx, fy = rng.uniform(0.01, 0.1, 2)
        base = np.sin(fx * xx) * np.cos(fy * yy) * 90 + 128
        image = np.clip(base[None] + rng.normal(0, 12, (3, height, width)), 0, 255)
        files.append(encode_image(image.astype(np.uint8), "JPEG", quality=90))
    return files


def library_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def opencv_decode(data: bytes) -> np.ndarray:
    return decode_image(data, color=True)


def pipeline(data: bytes) -> np.ndarray:
    image = decode_image(data, color=True, size=(256, 256))
    top = (256 - 227) // 2
    return np.ascontiguousarray(image[:, top:top + 227, top:top + 227])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--folder", type=Path, help="real JPEGs instead (*.jpg, *.JPEG)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.folder:
        files = [p.read_bytes() for p in sorted(args.folder.rglob("*"))
                 if p.suffix.lower() in (".jpg", ".jpeg")]
        source = f"{len(files)} JPEGs from {args.folder}"
    else:
        files = generated_jpegs(args.count, args.width, args.height)
        source = f"{len(files)} generated {args.width}x{args.height} JPEGs (q90)"
    rate = {"pillow": library_decode, "opencv": opencv_decode, "pysparknet": pipeline}
    samples = interleave({k: (lambda fn=fn: len(files) / timed(lambda: [fn(d) for d in files])())
                          for k, fn in rate.items()}, args.repeat)
    base, opencv, ours = (max(samples[k]) for k in rate)
    record("jpeg_decode", repeats=samples, extra={"source": source, "images": len(files)})
    print(f"\n{source}, one core, best of {args.repeat}, interleaved\n")
    print("| pipeline | images/s | / Pillow decode | / OpenCV decode |")
    print("|---|---:|---:|---:|")
    print(f"| Pillow decode to an RGB array (baseline) | {base:.0f} | 1.00 | "
          f"{base / opencv:.2f} |")
    print(f"| OpenCV decode to a BGR CHW array (baseline) | {opencv:.0f} | {opencv / base:.2f} | "
          f"1.00 |")
    print(f"| pysparknet decode + resize 256x256 + BGR CHW + crop 227 | {ours:.0f} | "
          f"{ours / base:.2f} | {ours / opencv:.2f} |")


if __name__ == "__main__":
    main()
