"""SparkNet's speedup model fitted from the tau/K study's results.

    python repro/speedup_model.py [--results repro/results] [--sync-ms 10 100] [--gpu-recorded]

The same as `sparknet repro speedup-model` (pysparknet/repro/); --help lists every flag.
REPRODUCTION.md has the results and the full-size commands.
"""
import sys

from pysparknet.cli import main

if __name__ == "__main__":
    sys.exit(main(["repro", "speedup-model", *sys.argv[1:]]))
