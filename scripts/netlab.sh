#!/usr/bin/env bash
# A network lab on one machine (scripts/netlab.py): network namespaces for a driver
# host, a Spark master host and K worker hosts, joined by shaped veth links to a bridge.
#   netlab.sh up K [RATE_MBIT] [--spark]   build one (prints its tag, hosts, addresses)
#   netlab.sh down [TAG | --all]           remove the labs `up` made (or TAG, or every one)
#   netlab.sh status                       list the labs on this machine
# Needs root, iproute2 (ip, tc) and nftables (nft, for cuts and loss).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3
exec "$python" "$root/scripts/netlab.py" "$@"
