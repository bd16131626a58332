#!/usr/bin/env bash
# The lnic's interrupt path answered by the freestanding latency guest and by a Linux
# guest, on one host, one after the other, and the two reports side by side.
#
#   tests/vmm/bench/lnic_latency_compare.sh [--seconds N] [--keep DIR]
#
# Runs `build/labyrinth latency --seconds N` (default 10: half floor, half device path)
# with configs/lnic_latency.json (guest/programs/lnic_latency: its IDT handler stamps
# first thing, the guest halts between interrupts), then with
# configs/linux_lnic_latency.json (Debian's kernel, lnic.ko's MSI-X handler stamps after
# the kernel's interrupt entry; docs/lnic.md "Measurement"). Both: 1 vCPU, the same pool,
# pktgen 1,000 pps of 64-byte frames, floors at the same rate. Prints, per span, count,
# p50 and p99 of each and the Linux/freestanding ratio, each guest's idle mode and TSC
# verdict as its report gave them, and the host kind. Each guest has 300 s to enable the
# lnic and answer a first interrupt (--ready-timeout): the freestanding guest's 10 s
# default was too short in a TCG test VM beside three other busy VMs. --keep DIR keeps the JSON reports
# and serial logs there. Needs standard KVM: here, in the test VM,
#   scripts/vm.sh tests/vmm/bench/lnic_latency_compare.sh
# (guest/linux/make_initramfs.sh must have run on the host first; it is run again here
# only to check the initramfs is fresh).
set -euo pipefail
cd "$(dirname "$0")/../../.."
seconds=10 keep=""
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--keep DIR]" >&2; exit 2 ;;
  esac
done
labyrinth="$PWD/build/labyrinth"
[[ -x $labyrinth ]] || { echo "$0: build first (scripts/build.sh)" >&2; exit 2; }
guest/linux/make_initramfs.sh >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for kind in freestanding linux; do
  cfg=configs/lnic_latency.json
  [[ $kind == linux ]] && cfg=configs/linux_lnic_latency.json
  echo "== $kind guest: labyrinth latency --config $cfg --seconds $seconds" >&2
  "$labyrinth" latency --config "$cfg" --seconds "$seconds" --ready-timeout 300 \
    --json "$work/$kind.json" \
    --serial-out "$work/$kind.log" >"$work/$kind.txt" || {
    echo "$0: the $kind run failed; its report and the guest's serial output:" >&2
    cat "$work/$kind.txt" >&2
    tail -n 20 "$work/$kind.log" >&2
    exit 1
  }
done
[[ -n $keep ]] && mkdir -p "$keep" && cp "$work"/* "$keep"/
python3 - "$work/freestanding.json" "$work/linux.json" <<'PY'
import json, sys
runs = [json.load(open(p)) for p in sys.argv[1:3]]
notes = [r["notes"] for r in runs]
print("host:", notes[0]["host"])
if notes[1]["host"] != notes[0]["host"]:
    print("host (Linux run):", notes[1]["host"])
print(runs[0]["title"], "| same device and rate for both guests")
for r, n in zip(runs, notes):
    print(f"{r['guest_kind']:>12}: {n['guest kind']}")
    print(f"{'':>12}  idle mode: {n['guest idle mode']}")
    print(f"{'':>12}  TSC offset drift: {n['guest TSC offset drift']}")
    print(f"{'':>12}  device path / floor: {n.get('device path / floor', 'n/a')}")
print()
print(f"{'span (us)':<9} | {'freestanding count':>18} {'p50':>11} {'p99':>11} | "
      f"{'Linux count':>11} {'p50':>11} {'p99':>11} | {'p50 ratio':>9} {'p99 ratio':>9}")
def ratio(a, b):
    return f"{b / a:8.2f}x" if a > 0 else "      n/a"
for span in ("alloc", "host_rx", "guest", "floor"):
    f, l = runs[0]["spans"][span], runs[1]["spans"][span]
    print(f"{span:<9} | {f['count']:>18} {f['p50']:>11.3f} {f['p99']:>11.3f} | "
          f"{l['count']:>11} {l['p50']:>11.3f} {l['p99']:>11.3f} | "
          f"{ratio(f['p50'], l['p50'])} {ratio(f['p99'], l['p99'])}")
for r in runs:
    nic = r["metrics"]["lnics"][0]
    bad = sum(nic["violations"].values())
    print(f"{r['guest_kind']}: rx_frames {nic['rx_frames']}, violations {bad}, "
          f"floors sent {nic['floor']['sent']} (missed {nic['floor']['missed']}, "
          f"early {nic['floor']['early']})")
PY
