#!/usr/bin/env bash
# Builds the pinned kvm-unit-tests suite (x86) under a build directory and prints the
# source tree's path. The one builder of the suite: tests/kvm-unit-tests/run.sh and the
# ctest fixture kvm_unit_tests_build (tests/vmm/CMakeLists.txt) both call it.
#   scripts/kvm_unit_tests.sh [DIR]      DIR default: build/kvm-unit-tests
#
# - The archive: $KVM_UNIT_TESTS_TARBALL, else ../shared/peers/ (unmodified upstream,
#   never copied into the sources, never patched), checked against its sha256.
# - DIR/kvm-unit-tests/ is the tree: ./configure --arch=x86_64 && make -j2 (the log in
#   DIR/build.log). DIR/stamp holds the archive's sha256 once the whole suite is built;
#   while it does, nothing is done again (so a run inside the test VM costs nothing).
# Exit status: 0 built, 2 no archive, a wrong one, or a failed build (one line on stderr).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sha=ae1c2a734c8d6efed4c2afaacf08008d4bf9e95e00105befc4dc7775ecd819b7
suite="${1:-$root/build/kvm-unit-tests}"

if [[ ! -f $suite/stamp || $(cat "$suite/stamp") != "$sha" ]]; then
  tarball="${KVM_UNIT_TESTS_TARBALL:-}"
  if [[ -z $tarball ]]; then
    for t in "$root/../shared/peers/kvm-unit-tests-1da1819e49fc.tar.gz" \
             /work/shared/peers/kvm-unit-tests-1da1819e49fc.tar.gz; do
      [[ -f $t ]] && { tarball=$t; break; }
    done
  fi
  [[ -n $tarball && -f $tarball ]] || {
    echo "$0: the kvm-unit-tests archive is not in ../shared/peers (set KVM_UNIT_TESTS_TARBALL)" >&2
    exit 2
  }
  got=$(sha256sum "$tarball" | cut -d' ' -f1)
  [[ $got == "$sha" ]] || { echo "$0: $tarball: sha256 $got, want $sha" >&2; exit 2; }
  rm -rf "$suite"
  mkdir -p "$suite"
  tar -xzf "$tarball" -C "$suite"
  (cd "$suite/kvm-unit-tests" && ./configure --arch=x86_64 >/dev/null &&
     make -j2 >"$suite/build.log" 2>&1) || {
    echo "$0: building kvm-unit-tests failed (see $suite/build.log)" >&2
    exit 2
  }
  echo "$sha" >"$suite/stamp"
fi
echo "$(cd "$suite/kvm-unit-tests" && pwd)"
