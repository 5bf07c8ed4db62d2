"""Caffe's GoogLeNet on ImageNet with SparkNet, the paper's settings by default.

    python repro/googlenet.py --train IMAGENET/train --val IMAGENET/val [--workers 5] [--tau 50]

The same as `sparknet repro googlenet` (pysparknet/repro/); --help lists every flag.
REPRODUCTION.md has the results and the full-size commands.
"""
import sys

from pysparknet.cli import main

if __name__ == "__main__":
    sys.exit(main(["repro", "googlenet", *sys.argv[1:]]))
