#!/usr/bin/env bash
# Sets up, builds and runs Labyrinth's main job: a test guest with an lnic fed by pktgen,
# measured for 10 s by `labyrinth latency` (table on stdout, JSON and SVG plot in build/).
# Runs natively where /dev/kvm boots a guest, inside the test VM (scripts/vm.sh) where it
# does not, or always with LABYRINTH_TEST_VM=1; one line says which, and the report
# names the host kind beside its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
source scripts/kvm_env.sh
kvm_decide build/labyrinth
kvm_run build/labyrinth latency --config configs/lnic_latency.json --seconds 10 \
  --json build/latency.json --plot build/latency.svg --serial-out build/latency-guest.log "$@"
