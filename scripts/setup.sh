#!/usr/bin/env bash
# Installs Labyrinth's build and test dependencies from Debian's packages.
# Idempotent: packages already present are skipped; needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev
  libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-19 clang-tidy-19 clang-format-19 libclang-rt-19-dev
  iproute2 libseccomp-dev strace
  python3 bc xz-utils  # xz: guest/linux/fetch_kernel.sh unpacks the vmlinux; tests/bench/compare.sh, the kvm-unit-tests shim and runner
  curl python3-yaml python3-jsonschema  # tests/vmm/api_test.py: the API socket against its contract
  qemu-system-x86 busybox-static cpio  # the test VM (scripts/vm.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: dependencies present"
