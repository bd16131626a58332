#!/usr/bin/env bash
# lnic against virtio-net into the same Linux guest, in one script on one host: receive
# rate (64 B and 1500 B frames) and the guest CPU it costs, ping RTT p50/p99, TCP
# throughput each way; then the lnic's interrupt-path spans with that Linux guest against
# the freestanding latency guest.
#
#   tests/vmm/bench/nic_bench.sh [--runs R] [--pings K] [--bytes N] [--phases LIST]
#                                [--args "BOOT ARGS"] [--copy-timing] [--spans SECONDS]
#
# Both NICs sit on a TAP in a network namespace made (and removed) here, 10.0.2.1/24 on
# the host side, so the traffic source is the same for both: the guest (guest/linux/init,
# test nic-bench; 1 vCPU, 256 MiB) brings up eth0 (virtio-net) or the lnic (lnic.ko)
# as 10.0.2.2/24, pings 10.0.2.1 K times every 50 ms (default 200), sends N bytes
# (default 4 MiB) over TCP to `net_peer sink` and reads N from `net_peer source`, then for
# each SIZE:RATE:SECONDS phase (default 64:500:5,64:5000:5,64:0:5,1500:0:5; RATE 0 = as
# fast as the sender goes) asks `net_peer blast` for that traffic on the TAP (EtherType
# 0x88B5 frames to the guest's MAC) and counts what the kernel received (rx_packets) and
# the guest CPU's busy share (/proc/stat: user+nice+system+irq+softirq) and the NIC's
# receive interrupts (/proc/interrupts) over it, and the host scheduler's CPU time of the
# VMM's vCPU thread and of its other threads over the send window (net_peer blast reads
# schedstat: the guest's own /proc/stat ticks proved unreliable under TCG, the same phase
# counting 0.16-0.69 s busy from run to run). With --copy-timing the lnic driver also
# counts what its copy of each frame into an skb costs (lnic.rx_timing=1: TSC cycles per
# frame, and as a share of its NAPI polls' cycles and of the guest's busy CPU: the most
# that attaching the page instead could save); off by default, since the four TSC reads
# per frame and poll would be charged to the lnic's CPU figures. A fixed
# RATE offers both NICs the same load (compare CPU); RATE 0 lets each take what it can
# (compare the rate; the sender shares the host's CPUs with the VMM, so what it offers
# differs too, and the table shows received / sent). R runs alternate the order
# (virtio-net first, then lnic first, ...); the summary gives medians over the runs.
# Needs root (ip netns, TAP) and standard KVM: run it in the test VM,
#   scripts/vm.sh tests/vmm/bench/nic_bench.sh
# Prints the host kind with the figures; the raw guest output of each run stays in
# the work directory when --keep DIR is given. --args adds kernel command-line arguments
# to both guests (MODULE.PARAM=VALUE reaches the module: lnic.ret_event=0 makes the lnic
# driver ring the RETURN doorbell for every poll, as before LNIC_F_RET_EVENT).
# Last, in the same invocation, tests/vmm/bench/lnic_latency_compare.sh --seconds SECONDS
# (default 10; 0 leaves it out): `labyrinth latency` with the freestanding guest and with
# this Linux guest, the four spans (alloc, host_rx, guest, floor) side by side.
set -euo pipefail
cd "$(dirname "$0")/../../.."
runs=1 pings=200 bytes=$((4 << 20)) phases="64:500:5,64:5000:5,64:0:5,1500:0:5" keep="" extra=""
copy_timing=0 spans=10
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --pings) pings="$2"; shift 2 ;;
    --bytes) bytes="$2"; shift 2 ;;
    --phases) phases="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    --args) extra="$2"; shift 2 ;;
    --copy-timing) copy_timing=1; shift ;;
    --spans) spans="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs R] [--pings K] [--bytes N] [--phases SIZE:RATE:SECONDS,...] [--keep DIR] [--args \"BOOT ARGS\"] [--copy-timing] [--spans SECONDS]" >&2
       exit 2 ;;
  esac
done
[[ $spans =~ ^[0-9]+$ ]] || { echo "$0: --spans '$spans' is not a whole number of seconds" >&2; exit 2; }
[[ $phases =~ ^([0-9]+:[0-9]+:[0-9]+)(,[0-9]+:[0-9]+:[0-9]+)*$ ]] ||
  { echo "$0: --phases '$phases' is not SIZE:RATE:SECONDS[,...] (whole numbers)" >&2; exit 2; }
nphases=$(tr , '\n' <<<"$phases" | wc -l)
mac="02:4c:42:00:00:2a"
ns="labnic$$" tap="lntap$$"
work="${keep:-$(mktemp -d)}"
mkdir -p "$work"
. tests/vmm/bench/net_bench_lib.sh
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  net_bench_teardown
  [[ -n $keep ]] || rm -rf "$work"
}
trap cleanup EXIT
net_bench_setup "$ns" "$tap"

# run_one NIC TAG: one guest with NIC (virtio-net | lnic) on the TAP; its outputs in $work/TAG.*
run_one() {
  local nic="$1" tag="$2" args dev
  args="console=ttyS0 reboot=k panic=-1 labyrinth.test=nic-bench labyrinth.pings=$pings"
  args="$args labyrinth.bytes=$bytes labyrinth.phases=$phases${extra:+ $extra}"
  if [[ $nic == lnic ]]; then
    args="$args labyrinth.nic=lnic"
    ((copy_timing)) && args="$args lnic.rx_timing=1"
    dev='"labyrinth": {"lnics": [{"id": "lnic0", "guest_mac": "'$mac'",
                       "backend": {"type": "tap", "host_dev_name": "'$tap'"}}]}'
  else
    args="$args labyrinth.nic=eth0"
    dev='"network-interfaces": [{"iface_id": "eth0", "host_dev_name": "'$tap'",
                                 "guest_mac": "'$mac'"}]'
  fi
  cat >"$work/$tag.json" <<JSON
{"boot-source": {"kernel_image_path": "$kernel", "initrd_path": "$initrd", "boot_args": "$args"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 256}, $dev}
JSON
  ip netns exec "$ns" "$peer" sink 5001 "$bytes" >"$work/$tag.sink" 2>&1 &
  local sink=$!
  ip netns exec "$ns" "$peer" source 5002 "$bytes" >"$work/$tag.source" 2>&1 &
  local source=$!
  rm -f "$work/$tag.pid"
  ip netns exec "$ns" "$peer" blast 5003 "$tap" "$mac" "$nphases" "$work/$tag.pid" \
    >"$work/$tag.blast" 2>&1 &
  local blast=$!
  sleep 1
  local dropped0 status=0
  dropped0=$(ip netns exec "$ns" cat "/sys/class/net/$tap/statistics/tx_dropped")
  # In the background so that blast can read the VMM's threads' CPU time (`ip netns exec`
  # execs: $! is labyrinth's PID).
  ip netns exec "$ns" "$labyrinth" run --config "$work/$tag.json" --stats \
    --metrics "$work/$tag.metrics.json" >"$work/$tag.out" 2>"$work/$tag.err" </dev/null &
  local vmm=$!
  echo "$vmm" >"$work/$tag.pid"
  wait "$vmm" || status=$?
  echo $(($(ip netns exec "$ns" cat "/sys/class/net/$tap/statistics/tx_dropped") - dropped0)) \
    >"$work/$tag.tap_dropped"
  kill "$sink" "$source" "$blast" 2>/dev/null || true
  wait "$sink" "$source" "$blast" 2>/dev/null || true
  echo "$status" >"$work/$tag.status"
  echo "  $tag: labyrinth exit status $status" >&2
  ((status == 0)) || { tail -n 30 "$work/$tag.out" >&2; tail -n 5 "$work/$tag.err" >&2; }
}

for ((r = 1; r <= runs; r++)); do
  if ((r % 2)); then order="virtio-net lnic"; else order="lnic virtio-net"; fi
  for nic in $order; do run_one "$nic" "$nic.$r"; done
done

echo "host: $host; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "guest: 1 vCPU, 256 MiB, stock Debian kernel $(basename "$kernel"); $runs run(s) each, order alternating${extra:+; boot args: $extra}$( ((copy_timing)) && echo "; lnic.rx_timing=1")"
summary=0
python3 - "$work" "$runs" <<'PY' || summary=$?
import json, re, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")
def med(xs):
    return statistics.median(xs) if xs else float("nan")
rows, failed, copy_rows = {}, False, {}
for nic in ("virtio-net", "lnic"):
    agg = {"rtt50": [], "rtt99": [], "up": [], "down": [], "phases": {}}
    for r in range(1, runs + 1):
        tag = f"{work}/{nic}.{r}"
        status = int(open(tag + ".status").read())
        out = open(tag + ".out", errors="replace").read()
        if status != 0:
            print(f"{nic} run {r}: labyrinth exit status {status} (guest output in {tag}.out)")
            failed = True
            continue
        rtt = [float(x) for x in re.findall(r"seq=\d+ ttl=\d+ time=([0-9.]+) ms", out)]
        agg["rtt50"].append(pct(rtt, 50)); agg["rtt99"].append(pct(rtt, 99))
        for f, key in ((".sink", "up"), (".source", "down")):
            m = re.search(r"\(([0-9.]+) Mbit/s\)", open(tag + f).read())
            if m: agg[key].append(float(m.group(1)))
        for m in re.finditer(r"labyrinth-bench: rx size (\d+) rate (\d+) frames (\d+) uptime ([0-9.]+) -> ([0-9.]+) busy (\d+) idle (\d+) irqs (\d+) host sent (\d+) frames of \d+ bytes in ([0-9.]+) s", out):
            size, rate, got, up0, up1, busy, idle, irqs, sent, secs = m.groups()
            ph = agg["phases"].setdefault((int(size), int(rate)), {"pps": [], "share": [], "busy": [], "cpu_per_kframe": [], "per_irq": []})
            ph["per_irq"].append(int(got) / max(1, int(irqs)))
            ph["pps"].append(int(got) / float(secs))
            ph["share"].append(int(got) / max(1, int(sent)))
            b = int(busy) / max(1, int(busy) + int(idle))
            ph["busy"].append(b)
            # guest CPU seconds (USER_HZ 100) per 1,000 frames received
            ph["cpu_per_kframe"].append(int(busy) / 100 / max(1, int(got)) * 1000)
            ph.setdefault("busy_ticks", []).append(int(busy))
        # The host scheduler's view (net_peer blast, schedstat over the send window): the
        # guest's vCPU thread and the VMM's other threads, CPU seconds per 1,000 frames.
        for m in re.finditer(r"labyrinth-bench: rx size (\d+) rate (\d+) frames (\d+) .*?, vcpu (\d+) ns, vmm (\d+) ns", out):
            size, rate, got, vcpu, vmm = (int(x) for x in m.groups())
            ph = agg["phases"][(size, rate)]
            ph.setdefault("vcpu_per_kframe", []).append(vcpu / 1e9 / max(1, got) * 1000)
            ph.setdefault("vmm_per_kframe", []).append(vmm / 1e9 / max(1, got) * 1000)
        # The lnic driver's copy: cycles per copied frame, against its polls' cycles and
        # against the guest CPU's busy time over the phase (USER_HZ 100, the kernel's TSC rate).
        tsc = re.search(r"labyrinth-bench: tsc ([0-9.]+) MHz", out)
        busy_of = {}
        for m in re.finditer(r"labyrinth-bench: rx size (\d+) rate (\d+) frames \d+ uptime \S+ -> \S+ busy (\d+)", out):
            busy_of[(int(m.group(1)), int(m.group(2)))] = int(m.group(3))
        for m in re.finditer(r"labyrinth-bench: lnic cycles size (\d+) rate (\d+) copies (\d+) copy (\d+) poll (\d+)", out):
            key = (int(m.group(1)), int(m.group(2)))
            copies, copy, poll = (int(x) for x in m.groups()[2:])
            if not copy and not poll:
                continue  # lnic.rx_timing=0: the driver did not time its copy
            c = copy_rows.setdefault(key, {"per_frame": [], "of_poll": [], "of_busy": []})
            if copies:
                c["per_frame"].append(copy / copies)
            if poll:
                c["of_poll"].append(copy / poll)
            if tsc and busy_of.get(key):
                c["of_busy"].append(copy / (busy_of[key] / 100 * float(tsc.group(1)) * 1e6))
        try:
            m = json.load(open(tag + ".metrics.json"))
            if nic == "lnic":
                n = m["lnics"][0]
                drops = {k: v for k, v in n["rx_drops"].items() if v}
                print(f"{nic} run {r}: device rx_frames {n['rx_frames']}, rx_drops {drops or 0}, "
                      f"interrupts {n['irqs']} RX + {n['tx_irqs']} TX, doorbells {n['doorbells']}, "
                      f"pages returned {n['pages_returned']} ({n.get('pages_returned_unrung', 0)} without a doorbell), "
                      f"pages_with_guest {n['pages_with_guest']}, violations {sum(n['violations'].values())}")
                print(f"{nic} run {r}: per 1,000 frames received: "
                      f"{1000 * n['doorbells']['return'] / max(1, n['rx_frames']):.0f} RETURN doorbells, "
                      f"{1000 * n['irqs'] / max(1, n['rx_frames']):.0f} RX interrupts")
            else:
                n = m["virtio_net"][0]
                print(f"{nic} run {r}: device rx_frames {n['rx_frames']}, interrupts {n['irqs']}, "
                      f"kicks {n['kicks']}, rx_waits_for_buffers {n['rx_waits_for_buffers']}")
                print(f"{nic} run {r}: per 1,000 frames received: "
                      f"{1000 * n['kicks']['rx'] / max(1, n['rx_frames']):.0f} RX kicks, "
                      f"{1000 * n['irqs'] / max(1, n['rx_frames']):.0f} interrupts")
        except (OSError, ValueError, KeyError):
            pass
        print(f"{nic} run {r}: TAP tx_dropped (host -> guest frames the VMM did not read in time) "
              f"{open(tag + '.tap_dropped').read().strip()}")
    rows[nic] = agg
print()
print("| | virtio-net | lnic | lnic / virtio-net |")
print("| --- | --- | --- | --- |")
def line(label, a, b, fmt="{:.2f}"):
    ratio = b / a if a and a == a and b == b else float("nan")
    print(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {ratio:.2f} |")
v, l = rows["virtio-net"], rows["lnic"]
line("ping RTT p50 (ms)", med(v["rtt50"]), med(l["rtt50"]), "{:.3f}")
line("ping RTT p99 (ms)", med(v["rtt99"]), med(l["rtt99"]), "{:.3f}")
line("TCP guest -> host (Mbit/s)", med(v["up"]), med(l["up"]))
line("TCP host -> guest (Mbit/s)", med(v["down"]), med(l["down"]))
for key in sorted(set(v["phases"]) | set(l["phases"])):
    size, rate = key
    offered = f"{rate}/s" if rate else "as fast as sent"
    pv, pl = v["phases"].get(key, {}), l["phases"].get(key, {})
    g = lambda p, k: med(p.get(k, []))
    line(f"{size} B, {offered}: received (frames/s)", g(pv, "pps"), g(pl, "pps"), "{:.0f}")
    line(f"{size} B, {offered}: received / sent", g(pv, "share"), g(pl, "share"), "{:.3f}")
    line(f"{size} B, {offered}: guest CPU busy", g(pv, "busy"), g(pl, "busy"), "{:.3f}")
    line(f"{size} B, {offered}: guest CPU s per 1,000 frames", g(pv, "cpu_per_kframe"), g(pl, "cpu_per_kframe"), "{:.4f}")
    line(f"{size} B, {offered}: vCPU thread CPU s per 1,000 frames (host)", g(pv, "vcpu_per_kframe"), g(pl, "vcpu_per_kframe"), "{:.4f}")
    line(f"{size} B, {offered}: VMM's other threads CPU s per 1,000 frames (host)", g(pv, "vmm_per_kframe"), g(pl, "vmm_per_kframe"), "{:.4f}")
    line(f"{size} B, {offered}: frames per receive interrupt", g(pv, "per_irq"), g(pl, "per_irq"), "{:.1f}")
if copy_rows:
    print()
    print("The lnic driver's receive copy (skb_put_data; virtio-net builds its skb around the buffer it posted):")
    print()
    print("| phase | TSC cycles per copied frame | copy / NAPI poll cycles | copy / guest busy CPU |")
    print("| --- | --- | --- | --- |")
    for (size, rate), c in sorted(copy_rows.items()):
        offered = f"{rate}/s" if rate else "as fast as sent"
        print(f"| {size} B, {offered} | {med(c['per_frame']):.0f} | {med(c['of_poll']):.3f} | {med(c['of_busy']):.3f} |")
sys.exit(1 if failed else 0)
PY
if ((spans > 0)); then
  echo
  echo "The lnic's interrupt path, freestanding guest against this Linux guest (tests/vmm/bench/lnic_latency_compare.sh --seconds $spans):"
  echo
  tests/vmm/bench/lnic_latency_compare.sh --seconds "$spans" ${keep:+--keep "$work/spans"} || summary=1
fi
exit "$summary"
