#!/usr/bin/env bash
# virtio-net figures: ping RTT and TCP throughput both ways between a Linux guest and
# the host, through a TAP in a network namespace made (and removed) here.
#
#   tests/vmm/bench/virtio_net_bench.sh [--bytes N] [--args "EXTRA BOOT ARGS"]
#
# The guest (guest/linux/init, test net-bench) brings eth0 up as 10.0.2.2/24, pings the
# TAP's 10.0.2.1 20 times, sends N bytes (default 10 MiB) from /dev/zero with busybox
# nc to build/tests/vmm/net_peer (sink, port 5001), then reads N bytes from net_peer
# (source, port 5002). net_peer times each transfer from accept to the end. Needs root
# (ip netns, TAP) and standard KVM: run it in the test VM,
#   scripts/vm.sh tests/vmm/bench/virtio_net_bench.sh
# Prints the host kind with the figures, and labyrinth's host_rx table (--stats).
set -euo pipefail
cd "$(dirname "$0")/../../.."
bytes=$((10 << 20)) extra=""
while (($#)); do
  case "$1" in
    --bytes) bytes="$2"; shift 2 ;;
    --args) extra="$2"; shift 2 ;;
    *) echo "usage: $0 [--bytes N] [--args \"EXTRA BOOT ARGS\"]" >&2; exit 2 ;;
  esac
done
kernel="$(guest/linux/fetch_kernel.sh)"
initrd="$(guest/linux/make_initramfs.sh)"
labyrinth="$PWD/build/labyrinth" peer="$PWD/build/tests/vmm/net_peer"
[[ -x $labyrinth && -x $peer ]] || { echo "$0: build first (scripts/build.sh)" >&2; exit 2; }
host="standard KVM"
[[ -e /sys/module/kvm_pvm ]] && host="nested PVM KVM (not representative)"
[[ -n ${LABYRINTH_IN_TEST_VM:-} ]] &&
  host="kvm_amd inside the QEMU TCG test VM (emulated: absolute numbers are not meaningful)"
ns="labbench$$" tap="lbtap$$"
work="$(mktemp -d)"
cleanup() {
  ip -n "$ns" link del "$tap" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" tuntap add dev "$tap" mode tap
ip -n "$ns" addr add 10.0.2.1/24 dev "$tap"
ip -n "$ns" link set "$tap" up
ip -n "$ns" link set lo up
args="console=ttyS0 reboot=k panic=-1"  # a plain command line: no i8042.* options needed
args="$args labyrinth.test=net-bench labyrinth.bytes=$bytes $extra"
cat >"$work/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$kernel", "initrd_path": "$initrd", "boot_args": "$args"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
 "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "$tap"}]}
JSON
ip netns exec "$ns" "$peer" sink 5001 "$bytes" >"$work/sink" 2>&1 &
ip netns exec "$ns" "$peer" source 5002 "$bytes" >"$work/source" 2>&1 &
sleep 1
status=0
ip netns exec "$ns" "$labyrinth" run --config "$work/vm.json" --stats \
  >"$work/out" 2>"$work/err" </dev/null || status=$?
wait || true
echo "host: $host"
echo "guest boot args: $args"
grep -E "round-trip|packets transmitted|labyrinth-net:" "$work/out" || true
echo "guest -> host: $(tail -n1 "$work/sink")"
echo "host -> guest: $(tail -n1 "$work/source")"
sed -n '/^virtio-net /,/host_rx:/p' "$work/err"
echo "labyrinth exit status $status"
exit "$status"
