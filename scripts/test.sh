#!/usr/bin/env bash
# Sets up, builds and runs every test: the full build (g++), then everything again
# under ASan+UBSan and under TSan (clang-19; the sanitizer builds boot the guests the
# g++ build made). Exit status: non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
for symbolizer in /usr/bin/llvm-symbolizer-19 /usr/bin/llvm-symbolizer /usr/bin/llvm-symbolizer-14; do
  if [[ -x $symbolizer ]]; then
    export ASAN_SYMBOLIZER_PATH=$symbolizer
    export TSAN_OPTIONS="$TSAN_OPTIONS:external_symbolizer_path=$symbolizer"
    break
  fi
done

echo "== build (g++) and test"
scripts/build.sh release
ctest --test-dir build --output-on-failure --timeout 600

echo "== clang-format-19 (.clang-format): every C/C++ file"
git ls-files '*.cc' '*.h' '*.c' | xargs clang-format-19 --dry-run --Werror

echo "== clang-tidy-19: allocator, devices, vmm"
scripts/lint.sh allocator devices vmm

echo "== ASan+UBSan (clang-19)"
scripts/build.sh asan
ctest --test-dir build-asan --output-on-failure --timeout 600

echo "== TSan (clang-19)"
scripts/build.sh tsan
ctest --test-dir build-tsan --output-on-failure --timeout 600

# ---- fuzzing (tests/fuzz/, issue 9): every libFuzzer target for a short fixed time.
# Longer campaigns: scripts/fuzz.sh --seconds 600 (docs/hardening.md).
echo "== libFuzzer targets (clang-19, ASan+UBSan): 20 s each"
scripts/fuzz.sh --seconds 20
