"""BENCHMARKS.md's container table (the image's size and what takes it), from stored output."""
from __future__ import annotations

from render_tables import header, row, stored, table


@table
def image_size():
    data, src = stored("image_size")
    images = data["rows"]
    # two images: a before and an after, and what changed
    change = ["change MB"] if len(images) == 2 else []

    def cells(sizes: list) -> list:
        diff = [f"{(sizes[1] - sizes[0]) / 1e6:+.0f}"] if change else []
        return [f"{size / 1e6:.0f}" for size in sizes] + diff
    lines = header("what", *(f"{r['label']} MB" for r in images), *change)
    lines.append(row("the image (`docker image inspect`)", *cells([r["bytes"] for r in images])))
    for folder in images[0]["folders"]:
        lines.append(row(folder, *cells([r["folders"][folder] for r in images])))
    biggest = [max(r["layers"], key=lambda layer: layer["bytes"]) for r in images]
    return lines, src + [
        "Folders: `du` of what a container of the image sees (a folder may hold another's; "
        "a file that a later layer deletes still costs its own layer, as the base's apt "
        "lists do). "
        + " ".join(f"{r['label']}: {r['image']}, its biggest layer {b['bytes'] / 1e6:.0f} MB "
                   f"(`{' '.join(b['created_by'].split())[:70] or 'the base image'}`)."
                   for r, b in zip(images, biggest))]
