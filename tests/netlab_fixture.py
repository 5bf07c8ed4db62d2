"""The network lab (scripts/netlab.py) as a pytest fixture: `lab`, a module's lab of two
worker hosts at 500 Mbit/s with a Spark master and workers in their namespaces.

    from netlab_fixture import lab  # noqa: F401  (then a test takes `lab`)

Skips, saying why, where the lab cannot be built (not root, no `ip netns`). The lab
is removed in the fixture's finalizer, whatever the tests did to it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import netlab  # noqa: E402
import netlab_links  # noqa: E402

RATE_MBIT = 500


def lab_unavailable() -> str:
    """'' where a lab can be built here, else the reason."""
    return netlab_links.ns_available()


@pytest.fixture(scope="module")
def lab():
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    the_lab = netlab.Lab(k=2, rate_mbit=RATE_MBIT, spark=True)
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()
