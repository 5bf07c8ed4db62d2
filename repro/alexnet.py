"""Caffe's AlexNet on ImageNet with SparkNet, the paper's settings by default.

    python repro/alexnet.py --train IMAGENET/train --val IMAGENET/val [--workers 5] [--tau 50]

The same as `sparknet repro alexnet` (pysparknet/repro/); --help lists every flag.
REPRODUCTION.md has the results and the full-size commands.
"""
import sys

from pysparknet.cli import main

if __name__ == "__main__":
    sys.exit(main(["repro", "alexnet", *sys.argv[1:]]))
