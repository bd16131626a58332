#!/usr/bin/env bash
# Configures and builds one flavour of the tree.
#   scripts/build.sh            -> build/        (g++, RelWithDebInfo, everything)
#   scripts/build.sh asan       -> build-asan/   (clang-19, ASan+UBSan, everything but guests)
#   scripts/build.sh tsan       -> build-tsan/   (clang-19, TSan, everything but guests)
#   scripts/build.sh fuzz       -> build-fuzz/   (clang-19, libFuzzer + ASan+UBSan: the
#                                                  targets in build-fuzz/fuzz/, see scripts/fuzz.sh)
# The sanitizer builds run the test guests built by the release build (build/guest):
# the freestanding guests need g++. Build release first.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-release}"
case "$flavour" in
  release)
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build ;;
  asan|tsan)
    sanitize=address; [[ $flavour == tsan ]] && sanitize=thread
    if [[ ! -f build/guest/hello.elf ]]; then
      echo "scripts/build.sh: build the release flavour first (its guests are reused)" >&2
      exit 2
    fi
    CC=clang-19 CXX=clang++-19 cmake -S . -B "build-$flavour" -G Ninja \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLABYRINTH_SANITIZE=$sanitize \
      -DLABYRINTH_GUEST_DIR="$PWD/build/guest" >/dev/null
    cmake --build "build-$flavour" ;;
  fuzz)
    CC=clang-19 CXX=clang++-19 cmake -S . -B build-fuzz -G Ninja \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLABYRINTH_FUZZ=ON -DLABYRINTH_BUILD_GUESTS=OFF >/dev/null
    cmake --build build-fuzz --target labyrinth_fuzz ;;
  *) echo "usage: scripts/build.sh [release|asan|tsan|fuzz]" >&2; exit 2 ;;
esac
