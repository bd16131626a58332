#!/usr/bin/env bash
# Extracts the pinned kvm-unit-tests archive (../shared/peers/, unmodified upstream, never
# copied into the sources) under a build directory and builds x86 test kernels there.
# Usage: scripts/kvm_unit_tests.sh DIR [TARGET...]   e.g. DIR=build/kvm-unit-tests x86/tsc.flat
# Without targets it builds the whole x86 suite. Prints the source tree's path.
#
# The archive's sha256 is checked against ../shared/peers/README.md's. An existing tree
# from the same archive is reused (make rebuilds only what is missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers="${LABYRINTH_PEERS:-$root/../shared/peers}"
archive="$peers/kvm-unit-tests-1da1819e49fc.tar.gz"
want=ae1c2a734c8d6efed4c2afaacf08008d4bf9e95e00105befc4dc7775ecd819b7
dir="${1:?usage: $0 DIR [TARGET...]}"
shift

[[ -f $archive ]] || { echo "kvm_unit_tests.sh: no $archive" >&2; exit 1; }
tree="$dir/kvm-unit-tests"
if [[ ! -f $tree/.labyrinth-sha256 || $(cat "$tree/.labyrinth-sha256") != "$want" ]]; then
  got="$(sha256sum "$archive" | cut -d' ' -f1)"
  [[ $got == "$want" ]] || { echo "kvm_unit_tests.sh: $archive: sha256 $got, want $want" >&2; exit 1; }
  rm -rf "$tree"
  mkdir -p "$dir"
  tar -xzf "$archive" -C "$dir"
  (cd "$tree" && ./configure --arch=x86_64 >/dev/null)
  echo "$want" >"$tree/.labyrinth-sha256"
fi
make -C "$tree" -j2 -s "$@" >&2
echo "$(cd "$tree" && pwd)"
