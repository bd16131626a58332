#!/usr/bin/env bash
# clang-tidy-19 (the repo's .clang-tidy, warnings are errors) over the given folders,
# using build/compile_commands.json. Default: allocator/, the product's core. CI lints
# allocator/, devices/ and vmm/ (all host code but the tests).
#   scripts/lint.sh [folder ...]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f build/compile_commands.json ]] || { echo "scripts/lint.sh: build first (scripts/build.sh)" >&2; exit 2; }
folders=("${@:-allocator}")
files=()
for f in "${folders[@]}"; do
  while IFS= read -r -d '' src; do files+=("$src"); done < <(find "$f" -name '*.cc' -print0)
done
printf '%s\n' "${files[@]}" | xargs -P2 -n2 clang-tidy-19 -p build --quiet
echo "lint: ${#files[@]} files clean (${folders[*]})"
