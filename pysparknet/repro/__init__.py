"""Reproducing SparkNet's experiments (Moritz et al., ICLR 2016): the model-zoo
ImageNet runs, the tau/K study and the speedup model. REPRODUCTION.md has the
results; `sparknet repro NAME --help` the commands."""
