#!/usr/bin/env bash
# Builds the lnic Linux driver (lnic.ko) with Kbuild against the headers of exactly the
# kit's kernel (guest/linux/fetch_kernel.sh unpacks image, modules and
# linux-headers-$VERSION, -common and linux-kbuild into CACHE_DIR/kernel, one ABI).
#   guest/linux/lnic/build.sh [CACHE_DIR [OUT_DIR]]  -> OUT_DIR/lnic.ko (its path printed)
# CACHE_DIR defaults to build/vm/linux-guest, OUT_DIR to CACHE_DIR/lnic. The sources are
# copied into OUT_DIR and built there: Kbuild writes its objects beside the sources, and the source tree
# stays clean. gcc-12 is the compiler Debian 12 built the kernel with (the headers'
# CONFIG_CC_VERSION_TEXT); a module built with another is refused here, not at insmod.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cache="${1:-$root/build/vm/linux-guest}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
image="$("$root/guest/linux/fetch_kernel.sh" "$cache")"
version="${image##*/vmlinuz-}"
kdir="$cache/kernel/usr/src/linux-headers-$version"
if [[ ! -f $kdir/Makefile ]]; then
  echo "lnic/build.sh: no headers for $version in $kdir (run guest/linux/fetch_kernel.sh)" >&2
  exit 1
fi
want="$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"$/\1/p' "$kdir/.config")"
have="$(gcc-12 --version 2>/dev/null | head -n1 || true)"
if [[ $want != "$have" ]]; then
  echo "lnic/build.sh: the kernel was built with \"$want\", gcc-12 here is \"$have\"" >&2
  exit 1
fi
out="${2:-$cache/lnic}"
rm -rf "$out"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cp "$here/Kbuild" "$here/lnic_main.c" "$out/"
# The headers' Makefile includes /usr/src/linux-headers-*-common/Makefile by absolute
# path (where the package would be installed); the unpacked copy's is given with -f,
# which Kbuild reads as its source tree.
common="$cache/kernel/usr/src/linux-headers-${version%-amd64}-common"
make -s -C "$kdir" -f "$common/Makefile" M="$out" LNIC_ROOT="$root" CC=gcc-12 modules >&2
# The module's vermagic must name the kit's kernel, or insmod refuses it.
vermagic="$(grep -a -o 'vermagic=[^[:cntrl:]]*' "$out/lnic.ko" | head -n1 | cut -d= -f2)"
if [[ $vermagic != "$version "* ]]; then
  echo "lnic/build.sh: lnic.ko's vermagic \"$vermagic\" is not $version" >&2
  exit 1
fi
echo "$out/lnic.ko"
