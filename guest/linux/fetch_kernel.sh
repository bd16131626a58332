#!/usr/bin/env bash
# Fetches Debian's stock kernel package (downloaded and unpacked, never installed) into
# a cache directory, default build/vm/linux-guest/:
#   build/vm/linux-guest/kernel/boot/vmlinuz-$VERSION      the bzImage
#   build/vm/linux-guest/kernel/lib/modules/$VERSION/      its modules (for guest/linux/ initramfs)
# Usage: guest/linux/fetch_kernel.sh [CACHE_DIR]. Prints the bzImage's path.
set -euo pipefail
version=6.1.0-56-amd64  # what linux-image-amd64 depends on in Debian 12
cache="${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/vm/linux-guest}"
image="$cache/kernel/boot/vmlinuz-$version"
if [[ ! -f $image ]]; then
  mkdir -p "$cache/deb"
  (cd "$cache/deb" && apt-get download "linux-image-$version" >/dev/null 2>&1) || {
    echo "fetch_kernel.sh: apt-get download linux-image-$version failed" >&2
    exit 1
  }
  rm -rf "$cache/kernel.tmp"
  dpkg -x "$cache"/deb/linux-image-"$version"_*.deb "$cache/kernel.tmp"
  rm -rf "$cache/kernel"
  mv "$cache/kernel.tmp" "$cache/kernel"
fi
echo "$image"
