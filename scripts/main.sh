#!/usr/bin/env bash
# Sets up, builds and runs Labyrinth's main job: a test guest with an lnic fed by pktgen,
# measured for 10 s by `labyrinth latency` (table on stdout, JSON and SVG plot in build/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec build/labyrinth latency --config configs/lnic_latency.json --seconds 10 \
  --json build/latency.json --plot build/latency.svg --serial-out build/latency-guest.log "$@"
