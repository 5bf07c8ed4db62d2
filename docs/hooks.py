"""MkDocs hook: the pictures the included guides show (REPRODUCTION.md's figures,
examples/README.md's plot) live outside docs/; add them to the site at the same
relative paths, so the guides' own links resolve unchanged."""
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
PICTURES = ("repro/results/*.png", "examples/*.png")


def on_files(files, config):
    for pattern in PICTURES:
        for path in sorted(ROOT.glob(pattern)):
            files.append(File(path.relative_to(ROOT).as_posix(), str(ROOT), config["site_dir"],
                              config["use_directory_urls"]))
    return files
