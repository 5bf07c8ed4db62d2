#!/bin/sh
# The distribution's packages that the built wheel's native libraries load
# (ldd, then dpkg -S), one per line: what the runtime stage installs, on the
# same distribution as the build stage, whatever its release names them.
set -eu
wheel=$1
dir=$(mktemp -d)
python3 -m zipfile -e "$wheel" "$dir"
for lib in "$dir"/pysparknet/_caffe/lib/*.so*; do
  ldd "$lib" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r path; do
  dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true
done | cut -d: -f1 | sort -u | grep -v -e '^libc6$' -e '^libgcc-s1$' -e '^libstdc++6$'
rm -rf "$dir"
