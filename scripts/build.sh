#!/usr/bin/env bash
# Configures and builds one flavour of the tree.
#   scripts/build.sh            -> build/        (g++, RelWithDebInfo, everything)
#   scripts/build.sh asan       -> build-asan/   (clang-19, ASan+UBSan, everything but guests,
#                                                  and the libFuzzer targets in build-asan/fuzz/)
#   scripts/build.sh tsan       -> build-tsan/   (clang-19, TSan, everything but guests)
#   scripts/build.sh fuzz       -> build-asan/fuzz/ only (the libFuzzer targets, see
#                                                  scripts/fuzz.sh; needs no release build)
# Debug information is line tables (-DLABYRINTH_DEBUG_INFO=full in LABYRINTH_CMAKE_ARGS
# for gdb's variables; CMakeLists.txt says what it costs).
# The sanitizer builds run the test guests built by the release build (build/guest):
# the freestanding guests need g++. Build release first.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-release}"
extra=()
[[ -n ${LABYRINTH_CMAKE_ARGS:-} ]] && read -r -a extra <<<"$LABYRINTH_CMAKE_ARGS"
# The ASan+UBSan tree, configured the same for a full build and for the fuzz targets.
configure_asan() {
  CC=clang-19 CXX=clang++-19 cmake -S . -B build-asan -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLABYRINTH_SANITIZE=address -DLABYRINTH_FUZZ=ON \
    -DLABYRINTH_GUEST_DIR="$PWD/build/guest" "${extra[@]}" >/dev/null
}
case "$flavour" in
  release)
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${extra[@]}" >/dev/null
    cmake --build build ;;
  asan|tsan)
    if [[ ! -f build/guest/hello.elf ]]; then
      echo "scripts/build.sh: build the release flavour first (its guests are reused)" >&2
      exit 2
    fi
    if [[ $flavour == asan ]]; then
      configure_asan
    else
      CC=clang-19 CXX=clang++-19 cmake -S . -B build-tsan -G Ninja \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLABYRINTH_SANITIZE=thread \
        -DLABYRINTH_GUEST_DIR="$PWD/build/guest" "${extra[@]}" >/dev/null
    fi
    cmake --build "build-$flavour" ;;
  fuzz)
    configure_asan
    cmake --build build-asan --target labyrinth_fuzz ;;
  *) echo "usage: scripts/build.sh [release|asan|tsan|fuzz]" >&2; exit 2 ;;
esac
