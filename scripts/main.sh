#!/usr/bin/env bash
# Sets up, builds and runs Labyrinth's main job: for now the allocator's benchmark report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec build/bench/alloc_bench "$@"
