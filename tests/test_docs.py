"""The API reference site (mkdocs.yml, docs/): it builds with warnings as errors, and
every public name of pysparknet, pysparknet.spark and pysparknet.ml (their __all__)
is on its package's page with each of its parameters."""
from __future__ import annotations

import html
import importlib
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pysparknet", "pysparknet.spark", "pysparknet.ml")
# The submodules users import, each with a page of its own.
SUBMODULES = ("net", "netparams", "zoo", "data", "weights", "finetune", "predict")
# What `pip install .[docs]` brings (pyproject.toml), by import name.
DOCS_MODULES = ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    missing = [m for m in DOCS_MODULES if importlib.util.find_spec(m.split(".")[0]) is None
               or importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the docs build needs {', '.join(missing)}: pip install '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    # No -q: it raises the log level to ERROR, so strict mode never sees a warning
    # (griffe's on a docstring, say) and the build passes despite it.
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                          "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    return out


def page(site: Path, module: str) -> str:
    path = site / "api" / module / "index.html"
    assert path.is_file(), f"no API page for {module}"
    return path.read_text()


def section(text: str, anchor: str) -> str:
    """The rendered object `anchor` (its heading id) up to the next object that is not
    one of its members, as plain text."""
    start = text.find(f'id="{anchor}"')
    assert start >= 0, f"{anchor} is not on its page"
    for match in re.finditer(r'id="(pysparknet[\w.]*)"', text[start + 1:]):
        if not match.group(1).startswith(anchor + "."):
            text = text[:start + 1 + match.start()]
            break
    return html.unescape(re.sub(r"<[^>]+>", "", text[start:]))


def own_parameters(obj) -> list[str]:
    """The parameters a reader calls `obj` with, when pysparknet defines them (an
    exception's inherited (*args, **kwargs) is Python's, not documented here)."""
    target = obj
    if inspect.isclass(obj):
        init = next((c.__dict__["__init__"] for c in obj.__mro__ if "__init__" in c.__dict__),
                    None)
        defined_in = getattr(inspect.unwrap(init), "__module__", None) if init else None
        if not (defined_in or "").startswith("pysparknet") and not _is_dataclass(obj):
            return []
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [p for p in signature.parameters if p not in ("self", "cls")]


def _is_dataclass(obj) -> bool:
    return "__dataclass_fields__" in obj.__dict__


def own_methods(cls) -> dict:
    """The public methods a class defines itself (the site shows no inherited ones:
    pyspark's, or the helpers SparkNetClassifier and SparkNetModel share)."""
    methods = {}
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            methods[name] = member.__func__
        elif inspect.isfunction(member):
            methods[name] = member
    return methods


def lacking(text: str, anchor: str, obj) -> list[str]:
    """What of `obj` (its parameters; a class's methods and theirs) the page lacks."""
    body = section(text, anchor)
    missing = [f"{anchor}({p})" for p in own_parameters(obj)
               if not re.search(rf"\b{re.escape(p)}\b", body)]
    if inspect.isclass(obj):
        for name, method in own_methods(obj).items():
            if f'id="{anchor}.{name}"' not in text:
                missing.append(f"{anchor}.{name}")
            else:
                missing += lacking(text, f"{anchor}.{name}", method)
    return missing


def test_site_has_a_page_per_package_and_submodule(site):
    for module in PACKAGES + tuple(f"pysparknet.{m}" for m in SUBMODULES):
        page(site, module)
    for guide in ("using", "spark", "data", "streaming", "spark-ml", "tracking", "REPRODUCTION",
                  "BENCHMARKS", "examples"):
        assert (site / guide / "index.html").is_file(), f"no guide page {guide}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_documented_with_its_parameters(site, package):
    module = importlib.import_module(package)
    text = page(site, package)
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        # The name where the package exports it, or where it is defined (build_info,
        # a function that shares its submodule's name, is documented as the latter).
        anchors = [f"{package}.{name}", f"{getattr(obj, '__module__', package)}.{name}"]
        anchor = next((a for a in anchors if f'id="{a}"' in text), None)
        if anchor is None:
            missing.append(name)
            continue
        missing += lacking(text, anchor, obj)
    assert not missing, f"{package}'s page lacks {missing}"
