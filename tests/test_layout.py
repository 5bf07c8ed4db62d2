"""The package's shape (scripts/check_layout.py): no import circle, arrows pointing
down, spark/ on at most 6 levels, no file over 400 lines, no function over 50."""
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_layout.py"


def test_the_package_keeps_its_shape():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "level 1: spark.sockets" in result.stdout  # it measured the real tree
