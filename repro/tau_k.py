"""The tau/K study: LeNet on Fashion-MNIST for K in {1,2,4,8} x tau in {1,5,20,50,100}.

    python repro/tau_k.py [--out repro/results]

The same as `sparknet repro tau-k` (pysparknet/repro/); --help lists every flag.
REPRODUCTION.md has the results and the full-size commands.
"""
import sys

from pysparknet.cli import main

if __name__ == "__main__":
    sys.exit(main(["repro", "tau-k", *sys.argv[1:]]))
