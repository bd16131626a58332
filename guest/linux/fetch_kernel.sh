#!/usr/bin/env bash
# Fetches Debian's stock kernel package (downloaded and unpacked, never installed) into
# a cache directory, default build/vm/linux-guest/:
#   build/vm/linux-guest/kernel/boot/vmlinuz-$VERSION      the bzImage
#   build/vm/linux-guest/kernel/lib/modules/$VERSION/      its modules (for guest/linux/ initramfs)
#   build/vm/linux-guest/kernel/usr/src/linux-headers-$VERSION/  its headers (Kbuild: make -C
#                                                          there M=<module dir>), with the
#                                                          -common part and linux-kbuild
#   build/vm/linux-guest/vmlinuz                           a link to the bzImage: the path
#                                                          configs and tests name
#   build/vm/linux-guest/kernel/boot/vmlinux-$VERSION      the same kernel uncompressed: the
#                                                          ELF the bzImage's decompressor
#                                                          would unpack (its payload, xz,
#                                                          gzip or zstd), for a direct boot
#                                                          that skips decompression
#   build/vm/linux-guest/vmlinux                           a link to it
# Usage: guest/linux/fetch_kernel.sh [--vmlinux] [CACHE_DIR]. Prints the bzImage's path, or
# with --vmlinux the vmlinux's.
#
# VERSION is the kernel linux-image-amd64 depends on (as scripts/vm.sh resolves it), so
# the kit follows Debian's ABI bumps instead of pinning a package that leaves the
# archive. The cache holds one version: a new one replaces the old (image, modules and
# headers together, all of one package version). When the archive cannot be asked or
# the download fails, a kernel already in the cache is used, with a warning.
set -euo pipefail
want=vmlinuz
if [[ ${1:-} == --vmlinux ]]; then want=vmlinux; shift; fi
cache="${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/vm/linux-guest}"
mkdir -p "$cache"

resolve() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/{sub("linux-image-", "", $2); print $2; exit}'
}
cached() {  # the version already unpacked, if any
  local f
  for f in "$cache"/kernel/boot/vmlinuz-*; do
    [[ -f $f ]] && echo "${f##*/vmlinuz-}" && return
  done
  return 0
}
use_cached() {  # use_cached REASON: fall back to the cached kernel or fail
  local have
  have="$(cached)"
  if [[ -z $have ]]; then
    echo "fetch_kernel.sh: $1, and no kernel is cached in $cache" >&2
    exit 1
  fi
  echo "fetch_kernel.sh: $1; using the cached $have" >&2
  version="$have"
}

version="$(resolve)"
if [[ -z $version ]]; then
  apt-get update -qq >/dev/null 2>&1 || true
  version="$(resolve)"
fi
if [[ -z $version ]]; then
  use_cached "cannot resolve linux-image-amd64's kernel (apt-cache depends)"
elif [[ ! -f $cache/kernel/boot/vmlinuz-$version || ! -d $cache/kernel/usr/src/linux-headers-$version ]]; then
  # The image and the headers an out-of-tree module builds against, of one ABI and one
  # package version: linux-headers-$version, its -common part and linux-kbuild-6.1
  # (the headers' scripts/ and tools/ link there). All unpacked into one tree, so the
  # headers' relative links resolve inside the cache.
  pkgver="$(apt-cache show "linux-image-$version" 2>/dev/null | awk '/^Version:/{print $2; exit}')"
  pkgs=("linux-image-$version" "linux-headers-$version" "linux-headers-${version%-amd64}-common"
        "linux-kbuild-${version%%.*}.$(cut -d. -f2 <<<"$version")")
  rm -rf "$cache/deb.tmp" "$cache/kernel.tmp"
  mkdir -p "$cache/deb.tmp"
  if [[ -n $pkgver ]] &&
     (cd "$cache/deb.tmp" && apt-get download "${pkgs[@]/%/=$pkgver}" >/dev/null 2>&1); then
    for deb in "$cache"/deb.tmp/*.deb; do dpkg -x "$deb" "$cache/kernel.tmp"; done
    rm -rf "$cache/kernel"
    mv "$cache/kernel.tmp" "$cache/kernel"
    mkdir -p "$cache/deb"
    rm -f "$cache"/deb/linux-*.deb
    mv "$cache"/deb.tmp/*.deb "$cache/deb/"
    rm -rf "$cache/deb.tmp"
  else
    rm -rf "$cache/deb.tmp"
    use_cached "apt-get download ${pkgs[*]} (version $pkgver) failed"
  fi
fi
image="$cache/kernel/boot/vmlinuz-$version"
ln -sfn "kernel/boot/vmlinuz-$version" "$cache/vmlinuz"

# unpack_vmlinux BZIMAGE OUT: the protected-mode payload (setup header payload_offset and
# payload_length, boot protocol 2.08+) is the compressed ELF, followed for every
# compressor but gzip by its uncompressed size (4 bytes, little endian): checked here.
unpack_vmlinux() {
  python3 - "$1" "$2" <<'PY'
import os, struct, subprocess, sys
src, out = sys.argv[1:3]
b = open(src, "rb").read()
def fail(why):
    sys.exit(f"fetch_kernel.sh: {src}: {why}")
if len(b) < 0x250 or b[0x202:0x206] != b"HdrS":
    fail("not a bzImage (no HdrS at 0x202)")
if struct.unpack_from("<H", b, 0x206)[0] < 0x208:
    fail("boot protocol older than 2.08 has no payload fields")
start = ((b[0x1F1] or 4) + 1) * 512 + struct.unpack_from("<I", b, 0x248)[0]
length = struct.unpack_from("<I", b, 0x24C)[0]
payload = b[start:start + length]
if len(payload) != length or length < 8:
    fail(f"payload {start:#x}+{length:#x} runs past the file's {len(b)} bytes")
tools = {b"\xfd7zXZ\x00": ["xz", "-dc"], b"\x1f\x8b": ["gzip", "-dc"],
         b"\x28\xb5\x2f\xfd": ["zstd", "-dcq"]}
cmd = next((c for magic, c in tools.items() if payload.startswith(magic)), None)
if cmd is None:
    fail(f"payload compressed with an unsupported method (magic {payload[:6].hex()})")
size = struct.unpack("<I", payload[-4:])[0]
data = payload if cmd[0] == "gzip" else payload[:-4]
try:
    r = subprocess.run(cmd, input=data, capture_output=True)
except FileNotFoundError:
    fail(f"{cmd[0]} is not installed (scripts/setup.sh installs xz-utils)")
if r.returncode != 0:
    fail(f"{cmd[0]} failed: {r.stderr.decode(errors='replace').strip()}")
if r.stdout[:4] != b"\x7fELF" or len(r.stdout) != size:
    fail(f"the unpacked payload is not the {size}-byte ELF the trailer promises")
with open(out + ".tmp", "wb") as f:
    f.write(r.stdout)
os.replace(out + ".tmp", out)
PY
}
vmlinux="$cache/kernel/boot/vmlinux-$version"
if [[ ! -f $vmlinux || $vmlinux -ot $image ]] && ! unpack_vmlinux "$image" "$vmlinux"; then
  # Only a caller that asked for the vmlinux needs it; the bzImage is fine either way.
  [[ $want == vmlinux ]] && exit 1
  echo "fetch_kernel.sh: no vmlinux unpacked (see above); the bzImage is unaffected" >&2
fi
[[ -f $vmlinux ]] && ln -sfn "kernel/boot/vmlinux-$version" "$cache/vmlinux"
if [[ $want == vmlinux ]]; then echo "$vmlinux"; else echo "$image"; fi
