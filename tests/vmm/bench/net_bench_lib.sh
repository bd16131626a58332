# tests/vmm/bench/net_bench_lib.sh — what the network benches (virtio_net_bench.sh,
# nic_bench.sh) share; sourced from the repository's root, after `set -euo pipefail`:
#   net_bench_setup NS TAP   the kernel, the initramfs and the binaries (kernel, initrd,
#                            labyrinth, peer), the host kind (host), and a network
#                            namespace NS holding TAP as 10.0.2.1/24, up (with lo);
#                            exits 2 when the tree is not built
#   net_bench_teardown       removes the TAP and the namespace (for the EXIT trap)

net_bench_setup() {
  bench_ns="$1" bench_tap="$2"
  kernel="$(guest/linux/fetch_kernel.sh)"
  initrd="$(guest/linux/make_initramfs.sh)"
  labyrinth="$PWD/build/labyrinth" peer="$PWD/build/tests/vmm/net_peer"
  [[ -x $labyrinth && -x $peer ]] || { echo "$0: build first (scripts/build.sh)" >&2; exit 2; }
  host="standard KVM"
  [[ -e /sys/module/kvm_pvm ]] && host="nested PVM KVM (not representative)"
  [[ -n ${LABYRINTH_IN_TEST_VM:-} ]] &&
    host="kvm_amd inside the QEMU TCG test VM (emulated: absolute numbers are not meaningful)"
  ip netns add "$bench_ns"
  ip -n "$bench_ns" tuntap add dev "$bench_tap" mode tap
  ip -n "$bench_ns" addr add 10.0.2.1/24 dev "$bench_tap"
  ip -n "$bench_ns" link set "$bench_tap" up
  ip -n "$bench_ns" link set lo up
}

net_bench_teardown() {
  [[ -n ${bench_ns:-} ]] || return 0
  ip -n "$bench_ns" link del "$bench_tap" 2>/dev/null || true
  ip netns del "$bench_ns" 2>/dev/null || true
}
