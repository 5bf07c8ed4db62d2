#!/bin/sh
# What the runtime image needs none of, out of the installed venv ($1): the
# packages' own test suites (numpy's, matplotlib's: never imported at run time),
# and the jars of the Spark parts a standalone cluster does not load: Hive (its
# metastore, Derby, DataNucleus), Kubernetes and YARN, which Spark's own builds
# leave out unless asked (-Phive, -Pkubernetes, -Pyarn). hive-storage-api stays:
# Spark SQL's ORC reader needs it without Hive.
set -eu
venv=$1
find "$venv" -path '*/site-packages/*' -type d -name tests -prune -exec rm -rf {} +
jars=$(echo "$venv"/lib/python3*/site-packages/pyspark/jars)
[ -d "$jars" ] || { echo "slim-venv.sh: no pyspark/jars under $venv" >&2; exit 1; }
find "$jars" -type f \( -name 'hive-*' ! -name 'hive-storage-api-*' -o -name 'spark-hive*' \
  -o -name 'datanucleus-*' -o -name 'derby*' -o -name 'kubernetes-*' \
  -o -name 'spark-kubernetes*' -o -name 'spark-yarn*' \) -print -delete | wc -l \
  | xargs printf 'slim-venv.sh: %s jars removed\n'
