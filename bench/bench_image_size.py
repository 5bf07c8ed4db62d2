"""What takes the space in the container image: its size, its layers and its big folders.

    python bench/bench_image_size.py before=pysparknet:slim-before after=pysparknet:test

Each LABEL=IMAGE is an image already built (scripts/test_docker.sh, or `docker
build` as docker/README.md says); for each it records `docker image inspect`'s
size, `docker history`'s layers (bytes and the step that made each) and `du` of
the folders that hold the most (the venv, Spark's jars, the JVM, the shared
libraries, docs, caches, Python's bytecode and the packages' test folders),
measured inside a container of the image. Raw output:
bench/results/<date>-<machine>/image_size.json (results_io).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import record  # noqa: E402

# label: what `sh` expands inside the image (globs: the Python version and the arch)
FOLDERS = {
    "venv /opt/pysparknet": "/opt/pysparknet",
    "pyspark (in the venv)": "/opt/pysparknet/lib/python3*/site-packages/pyspark",
    "Spark's jars": "/opt/pysparknet/lib/python3*/site-packages/pyspark/jars",
    "JVM /usr/lib/jvm": "/usr/lib/jvm",
    "shared libraries /usr/lib/*-linux-gnu": "/usr/lib/*-linux-gnu",
    "Python's own /usr/lib/python3.*": "/usr/lib/python3.*",
    "/usr/share": "/usr/share",
    "/usr/share/doc": "/usr/share/doc",
    "/usr/share/man": "/usr/share/man",
    "/usr/share/locale": "/usr/share/locale",
    "apt lists and caches": "/var/lib/apt/lists /var/cache/apt",
    "root's and sparknet's caches": "/root/.cache /home/sparknet/.cache",
}
# Folders found by name, summed: bytecode, and the packages' own tests.
FOUND = {"__pycache__ (all)": "-type d -name __pycache__",
         "tests folders in the venv": "-path '/opt/*/site-packages/*' -type d -name tests"}
DEADLINE_S = 600  # a du over the image's files takes seconds


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True,
                          timeout=DEADLINE_S)
    if done.returncode:
        raise RuntimeError(f"docker {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def layers(image: str) -> list[dict]:
    """The image's layers, newest first: bytes and the Dockerfile step that made each."""
    out = docker("history", "--no-trunc", "--human=false", "--format",
                 "{{.Size}}\t{{.CreatedBy}}", image)
    return [{"bytes": int(size), "created_by": step}
            for size, step in (line.split("\t", 1) for line in out.splitlines())]


def folders(image: str) -> dict[str, int]:
    """Bytes (du's kB x 1024) of each of FOLDERS and FOUND inside a container of `image`;
    a folder the image lacks counts 0."""
    script = [f"echo \"$(du -skcx {paths} 2>/dev/null | tail -1 | cut -f1)\""
              for paths in FOLDERS.values()]
    script += [f"echo \"$(find / -xdev {test} -prune -print0 | du -skc --files0-from=- "
               "2>/dev/null | tail -1 | cut -f1)\"" for test in FOUND.values()]
    out = docker("run", "--rm", "--user", "0", "--network", "none", "--entrypoint", "sh",
                 image, "-c", "\n".join(script))
    sizes = [int(kb or 0) * 1024 for kb in out.split()]
    return dict(zip([*FOLDERS, *FOUND], sizes, strict=True))


def measure(label: str, image: str) -> dict:
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image))
    image_id = docker("image", "inspect", "-f", "{{.Id}}", image).strip()
    return {"label": label, "image": image, "id": image_id, "bytes": size,
            "folders": folders(image), "layers": layers(image)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", metavar="LABEL=IMAGE")
    args = parser.parse_args(argv)
    rows = []
    for spec in args.images:
        label, sep, image = spec.partition("=")
        if not sep or not image:
            parser.error(f"{spec!r}: give LABEL=IMAGE, e.g. after=pysparknet:test")
        rows.append(measure(label, image))
        print(f"{label} {image}: {rows[-1]['bytes'] / 1e6:.0f} MB", flush=True)
        for name, size in rows[-1]["folders"].items():
            print(f"  {name}: {size / 1e6:.1f} MB")
    record("image_size", rows=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
