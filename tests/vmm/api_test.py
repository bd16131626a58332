#!/usr/bin/env python3
"""The API socket (vmm/api/, docs/api.md) driven by a real client, curl --unix-socket.

  api_test.py --binary build/labyrinth --guest-dir build/guest --mode host
      no VM starts (runs anywhere): pre-start endpoints, InstanceStart refused by
      pre-flight, bad input of every kind, the socket's permissions and stale-socket rule
  api_test.py ... --mode kvm
      (needs /dev/kvm: the test VM) a freestanding guest with an lnic under pktgen traffic
      from nothing to running to stopped, live metrics, pause and resume (PATCH /vm: the
      counters stand still while paused, move again after, the pool's books exact at the
      end), wrong-state requests, bad input while it runs, and --config with --api-sock
  api_test.py ... --mode linux --kernel vmlinuz --initrd initramfs.cpio.gz
      (the test VM) a stock Linux guest with virtio-net from nothing to running to stopped:
      configured and started through the API, live metrics, then SendCtrlAltDel: the
      i8042's keyboard presses the keys, the kernel reboots (reboot=k: the i8042 reset)
      and labyrinth exits 0

Every request body sent and every response body received on an endpoint the contract
has is validated against Firecracker's definition (../shared/peers/firecracker-api-*.yaml,
Swagger 2.0, Draft 4 schemas) with python3-jsonschema. Exit status 0: all passed.
"""
import argparse
import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CONTRACT = os.path.join(HERE, "..", "..", "..", "shared", "peers", "firecracker-api-81b38b9d.yaml")

# Which definition a request body (method, path) and a 2xx response body must match.
REQUEST_SCHEMA = {
    ("PUT", "/boot-source"): "BootSource",
    ("PUT", "/machine-config"): "MachineConfiguration",
    ("PUT", "/network-interfaces"): "NetworkInterface",
    ("PUT", "/logger"): "Logger",
    ("PUT", "/metrics"): "Metrics",
    ("PUT", "/actions"): "InstanceActionInfo",
    ("PATCH", "/vm"): "Vm",
}
RESPONSE_SCHEMA = {
    ("GET", "/"): "InstanceInfo",
    ("GET", "/version"): "FirecrackerVersion",
    ("GET", "/machine-config"): "MachineConfiguration",
    ("GET", "/vm/config"): "FullVmConfiguration",
}

failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


class Contract:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.validators = {}

    def validate(self, name, body, what):
        if name not in self.validators:
            schema = {"definitions": self.doc["definitions"], "$ref": "#/definitions/" + name}
            self.validators[name] = jsonschema.Draft4Validator(schema)
        errors = [e.message for e in self.validators[name].iter_errors(body)]
        check(not errors, f"{what}: body does not match {name}: {errors} ({body})")


class Api:
    """curl against the socket; every body checked against the contract."""

    def __init__(self, sock, contract):
        self.sock = sock
        self.contract = contract

    def call(self, method, path, body=None, raw=None):
        key = (method, "/network-interfaces" if path.startswith("/network-interfaces/") else path)
        if body is not None and key in REQUEST_SCHEMA:
            self.contract.validate(REQUEST_SCHEMA[key], body, f"request {method} {path}")
        cmd = ["curl", "-sS", "--max-time", "120", "--unix-socket", self.sock, "-X", method,
               "-o", "-", "-w", "\n%{http_code}", f"http://localhost{path}"]
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        out = subprocess.run(cmd, input=(data or "").encode(), capture_output=True, check=False)
        text, _, code = out.stdout.decode().rpartition("\n")
        status = int(code) if code.isdigit() else 0
        parsed = json.loads(text) if text else None
        if status == 204:
            check(text == "", f"{method} {path}: 204 with a body {text!r}")
        if 200 <= status < 300 and key in RESPONSE_SCHEMA:
            self.contract.validate(RESPONSE_SCHEMA[key], parsed, f"response {method} {path}")
        if status >= 400:
            self.contract.validate("Error", parsed, f"response {method} {path}")
            check(isinstance(parsed, dict) and isinstance(parsed.get("fault_message"), str),
                  f"{method} {path}: a {status} without a fault_message: {text!r}")
        return status, parsed

    def expect(self, status, method, path, body=None, raw=None, fault=None):
        got, parsed = self.call(method, path, body, raw)
        check(got == status, f"{method} {path} {body or raw or ''}: status {got}, expected {status} ({parsed})")
        if fault is not None:
            msg = parsed.get("fault_message", "") if isinstance(parsed, dict) else ""
            check(fault in msg, f"{method} {path}: fault_message {msg!r} lacks {fault!r}")
        return parsed


def raw_exchange(sock_path, data, timeout=60):
    """Sends raw bytes on a fresh connection; returns everything read until the server closes."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    try:
        if data:
            s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    s.close()
    return got


def status_of(reply):
    parts = reply.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


# Every VMM this run started: when a check fails, main() prints the output of each that
# ended abnormally (a crash or a sanitizer report is otherwise only "status 0" replies).
started = []


class Labyrinth:
    def __init__(self, binary, sock, args=(), timeout=3):
        started.append(self)
        self.sock = sock
        self.out = tempfile.NamedTemporaryFile(prefix="labyrinth-", suffix=".out", delete=False,
                                               dir=os.path.dirname(sock))
        self.proc = subprocess.Popen(
            [binary, "run", "--api-sock", sock, "--api-timeout", str(timeout), *args],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT)
        # Ready once a connection is accepted (a stale file left by an earlier run would
        # exist before this labyrinth binds it).
        deadline = time.monotonic() + 120
        ready = False
        while not ready and self.proc.poll() is None and time.monotonic() < deadline:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(sock)
                ready = True
            except OSError:
                time.sleep(0.01)  # polling for the listener, not synchronising on a duration
            probe.close()
        check(ready, f"labyrinth never listened on {sock}: {self.output()}")

    def output(self):
        with open(self.out.name) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def host_tests(args, contract, tmp):
    sock = os.path.join(tmp, "api.sock")
    vm = Labyrinth(args.binary, sock)
    api = Api(sock, contract)
    mode = stat.S_IMODE(os.stat(sock).st_mode)
    check(mode == 0o600, f"socket mode {oct(mode)}, expected 0o600")

    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Not started", f"GET / before start: {info}")
    api.expect(200, "GET", "/version")
    mc = api.expect(200, "GET", "/machine-config")
    check(mc and mc["vcpu_count"] == 1 and mc["mem_size_mib"] == 128, f"default machine-config {mc}")

    # Pre-start configuration: accepted, and read back.
    kernel = os.path.join(args.guest_dir, "hello.elf")
    api.expect(204, "PUT", "/boot-source", {"kernel_image_path": kernel, "boot_args": "x=1"})
    api.expect(204, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 64})
    mc = api.expect(200, "GET", "/machine-config")
    check(mc and mc["vcpu_count"] == 2 and mc["mem_size_mib"] == 64, f"machine-config read back {mc}")
    api.expect(204, "PUT", "/network-interfaces/eth0",
               {"iface_id": "eth0", "host_dev_name": "labyapi0", "guest_mac": "06:00:ac:10:00:02"})
    api.expect(204, "PUT", "/labyrinth", raw=json.dumps({"pool": {"initial_chunks": 1, "max_chunks": 4}}))
    cfg = api.expect(200, "GET", "/vm/config")
    check(cfg and cfg["boot-source"]["kernel_image_path"] == kernel and
          cfg["network-interfaces"][0]["host_dev_name"] == "labyapi0", f"GET /vm/config {cfg}")
    log = os.path.join(tmp, "log")
    open(log, "w").close()
    api.expect(204, "PUT", "/logger", {"level": "Debug", "log_path": log, "show_level": True})
    metrics = os.path.join(tmp, "metrics")
    open(metrics, "w").close()
    api.expect(204, "PUT", "/metrics", {"metrics_path": metrics})

    # Bad values, named by their field as a --config file's are.
    # (Bodies the contract itself rejects go as raw text: the client-side check is for
    # requests that should succeed.)
    api.expect(400, "PUT", "/machine-config", raw='{"vcpu_count": 0, "mem_size_mib": 64}',
               fault="machine-config.vcpu_count")
    api.expect(400, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 63},
               fault="machine-config.mem_size_mib")
    api.expect(400, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64, "smt": True},
               fault="machine-config.smt")  # a Firecracker key Labyrinth does not have
    api.expect(400, "PUT", "/boot-source", {"kernel_image_path": ""}, fault="boot-source.kernel_image_path")
    api.expect(400, "PUT", "/boot-source", raw='{"boot_args": "x"}', fault="boot-source.kernel_image_path")
    api.expect(400, "PUT", "/boot-source", raw='{"kernel_image_path": 5}', fault="boot-source.kernel_image_path")
    api.expect(400, "PUT", "/network-interfaces/eth1",
               {"iface_id": "eth0", "host_dev_name": "labyapi1"}, fault="does not match")
    api.expect(400, "PUT", "/network-interfaces/eth1",
               {"iface_id": "eth1", "host_dev_name": "labyapi0"}, fault="network-interfaces[1]")
    api.expect(400, "PUT", "/network-interfaces/eth1",
               {"iface_id": "eth1", "host_dev_name": "t", "guest_mac": "zz"}, fault="guest_mac")
    api.expect(400, "PUT", "/labyrinth", raw='{"pool": {"max_chunks": 0}}', fault="labyrinth.pool.max_chunks")
    api.expect(400, "PUT", "/labyrinth", raw='{"lnics": [{"id": "a", "backend": {"type": "x"}}]}',
               fault="labyrinth.lnics[0].backend")
    api.expect(400, "PUT", "/cpu-config",
               {"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
                                     "modifiers": [{"register": "ecx", "bitmap": "0b10x"}]}]},
               fault="cpu-config.cpuid_modifiers[0].modifiers[0].bitmap")
    api.expect(400, "PUT", "/cpu-config", {"msr_modifiers": [{"addr": "0x10", "bitmap": "0b1"}]},
               fault="cpu-config.msr_modifiers")
    api.expect(400, "PUT", "/logger", raw='{"level": "Loud"}', fault="logger.level")
    api.expect(400, "PUT", "/metrics", {"metrics_path": os.path.join(tmp, "none")},
               fault="metrics.metrics_path")
    # Bad JSON, wrong types, unknown actions.
    api.expect(400, "PUT", "/machine-config", raw='{"vcpu_count": ', fault="invalid JSON")
    api.expect(400, "PUT", "/machine-config", raw='[1, 2]', fault="JSON object")
    api.expect(400, "PUT", "/actions", raw='{"action_type": "Reboot"}', fault="action_type")
    api.expect(400, "PUT", "/actions", raw='{"action_type": "InstanceStart", "x": 1}', fault="x")
    api.expect(400, "PUT", "/actions", {"action_type": "FlushMetrics"}, fault="not running")
    api.expect(400, "GET", "/labyrinth/metrics", fault="not running")
    api.expect(400, "PUT", "/actions", {"action_type": "SendCtrlAltDel"}, fault="before starting")
    # Wrong methods, unknown paths, endpoints Labyrinth does not implement.
    api.expect(400, "DELETE", "/boot-source", fault="Invalid request method")
    api.expect(400, "GET", "/boot-source", fault="Invalid request method")
    api.expect(400, "POST", "/actions", raw="{}", fault="Invalid request method")
    api.expect(400, "GET", "/nothing/here", fault="Invalid request method")
    for method, path in [("PUT", "/drives/rootfs"), ("PUT", "/balloon"), ("PUT", "/vsock"),
                         ("PUT", "/snapshot/create"), ("PUT", "/mmds/config"),
                         ("PUT", "/entropy"), ("PUT", "/serial")]:
        api.expect(400, method, path, raw="{}", fault="not implemented by Labyrinth")

    # PATCH /vm: the body checked (Vm: state Paused or Resumed, nothing else), then refused
    # before start in Firecracker's words.
    api.expect(400, "PATCH", "/vm", {"state": "Paused"}, fault="before starting")
    api.expect(400, "PATCH", "/vm", {"state": "Resumed"}, fault="before starting")
    api.expect(400, "PATCH", "/vm", raw='{"state": "Stopped"}',
               fault='vm.state: must be Paused or Resumed, got "Stopped"')
    api.expect(400, "PATCH", "/vm", raw='{"state": 1}', fault="vm.state")
    api.expect(400, "PATCH", "/vm", raw="{}", fault="vm.state")
    api.expect(400, "PATCH", "/vm", raw='{"state": "Paused", "when": 1}', fault="vm.when")
    api.expect(400, "PATCH", "/vm", raw='{"state": ', fault="invalid JSON")
    api.expect(400, "PUT", "/vm", {"state": "Paused"}, fault="Invalid request method")
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Not started", f"GET / after PATCH /vm before start: {info}")

    # InstanceStart runs pre-flight, as for a file: a missing kernel is named, and nothing starts.
    api.expect(204, "PUT", "/boot-source", {"kernel_image_path": os.path.join(tmp, "no-kernel")})
    api.expect(400, "PUT", "/actions", {"action_type": "InstanceStart"}, fault="boot-source.kernel_image_path")
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Not started", f"GET / after a refused start: {info}")

    # Malformed and oversized HTTP: answered 4xx, connection closed.
    check(status_of(raw_exchange(sock, b"GARBAGE\r\n\r\n")) == 400, "malformed request line")
    check(status_of(raw_exchange(sock, b"GET / HTTP/1.1\r\nHost x\r\n\r\n")) == 400, "malformed header")
    big_header = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    check(status_of(raw_exchange(sock, big_header)) == 431, "a 20 KB header")
    big_body = (b"PUT /boot-source HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"{" * 1000)
    check(status_of(raw_exchange(sock, big_body)) == 413, "a 1 MB body")
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", sock,
                          "-X", "PUT", "--data-binary", "@-", "http://localhost/boot-source"],
                         input=b"x" * 200000, capture_output=True, check=False)
    check(out.stdout in (b"413", b"000"), f"curl with a 200 KB body: {out.stdout}")
    # Keep-alive: two requests on one connection, both answered.
    two = raw_exchange(sock, b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check(two.count(b"HTTP/1.1 200") == 2, f"two requests on one connection: {two[:200]}")

    # Concurrent clients: 16 idle connections are held; a 17th is dropped at once; requests
    # on them are all answered.
    held = []
    for _ in range(16):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(60)
        c.connect(sock)
        held.append(c)
    # The 16th is accepted before the 17th (one listening queue, accepted in order): a
    # request answered on the 16th proves the server has counted all of them.
    held[-1].sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
    check(held[-1].recv(4096).startswith(b"HTTP/1.1 200"), "a request on the 16th connection")
    check(raw_exchange(sock, b"") == b"", "a 17th connection is not dropped")
    threads_ok = []

    def ask(c):
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        threads_ok.append(c.recv(4096).startswith(b"HTTP/1.1 200"))
    ts = [threading.Thread(target=ask, args=(c,)) for c in held[:-1]]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(threads_ok.count(True) == 15, f"15 concurrent requests: {threads_ok}")
    for c in held:
        c.close()
    # A client that connects and never sends is dropped by the timeout (--api-timeout 3).
    check(raw_exchange(sock, b"", timeout=120) == b"", "a silent client is not dropped")
    # ... and one that sends half a request.
    check(raw_exchange(sock, b"GET / HTTP/1.1\r\nHo", timeout=120) == b"", "half a request")

    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Not started", "the server answers after the bad input")
    check(vm.proc.poll() is None, "labyrinth still runs after the bad input")
    status = vm.stop()
    check(status == 143, f"SIGTERM before start: exit {status}, expected 143 ({vm.output()})")
    check(not os.path.exists(sock), "the socket is removed at exit")
    check("[debug]" in open(log).read() or "[info]" in open(log).read(),
          f"PUT /logger's file got no lines: {open(log).read()!r}")

    # The path rules: a stale socket is replaced, a live one or a plain file refused.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)
    stale.close()  # the file stays, nobody listens
    vm = Labyrinth(args.binary, sock)
    api.expect(200, "GET", "/")
    second = subprocess.run([args.binary, "run", "--api-sock", sock], capture_output=True, check=False)
    check(second.returncode == 2 and b"in use" in second.stderr,
          f"a second labyrinth on a live socket: {second.returncode} {second.stderr}")
    check(vm.stop(signal.SIGINT) == 130, "SIGINT before start: 130")
    plain = os.path.join(tmp, "plain")
    open(plain, "w").close()
    third = subprocess.run([args.binary, "run", "--api-sock", plain], capture_output=True, check=False)
    check(third.returncode == 2 and b"not a socket" in third.stderr,
          f"a plain file as --api-sock: {third.returncode} {third.stderr}")
    none = subprocess.run([args.binary, "run"], capture_output=True, check=False)
    check(none.returncode == 2, f"run with neither --config nor --api-sock: {none.returncode}")
    accept_without_descriptors(args, contract, tmp)


def accept_without_descriptors(args, contract, tmp):
    """RLIMIT_NOFILE so low that accept fails with EMFILE: the server backs off (a bounded
    number of attempts, not a spin on the failing accept), and a connection waiting in the
    backlog is served once idle clients are dropped and descriptors come free."""
    sock = os.path.join(tmp, "emfile.sock")
    vm = Labyrinth(args.binary, sock, ["--log-level", "debug"], timeout=3)
    # Lowered on the running server, once it has started (a sanitizer's runtime holds more
    # descriptors at start than the server itself; a limit set before exec starved that):
    # room for two connections beyond what it holds at rest; the server allows 16.
    base = len(os.listdir(f"/proc/{vm.proc.pid}/fd"))
    limit = base + 2
    resource.prlimit(vm.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
    t0 = time.monotonic()
    idle = []
    for _ in range(6):  # silent clients: more than there are descriptors for
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(sock)
        idle.append(c)
    api = Api(sock, contract)
    info = api.expect(200, "GET", "/")  # behind them in the backlog
    elapsed = time.monotonic() - t0
    check(info and info["state"] == "Not started", f"GET / once descriptors came free: {info}")
    out = vm.output()
    attempts = out.count("api: accept failed")
    check(attempts >= 1, f"RLIMIT_NOFILE {limit} never made accept fail: {out[-1000:]}")
    check("retrying every" in out, f"no warning of the failing accept: {out[-1000:]}")
    # A spinning loop makes hundreds of thousands of attempts a second; the back-off ten.
    check(attempts <= 20 * elapsed + 20,
          f"{attempts} accept attempts in {elapsed:.1f} s: the accept loop spins on EMFILE")
    for c in idle:
        c.close()
    check(vm.stop() == 143 and vm.proc.poll() is not None, "SIGTERM after the EMFILE episode")


def lnic_counter(metrics, key):
    return sum(n.get(key, 0) for n in metrics.get("lnics", []))


# What a pause must hold still: the device's work (frames, interrupts, pktgen's frames),
# the guest's (pages it returned, doorbells it rang) and the pool's.
def moving_counters(m):
    nic = (m or {}).get("lnics", [{}])[0]
    pool = (m or {}).get("pool", {})
    return {"rx_frames": nic.get("rx_frames"), "irqs": nic.get("irqs"),
            "generated": nic.get("pktgen", {}).get("generated"),
            "pages_returned": nic.get("pages_returned"),
            "return_doorbells": nic.get("doorbells", {}).get("return"),
            "pool.alloc": sum(pool.get(k, 0) for k in ("alloc_cache", "alloc_depot", "alloc_reserve")),
            "pool.frees": pool.get("frees")}


def pause_resume(api, vm):
    """PATCH /vm under pktgen traffic: nothing moves while paused, all of it moves again after."""
    api.expect(204, "PATCH", "/vm", {"state": "Paused"})
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Paused", f"after PATCH Paused: {info}")
    api.expect(204, "PATCH", "/vm", {"state": "Paused"})  # Firecracker: a repeat is no error
    a = moving_counters(api.expect(200, "GET", "/labyrinth/metrics"))
    # Requests in between are the time that passes (each a curl process: tens of ms, more
    # under TCG) at 2000 frames/s; nothing here waits for a duration.
    for _ in range(5):
        api.expect(200, "GET", "/")
    api.expect(400, "PUT", "/boot-source", {"kernel_image_path": "x"}, fault="after starting")
    b = moving_counters(api.expect(200, "GET", "/labyrinth/metrics"))
    check(a == b and None not in a.values(), f"counters moved while paused: {a} then {b}")
    check(vm.proc.poll() is None, "the VM runs on while paused")
    api.expect(204, "PATCH", "/vm", {"state": "Resumed"})
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Running", f"after PATCH Resumed: {info}")
    api.expect(204, "PATCH", "/vm", {"state": "Resumed"})
    deadline = time.monotonic() + 300
    c = b
    while time.monotonic() < deadline and vm.proc.poll() is None:
        c = moving_counters(api.expect(200, "GET", "/labyrinth/metrics"))
        if all(c[k] > b[k] for k in ("rx_frames", "irqs", "generated", "pages_returned")):
            break
    check(all(c[k] > b[k] for k in ("rx_frames", "irqs", "generated", "pages_returned")),
          f"counters did not move again after resume: {b} then {c}")


def exact_books(m, what):
    """At exit: every frame pktgen made counted once (delivered or dropped by reason), and
    every page not free is one the guest holds."""
    pool = m["pool"]
    nic = m["lnics"][0]
    drops = sum(v for k, v in nic["rx_drops"].items() if k != "generator_overrun")
    check(nic["pktgen"]["generated"] == nic["rx_frames"] + drops,
          f"{what}: generated {nic['pktgen']['generated']} != rx_frames {nic['rx_frames']}"
          f" + drops {drops}")
    check(pool["in_use"] == sum(n["pages_with_guest"] for n in m["lnics"]),
          f"{what}: pool in_use {pool['in_use']} != pages with the guest")
    check(pool["free_clean"] + pool["free_dirty"] + pool["in_use"] == pool["total_pages"],
          f"{what}: free + in_use != total_pages ({pool})")
    check(pool["violations"] == 0, f"{what}: pool violations {pool['violations']}")


def kvm_tests(args, contract, tmp):
    sock = os.path.join(tmp, "api.sock")
    serial = os.path.join(tmp, "serial")
    at_exit = os.path.join(tmp, "at-exit.json")
    vm = Labyrinth(args.binary, sock, ["--serial-out", serial, "--metrics", at_exit])
    api = Api(sock, contract)
    # From nothing: a guest that takes generated frames until it is stopped.
    api.expect(204, "PUT", "/boot-source", {
        "kernel_image_path": os.path.join(args.guest_dir, "lnic_sink.elf"),
        "boot_args": "mode=irq wait_ms=600000 idle_ms=600000"})
    api.expect(204, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    api.expect(204, "PUT", "/labyrinth", raw=json.dumps({
        "pool": {"chunk_size_kib": 2048, "initial_chunks": 1, "max_chunks": 4},
        "lnics": [{"id": "lnic0", "backend": {"type": "pktgen", "rate_pps": 2000, "frame_size": 64}}]}))
    metrics = os.path.join(tmp, "metrics")
    open(metrics, "w").close()
    api.expect(204, "PUT", "/metrics", {"metrics_path": metrics})
    api.expect(200, "GET", "/vm/config")
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Not started", f"before start: {info}")
    api.expect(204, "PUT", "/actions", {"action_type": "InstanceStart"})
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Running", f"after start: {info}")
    cfg = api.expect(200, "GET", "/vm/config")
    check(cfg and cfg["machine-config"]["mem_size_mib"] == 64, f"GET /vm/config running: {cfg}")
    api.expect(200, "GET", "/machine-config")

    # Live metrics: the guest's frames arrive while we watch, the VM keeps running.
    first = api.expect(200, "GET", "/labyrinth/metrics")
    check(first and "pool" in first and len(first.get("lnics", [])) == 1, f"metrics {first}")
    deadline = time.monotonic() + 300
    rx = 0
    while time.monotonic() < deadline and vm.proc.poll() is None:
        m = api.expect(200, "GET", "/labyrinth/metrics")
        rx = lnic_counter(m or {}, "rx_frames")
        if rx > 0:
            break
    check(rx > 0, f"no frame counted while running: {m}")
    later = api.expect(200, "GET", "/labyrinth/metrics")
    check(lnic_counter(later or {}, "rx_frames") >= rx, "rx_frames went backwards")
    pause_resume(api, vm)

    # Wrong state.
    api.expect(400, "PUT", "/actions", {"action_type": "InstanceStart"}, fault="already started")
    api.expect(400, "PUT", "/boot-source", {"kernel_image_path": "x"}, fault="after starting")
    api.expect(400, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64}, fault="after starting")
    api.expect(400, "PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "t"},
               fault="after starting")
    api.expect(400, "PUT", "/labyrinth", raw="{}", fault="after starting")
    # SendCtrlAltDel on a guest that never reads its keyboard: the keys wait in the
    # i8042 (one in the buffer, the rest queued) until a third has no room.
    api.expect(204, "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    api.expect(204, "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    api.expect(400, "PUT", "/actions", {"action_type": "SendCtrlAltDel"}, fault="still waiting")
    api.expect(400, "PATCH", "/vm", raw='{"state": "Stopped"}', fault="vm.state")
    api.expect(204, "PUT", "/actions", {"action_type": "FlushMetrics"})
    with open(metrics) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    check(len(lines) >= 1 and "utc_timestamp_ms" in lines[-1] and "pool" in lines[-1],
          f"FlushMetrics wrote {lines}")
    # Bad input while the VM runs: answered, and the VM keeps running.
    check(status_of(raw_exchange(sock, b"GARBAGE\r\n\r\n")) == 400, "malformed request while running")
    check(status_of(raw_exchange(sock, b"PUT /actions HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n")) == 413,
          "huge body while running")
    check(raw_exchange(sock, b"", timeout=120) == b"", "a silent client while running")
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Running" and vm.proc.poll() is None, "still running after bad input")
    # To stopped.
    status = vm.stop()
    check(status == 143, f"SIGTERM while running: exit {status} ({vm.output()})")
    check(not os.path.exists(sock), "the socket is removed at exit")
    with open(at_exit) as f:
        exact_books(json.load(f), "after pause/resume and SIGTERM")

    # --config with --api-sock: running at once, configuration closed.
    cfg_path = os.path.join(tmp, "vm.json")
    with open(cfg_path, "w") as f:
        json.dump({"boot-source": {"kernel_image_path": os.path.join(args.guest_dir, "lnic_sink.elf"),
                                   "boot_args": "mode=irq wait_ms=600000 idle_ms=600000"},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
                   "serial": {"output": serial, "input": "none"},
                   "labyrinth": {"lnics": [{"id": "lnic0", "backend": {"type": "loopback"}}]}}, f)
    vm = Labyrinth(args.binary, sock, ["--config", cfg_path])
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Running", f"--config: {info}")
    api.expect(400, "PUT", "/boot-source", {"kernel_image_path": "x"}, fault="after starting")
    m = api.expect(200, "GET", "/labyrinth/metrics")
    check(m is not None and [n["id"] for n in m.get("lnics", [])] == ["lnic0"], f"--config metrics {m}")
    status = vm.stop(signal.SIGINT)
    check(status == 130, f"SIGINT while running: exit {status}, expected 130 ({vm.output()})")


def virtio_rx(api):
    m = api.expect(200, "GET", "/labyrinth/metrics")
    nets = (m or {}).get("virtio_net", [])
    return nets[0]["rx_frames"] if nets else -1


def pause_with_frames_waiting(api, tap, frames=20):
    """Pause a Linux guest with virtio-net while frames arrive on its TAP: nothing reaches
    the guest while paused, and at resume every frame does, once. The TAP side sends
    nothing of its own (no IPv6 on it), so the count is exact."""
    v6 = f"/proc/sys/net/ipv6/conf/{tap}/disable_ipv6"
    if os.path.exists(v6):
        with open(v6, "w") as f:
            f.write("1")
    subprocess.run(["ip", "link", "set", tap, "up"], check=True)
    before = virtio_rx(api)
    api.expect(204, "PATCH", "/vm", {"state": "Paused"})
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Paused", f"after PATCH /vm Paused: {info}")
    # Broadcast frames of a local experimental ethertype, written to the TAP's device: they
    # queue for labyrinth's read of the TAP.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((tap, 0))
    frame = b"\xff" * 6 + bytes.fromhex("024c42000099") + b"\x88\xb5" + bytes(46)
    for _ in range(frames):
        s.send(frame)
    s.close()
    # While paused the count stays: every read over a second (a device that were not
    # paused takes them within milliseconds of the write, even in the test VM).
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        got = virtio_rx(api)
        check(got == before, f"virtio-net rx_frames {before} -> {got} while paused")
        if got != before:
            break
    api.expect(204, "PATCH", "/vm", {"state": "Resumed"})
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Running", f"after PATCH /vm Resumed: {info}")
    deadline = time.monotonic() + 120
    got = virtio_rx(api)
    while got < before + frames and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a counter, not synchronising on a duration
        got = virtio_rx(api)
    check(got == before + frames, f"virtio-net rx_frames {before} -> {got} after resume, "
                                  f"expected {before + frames}: frames lost or counted twice")


def linux_tests(args, contract, tmp):
    sock = os.path.join(tmp, "api.sock")
    serial = os.path.join(tmp, "serial")
    tap = f"labyapi{os.getpid() % 100000}"
    vm = Labyrinth(args.binary, sock, ["--serial-out", serial, "--log-level", "info"], timeout=30)
    api = Api(sock, contract)
    api.expect(204, "PUT", "/boot-source", {
        "kernel_image_path": args.kernel, "initrd_path": args.initrd,
        # A plain command line: atkbd probes the keyboard (devices/legacy/ps2_keyboard.h),
        # and takes its Ctrl-Alt-Del.
        "boot_args": "console=ttyS0 reboot=k panic=-1 labyrinth.test=cad"})
    api.expect(204, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256})
    # A TAP of that name does not exist: opening it makes one, gone with labyrinth.
    api.expect(204, "PUT", f"/network-interfaces/eth0",
               {"iface_id": "eth0", "host_dev_name": tap, "guest_mac": "02:4c:42:00:00:01"})
    api.expect(200, "GET", "/vm/config")
    api.expect(204, "PUT", "/actions", {"action_type": "InstanceStart"})
    info = api.expect(200, "GET", "/")
    check(info and info["state"] == "Running", f"after start: {info}")
    cfg = api.expect(200, "GET", "/vm/config")
    check(cfg and cfg["network-interfaces"] and cfg["network-interfaces"][0]["host_dev_name"] == tap,
          f"GET /vm/config running: {cfg}")
    # The guest is ready for the keys once its init says so (the serial output, polled).
    deadline = time.monotonic() + 900
    ready = False
    while not ready and time.monotonic() < deadline and vm.proc.poll() is None:
        with open(serial, errors="replace") as f:
            ready = "labyrinth-test: cad waiting" in f.read()
        if not ready:
            time.sleep(0.2)  # polling the console for a line, not synchronising on a duration
    check(ready, f"the guest's init never got ready ({vm.output()[-2000:]})")
    m = api.expect(200, "GET", "/labyrinth/metrics")
    nets = (m or {}).get("virtio_net", [])
    check(len(nets) == 1 and nets[0].get("iface_id") == "eth0" and nets[0].get("host_dev_name") == tap,
          f"live metrics of the virtio-net: {nets}")
    pause_with_frames_waiting(api, tap)
    api.expect(204, "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    try:
        status = vm.proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        status = vm.stop(signal.SIGKILL)
    with open(serial, errors="replace") as f:
        console = f.read()
    check(status == 0, f"after SendCtrlAltDel: exit {status}, expected 0 ({vm.output()[-2000:]}"
                       f" console: {console[-2000:]})")
    check("labyrinth-test: cad status" not in console, f"init timed out instead: {console[-500:]}")
    check("guest reset through the i8042" in vm.output(), f"not the i8042 reset: {vm.output()[-2000:]}")
    check(not os.path.exists(sock), "the socket is removed at exit")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--guest-dir", required=True)
    p.add_argument("--mode", choices=["host", "kvm", "linux"], required=True)
    p.add_argument("--kernel", help="--mode linux: the stock kernel (build/vm/linux-guest/vmlinuz)")
    p.add_argument("--initrd", help="--mode linux: guest/linux/make_initramfs.sh's archive")
    p.add_argument("--contract", default=CONTRACT)
    args = p.parse_args()
    contract = Contract(args.contract)
    # /run is the test VM's own tmpfs (its /tmp is the host's, over 9p).
    base = "/run" if os.environ.get("LABYRINTH_IN_TEST_VM") and os.access("/run", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="labyrinth-api-", dir=base) as tmp:
        try:
            {"host": host_tests, "kvm": kvm_tests, "linux": linux_tests}[args.mode](args, contract, tmp)
        finally:
            for vm in started:
                status = vm.proc.poll()
                if (failures or sys.exc_info()[0]) and status not in (None, 0, 130, 143):
                    print(f"labyrinth (pid {vm.proc.pid}) ended with status {status}; its output:\n"
                          f"{vm.output()[-6000:]}")
    print(f"api_test --mode {args.mode}: {checks - len(failures)}/{checks} checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
