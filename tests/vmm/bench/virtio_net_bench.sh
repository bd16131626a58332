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
ns="labbench$$" tap="lbtap$$"
work="$(mktemp -d)"
. tests/vmm/bench/net_bench_lib.sh
cleanup() {
  net_bench_teardown
  rm -rf "$work"
}
trap cleanup EXIT
net_bench_setup "$ns" "$tap"
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
