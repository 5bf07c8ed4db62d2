#!/bin/sh
# Every container's entry: Spark's home inside the pip-installed pyspark, and a
# private spark-defaults.conf that turns on Spark's authentication and RPC
# encryption with the cluster's secret (SPARK_SECRET_FILE, made at `up` by the
# compose file's secret service), so the weight exchange's pin and run secret
# ride an encrypted, authenticated Spark. Then the command.
set -eu
SPARK_HOME=$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
SPARK_CONF_DIR=$(mktemp -d)
export SPARK_HOME SPARK_CONF_DIR
if [ -n "${SPARK_SECRET_FILE:-}" ]; then
  if [ ! -s "$SPARK_SECRET_FILE" ]; then
    echo "entrypoint: SPARK_SECRET_FILE=$SPARK_SECRET_FILE is missing or empty" >&2
    exit 2
  fi
  umask 077
  {
    echo "spark.authenticate true"
    echo "spark.authenticate.secret $(cat "$SPARK_SECRET_FILE")"
    echo "spark.network.crypto.enabled true"
  } > "$SPARK_CONF_DIR/spark-defaults.conf"
fi
exec "$@"
