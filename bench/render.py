"""Render BENCHMARKS.md's (and README.md's) tables from the stored raw results.

    python bench/render.py            # rewrite every table between its markers
    python bench/render.py --check    # exit 1 when a file differs from a fresh render

A table lives between `<!-- table: NAME -->` and `<!-- /table -->`; NAME is one of
render_tables.TABLES, which reads the newest stored record (bench/results/, written
by results_io.record) or a stored raw output, never a typed figure. Every block ends
with the path of the raw output it came from.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

import render_lab_tables  # noqa: F401  (registers the lab's tables)
import render_fault_tables  # noqa: F401  (registers the lab faults tables)
import render_cpu_tables  # noqa: F401  (registers the CPU threads tables)
import render_docker_tables  # noqa: F401  (registers the image size table)
import render_tables

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "BENCHMARKS.md"
README = REPO / "README.md"  # its marked tables only: its other tables are prose
BLOCK = re.compile(r"(<!-- table: ([\w-]+) -->\n)(.*?)(<!-- /table -->)", re.S)
OPEN = re.compile(r"<!-- table: ([\w-]+) -->")


class RenderError(Exception):
    pass


def render_block(name: str) -> str:
    if name not in render_tables.TABLES:
        raise RenderError(f"no table named {name!r} in bench/render_tables.py")
    lines, sources = render_tables.TABLES[name]()
    if not sources:
        raise RenderError(f"table {name!r} has no stored source")
    return "\n".join(lines) + "\n\n" + "\n".join(sources) + "\n"


def render_text(text: str) -> str:
    """The document with every marked table rendered afresh."""
    opened = OPEN.findall(text)
    blocks = BLOCK.findall(text)
    if len(opened) != len(blocks):
        raise RenderError(f"{len(opened)} table markers but {len(blocks)} closed blocks")
    return BLOCK.sub(lambda m: m.group(1) + render_block(m.group(2)) + m.group(4), text)


def stray_rows(text: str) -> list[str]:
    """Table rows with a figure that are not inside a rendered block."""
    outside = BLOCK.sub("", text)
    found = []
    for line in outside.splitlines():
        row = line.strip()
        if row.startswith("|") and not re.fullmatch(r"[|:\- ]+", row) and re.search(r"\d", row):
            found.append(row)
    return found


def check(doc: Path, text: str, fresh: str) -> bool:
    """Whether `doc` is its fresh render (and, but for the README, has no typed figure)."""
    diff = list(difflib.unified_diff(text.splitlines(), fresh.splitlines(), "on disk",
                                     "fresh render", lineterm=""))
    strays = [] if doc.resolve() == README else stray_rows(text)
    for row in strays:
        print(f"a table row with a figure outside the rendered tables: {row}", file=sys.stderr)
    if diff:
        print("\n".join(diff[:60]), file=sys.stderr)
        print(f"{doc} differs from a fresh render: run python bench/render.py",
              file=sys.stderr)
    return not diff and not strays


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    parser.add_argument("--doc", type=Path, action="append",
                        help="the file to render (default: BENCHMARKS.md and README.md)")
    args = parser.parse_args(argv)
    ok = True
    for doc in args.doc or [DOC, README]:
        text = doc.read_text()
        try:
            fresh = render_text(text)
        except (RenderError, LookupError, OSError) as error:
            print(f"render: {doc.name}: {error}", file=sys.stderr)
            return 2
        if args.check:
            ok = check(doc, text, fresh) and ok
        else:
            doc.write_text(fresh)
            print(f"rendered {len(BLOCK.findall(fresh))} tables into {doc}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
