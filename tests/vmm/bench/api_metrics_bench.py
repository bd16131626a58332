#!/usr/bin/env python3
"""The cost of watching: GET /labyrinth/metrics while lnic traffic runs (issue 20).

    tests/vmm/bench/api_metrics_bench.py [--seconds 20] [--poll-ms 10] [--rounds 2]
        [--binary build/labyrinth] [--guest-dir build/guest] [--json FILE]

One script, one host, runs in turn: `labyrinth run --api-sock` boots the lnic_latency
guest (configs/lnic_latency.json: pktgen at 1000 pps, the guest halting between
interrupts) and, once its first frames are counted, lets it run --seconds more, either
left alone ("quiet") or with a client that sends GET /labyrinth/metrics every --poll-ms
on one keep-alive connection ("polled"). Runs alternate quiet, polled, quiet, polled, ...
(--rounds pairs), so that a drift of the shared host shows in both columns alike.

It prints, with the host kind:
  - the request latency of GET /labyrinth/metrics (connection write -> whole body read,
    measured by the client): p50, p99, max over every request of every polled run;
  - the lnic's latency spans (alloc, host_rx, guest; the histograms `labyrinth latency`
    reports, read from the last GET of each run, which covers the whole run) as the
    median over runs of each percentile, quiet against polled, and polled / quiet.

The answer is built on the device event loop between two of its handlers (docs/api.md),
so a poll delays the frames that are due while it runs: host_rx and guest show that cost.
Needs standard KVM; without a usable /dev/kvm it re-runs itself in the test VM
(scripts/vm.sh), where the API socket lives in /dev/shm (9p cannot hold a socket).
Exit status: 0 done, 1 a run failed, 2 usage.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SPANS = ("alloc", "host_rx", "guest")
PCTS = ("p50", "p99", "p99.9")


class UnixHttp(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def get_metrics(conn):
    conn.request("GET", "/labyrinth/metrics")
    reply = conn.getresponse()
    body = reply.read()
    if reply.status != 200:
        raise RuntimeError(f"GET /labyrinth/metrics: {reply.status} {body[:200]!r}")
    return json.loads(body)


def get_metrics_once(sock):
    """On a connection of its own: the server drops a keep-alive client that stays silent
    for its --api-timeout, so only the poller keeps one."""
    conn = UnixHttp(sock)
    try:
        return get_metrics(conn)
    finally:
        conn.close()


def host_kind():
    if os.environ.get("LABYRINTH_IN_TEST_VM") == "1":
        return "TCG-emulated standard KVM (the test VM: QEMU TCG, kvm_amd inside)"
    if os.path.isdir("/sys/module/kvm_pvm"):
        return "nested PVM KVM (not representative)"
    with open("/proc/cpuinfo") as f:
        if " hypervisor" in f.read():
            return "nested KVM"
    return "bare KVM"


def kvm_usable():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100.0 * len(s)))]


def one_run(args, polled, workdir):
    """Boots the guest, waits for traffic, runs --seconds quiet or polled; returns
    (spans of the last GET, request latencies in us, frames counted)."""
    sock = os.path.join(workdir, "api.sock")
    cfg_path = os.path.join(workdir, "vm.json")
    with open(os.path.join(ROOT, "configs", "lnic_latency.json")) as f:
        cfg = json.load(f)
    cfg["boot-source"]["kernel_image_path"] = os.path.join(args.guest_dir, "lnic_latency.elf")
    cfg["serial"] = {"output": os.path.join(workdir, "serial"), "input": "none"}
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    if os.path.exists(sock):
        os.unlink(sock)
    out = open(os.path.join(workdir, "labyrinth.out"), "w")
    proc = subprocess.Popen([args.binary, "run", "--api-sock", sock, "--config", cfg_path],
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        listening = False
        deadline = time.monotonic() + 300
        while not listening and proc.poll() is None and time.monotonic() < deadline:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(sock)
                listening = True
            except OSError:
                time.sleep(0.01)  # waiting for the listener, not a synchronisation
            probe.close()
        if not listening:
            raise RuntimeError("labyrinth never listened on the API socket")
        # Warm-up: until the guest has taken frames (its enable, the first interrupts).
        while proc.poll() is None and time.monotonic() < deadline:
            if get_metrics_once(sock)["lnics"][0]["rx_frames"] > 0:
                break
            time.sleep(0.1)
        latencies, errors = [], []
        stop = threading.Event()

        def poller():
            pc = UnixHttp(sock)
            period = args.poll_ms / 1000.0
            next_t = time.monotonic()
            while not stop.is_set():
                t0 = time.perf_counter_ns()
                try:
                    get_metrics(pc)
                except (OSError, RuntimeError, http.client.HTTPException, ValueError) as e:
                    errors.append(e)
                    break
                latencies.append((time.perf_counter_ns() - t0) / 1000.0)
                next_t += period
                delay = next_t - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                else:
                    next_t = time.monotonic()  # late: no burst to catch up
            pc.close()

        thread = threading.Thread(target=poller) if polled else None
        if thread:
            thread.start()
        stop.wait(args.seconds)
        stop.set()
        if thread:
            thread.join()
        if errors:
            raise RuntimeError(f"the poller failed: {errors[0]}")
        last = get_metrics_once(sock)
        if proc.poll() is not None:
            raise RuntimeError(f"labyrinth ended during the run (status {proc.returncode})")
        lnic = last["lnics"][0]
        spans = lnic["latency"]["spans"]
        return spans, latencies, lnic["rx_frames"], sum(lnic["violations"].values())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--poll-ms", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "labyrinth"))
    ap.add_argument("--guest-dir", default=os.path.join(ROOT, "build", "guest"))
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    args = ap.parse_args()
    if args.seconds <= 0 or args.poll_ms <= 0 or args.rounds < 1:
        ap.error("--seconds and --poll-ms must be positive, --rounds at least 1")
    for path in (args.binary, os.path.join(args.guest_dir, "lnic_latency.elf")):
        if not os.path.exists(path):
            print(f"{sys.argv[0]}: {path} is missing: build first (scripts/build.sh)", file=sys.stderr)
            return 2
    if not kvm_usable() and os.environ.get("LABYRINTH_IN_TEST_VM") != "1":
        print("no usable /dev/kvm here: running in the test VM (scripts/vm.sh)", file=sys.stderr)
        fwd = [os.path.abspath(sys.argv[0]), "--seconds", str(args.seconds), "--poll-ms",
               str(args.poll_ms), "--rounds", str(args.rounds), "--binary",
               os.path.abspath(args.binary), "--guest-dir", os.path.abspath(args.guest_dir)]
        if args.json:
            fwd += ["--json", os.path.abspath(args.json)]
        os.execv(os.path.join(ROOT, "scripts", "vm.sh"),
                 [os.path.join(ROOT, "scripts", "vm.sh"), "python3", *fwd])

    # A socket cannot live on the test VM's 9p mounts: /dev/shm is the VM's own tmpfs.
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    results = {"quiet": [], "polled": []}
    requests = []
    failed = False
    for r in range(args.rounds):
        for mode in ("quiet", "polled"):
            with tempfile.TemporaryDirectory(prefix="api-bench-", dir=base) as wd:
                try:
                    spans, lat, frames, violations = one_run(args, mode == "polled", wd)
                except (RuntimeError, OSError, KeyError, ValueError) as e:
                    print(f"round {r + 1} {mode}: {e}", file=sys.stderr)
                    failed = True
                    continue
            results[mode].append(spans)
            requests += lat
            extra = f", {len(lat)} requests" if mode == "polled" else ""
            print(f"round {r + 1} {mode}: {frames} frames, {violations} violations{extra}",
                  flush=True)
            if violations:
                failed = True

    print()
    print(f"GET /labyrinth/metrics while lnic traffic runs; host: {host_kind()};")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.rounds} rounds of "
          f"{args.seconds:g} s, poll every {args.poll_ms:g} ms; pktgen 1000 pps, lnic_latency guest")
    print()
    figures = {"host": host_kind(), "requests": {}, "spans": {}}
    if requests:
        req = {p: percentile(requests, q) for p, q in (("p50", 50), ("p99", 99))}
        req["max"] = max(requests)
        figures["requests"] = dict(req, count=len(requests))
        print(f"request latency (us, {len(requests)} requests): p50 {req['p50']:.0f}, "
              f"p99 {req['p99']:.0f}, max {req['max']:.0f}")
        print()
    print("| span | percentile | quiet (us, median of runs) | polled (us) | polled / quiet |")
    print("| --- | --- | ---: | ---: | ---: |")
    for span in SPANS:
        for p in PCTS:
            q = [s[span][p] for s in results["quiet"] if span in s]
            w = [s[span][p] for s in results["polled"] if span in s]
            if not q or not w:
                continue
            mq, mw = statistics.median(q), statistics.median(w)
            ratio = mw / mq if mq > 0 else float("nan")
            figures["spans"].setdefault(span, {})[p] = {"quiet": mq, "polled": mw, "ratio": ratio}
            print(f"| {span} | {p} | {mq:.2f} | {mw:.2f} | {ratio:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
