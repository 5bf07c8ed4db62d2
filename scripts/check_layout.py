#!/usr/bin/env python3
"""The package's shape, measured from its source (ast; every import counts, lazy
ones inside functions too):

- the import graph of pysparknet has no circle;
- no module imports one of a higher layer (LAYERS: arrows point down);
- spark/ stands on at most SPARK_LEVELS levels (a module with no spark/ import
  is level 1; one that imports a level-n module is at least n + 1);
- no file over MAX_FILE_LINES lines, no function over MAX_FUNCTION_LINES.

    python scripts/check_layout.py        # prints the levels; exit 1 on a breach
"""
from __future__ import annotations

import ast
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "pysparknet"
MAX_FILE_LINES, MAX_FUNCTION_LINES, SPARK_LEVELS = 400, 50, 6
# Bottom to top; a module's layer is the first prefix that matches it.
LAYERS = [
    ("errors", "files", "build_info", "_cuda_libs", "_thread_pools", "threads", "_lazy",
     "_native", "_handle", "proto", "prototxt"),
    ("data",),
    ("weights", "net", "netparams", "zoo", "feeds", "outer", "finetune", "predict"),
    ("spark",),
    ("ml", "repro", "cli", "fit_options", "progress", "metrics_file"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set) -> set:
    """The pysparknet modules `path` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name.removeprefix("pysparknet.") for a in node.names
                       if a.name.startswith("pysparknet.")]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base is None:
                continue
            targets = [f"{base}.{a.name}".strip(".") for a in node.names] + [base]
        found |= {t for t in targets if t in modules}
    return found - {name}


def _absolute(node: ast.ImportFrom, package: str):
    if node.level == 0:
        module = node.module or ""
        return module.removeprefix("pysparknet").lstrip(".") if \
            module.startswith("pysparknet") else None
    parts = package.split(".") if package else []
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def layer(name: str) -> int:
    top = name.split(".")[0]
    for index, names in enumerate(LAYERS):
        if top in names or name in names:
            return index
    raise SystemExit(f"check_layout: module {name} has no layer in LAYERS")


def graph() -> dict:
    paths = {module_name(p): p for p in ROOT.rglob("*.py") if "proto" not in p.parts}
    paths.pop("", None)
    modules = set(paths)
    return {name: imports(path, modules) - {""} for name, path in paths.items()}


def breaches(edges: dict) -> list:
    problems = []
    for name, targets in edges.items():
        for target in targets:
            if layer(target) > layer(name):
                problems.append(f"{name} imports {target}, a higher layer")
    for cycle in _cycles(edges):
        problems.append("import circle: " + " -> ".join(cycle))
    return problems


def _cycles(edges: dict) -> list:
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if target.endswith("__init__") or target == node.rpartition(".")[0]:
                continue  # a package's __init__ re-exporting its modules
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"
    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def spark_levels(edges: dict) -> dict:
    spark = {n for n in edges if n.startswith("spark.")}

    @lru_cache(maxsize=None)
    def level(name: str) -> int:
        below = [t for t in edges[name] if t in spark]
        return 1 + max((level(t) for t in below), default=0)
    return {name: level(name) for name in sorted(spark)}


def long_code() -> list:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        if "proto" in path.relative_to(ROOT).parts:
            continue
        text = path.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            problems.append(f"{path.relative_to(ROOT.parent)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    problems.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} "
                                    f"{node.name}: {length} lines")
    return problems


def main() -> int:
    edges = graph()
    levels = spark_levels(edges)
    for name, level in sorted(levels.items(), key=lambda item: (item[1], item[0])):
        print(f"level {level}: {name}")
    problems = breaches(edges) + long_code()
    deepest = max(levels.values())
    if deepest > SPARK_LEVELS:
        problems.append(f"spark/ stands on {deepest} levels (at most {SPARK_LEVELS})")
    for problem in problems:
        print(f"BREACH: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
