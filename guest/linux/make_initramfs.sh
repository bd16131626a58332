#!/usr/bin/env bash
# Builds the Linux test initramfs: Debian's busybox-static, the kernel package's virtio
# modules (with their dependencies, in load order), the lnic driver built against the
# kit's headers (guest/linux/lnic/build.sh; /lib/modules/extra/lnic.ko, loaded by the
# tests that want it, not at boot), /bin/labnet (guest/linux/tools/labnet.c, static:
# `ethtool -S` and a checked TCP sender/receiver) and guest/linux/init.
#   guest/linux/make_initramfs.sh [CACHE_DIR]      -> CACHE_DIR/initramfs.cpio.gz
# CACHE_DIR defaults to build/vm/linux-guest (shared with fetch_kernel.sh, which it runs first).
# Packages are downloaded with apt-get download and unpacked, never installed. The
# archive is rebuilt when init, this script or the lnic driver's sources are newer, or
# the kernel's version changed (its modules are inside). Prints the archive's path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${1:-$here/../../build/vm/linux-guest}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
image="$("$here/fetch_kernel.sh" "$cache")"
version="${image##*/vmlinuz-}"
out="$cache/initramfs.cpio.gz"
fresh=1
for f in "$here/init" "$0" "$here"/lnic/* "$here"/tools/* "$here/../abi/lnic.h"; do
  [[ -f $out && $out -nt $f ]] || fresh=0
done
if [[ $fresh == 1 && "$(cat "$out.version" 2>/dev/null)" == "$version" ]]; then
  echo "$out"
  exit 0
fi

if [[ ! -x $cache/busybox/bin/busybox ]]; then
  mkdir -p "$cache/deb"
  (cd "$cache/deb" && apt-get download busybox-static >/dev/null 2>&1) || {
    echo "make_initramfs.sh: apt-get download busybox-static failed" >&2
    exit 1
  }
  rm -rf "$cache/busybox"
  dpkg -x "$cache"/deb/busybox-static_*.deb "$cache/busybox"
fi

root="$cache/initramfs.root"
rm -rf "$root"
mkdir -p "$root/bin" "$root/lib/modules"
cp "$cache/busybox/bin/busybox" "$root/bin/busybox"
cp "$here/init" "$root/init"
gcc -static -O2 -Wall -Wextra -Werror -o "$root/bin/labnet" "$here/tools/labnet.c"
chmod 755 "$root/init"

# Modules and their dependencies (the "depends=" field of each .ko's modinfo), each
# after what it depends on.
moddir="$cache/kernel/lib/modules/$version"
declare -A seen=()
order=()
add_module() {
  local name="$1" file dep
  [[ -n ${seen[$name]:-} ]] && return 0
  seen[$name]=1
  file="$(find "$moddir/kernel" -name "$name.ko" -o -name "${name//_/-}.ko" | head -n1)"
  if [[ -z $file ]]; then
    echo "make_initramfs.sh: module $name not found in $moddir" >&2
    exit 1
  fi
  for dep in $(grep -a -o 'depends=[^[:cntrl:]]*' "$file" | head -n1 | cut -d= -f2 | tr ',' ' '); do
    add_module "$dep"
  done
  cp "$file" "$root/lib/modules/"
  order+=("$(basename "$file")")
}
for m in virtio_pci virtio_net; do add_module "$m"; done
printf '%s\n' "${order[@]}" >"$root/lib/modules/load-order"
mkdir -p "$root/lib/modules/extra"
cp "$("$here/lnic/build.sh" "$cache")" "$root/lib/modules/extra/lnic.ko"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9) >"$out.tmp"
mv "$out.tmp" "$out"
echo "$version" >"$out.version"
echo "$out"
