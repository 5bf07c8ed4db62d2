#!/bin/sh
# Spark's GPU discovery script (spark.worker.resource.gpu.discoveryScript): the
# GPUs this container sees, as Spark's ResourceInformation JSON.
set -eu
addresses=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed 's/.*/"&"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [$addresses]}"
