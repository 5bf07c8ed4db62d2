"""The exchange model's arithmetic against the figures of the issue that asked for it,
and its command's table."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pysparknet.repro.exchange_model import (ALEXNET_FLOATS, Link, sync_s,
                                             throughput_speedup)


def test_alexnet_over_10_gbe_at_k8():
    link = Link(10.0)
    assert sync_s("driver", 8, ALEXNET_FLOATS, link) == pytest.approx(3.12, abs=0.01)
    assert sync_s("ring", 8, ALEXNET_FLOATS, link) == pytest.approx(0.34, abs=0.01)
    assert sync_s("ring-bfloat16", 8, ALEXNET_FLOATS, link) == pytest.approx(0.17, abs=0.01)
    # the star's speedup saturates; the ring's grows with K
    star = [throughput_speedup(k, 50, 0.024, sync_s("driver", k, ALEXNET_FLOATS, link))
            for k in (8, 16, 64)]
    assert star[-1] < 3 and star == sorted(star)
    ring16 = throughput_speedup(16, 50, 0.024, sync_s("ring", 16, ALEXNET_FLOATS, link))
    assert ring16 > 12


def test_a_bad_exchange_is_named():
    with pytest.raises(ValueError, match="'mesh'"):
        sync_s("mesh", 2, 8, Link(1.0))


def test_the_command_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "pysparknet.cli", "repro", "exchange-model",
                          "--workers", "2", "8"], capture_output=True, text=True, timeout=60,
                         cwd="/")
    assert out.returncode == 0, out.stderr
    assert "| 8 | 3.12, 2.22x | 0.34, 6.23x | 0.17, 7.00x |" in out.stdout
