#!/usr/bin/python3 -IS
# tests/kvm-unit-tests/labyrinth-qemu.py — the QEMU command line that kvm-unit-tests'
# x86/run builds, translated into a Labyrinth configuration and run. Called through
# tests/kvm-unit-tests/labyrinth-qemu, a bash front that answers the bare probes
# (`--help`, `-device ?`) itself: the texts below are the same as its.
#
#   QEMU=tests/kvm-unit-tests/labyrinth-qemu ACCEL=kvm ./run_tests.sh    (in the suite)
#
# The suite drives a VMM through QEMU's options and QEMU's exit-status conventions
# (scripts/arch-run.bash, scripts/vmm.bash, x86/run); this shim speaks both so that
# run_tests.sh runs unmodified against Labyrinth:
# - `--help` / `-h`: a first line naming QEMU (search_qemu_binary greps for it);
#   `-device ?`: the devices Labyrinth provides, in QEMU's `name "..."` form (x86/run
#   greps for "pc-testdev" and "pci-testdev").
# - An option Labyrinth does not provide (another CPU model, a device it does not emulate,
#   q35, ...) is refused *before* the kernel is looked at, with one line that names it:
#   the suite's premature_failure() check then reports the test as SKIP with that line.
#   A missing kernel gives QEMU's "could not load kernel" wording, which that check
#   treats as "the VMM works".
# - `-smp N` above Labyrinth's limit answers like QEMU ("... The max CPUs supported by
#   machine 'labyrinth' is M"), which qemu_probe_maxsmp parses.
# - The configuration goes to Labyrinth through a memfd (--config /proc/self/fd/N) and the
#   shim then *replaces itself* with labyrinth (exec): the suite's `timeout` signals the
#   VMM directly, and there is no temporary file to clean up after a kill.
# - Exit status: Labyrinth's own. A test kernel ends through the isa-debug-exit port
#   (status (v << 1) | 1, as QEMU), so a pass is 1, which the suite's fixup turns into 0.
#   Labyrinth logs at `warn` only, so that a passing test leaves nothing on stderr that
#   qemu_fixup_return_code would read as a failure.
# Debian's /usr/bin/python3 on purpose, started -I -S (no site-packages scan, no
# environment) and importing nothing but sys and os (frozen into 3.11's interpreter; the
# JSON is written by hand): the suite calls the shim ~10 times per test (--help, three
# `-device ?`, the premature-failure probe, the run; twice over), and inside the test VM
# every file Python opens at start is a 9p round trip under TCG (docs/kvm-unit-tests.md:
# ~29 s a call for the plain `python3` start on a loaded host). A python3 found through a
# version manager's PATH shims (pyenv) cost ~2 s a call on the host.
# LABYRINTH_SHIM_PRINT=1 prints the configuration and the command instead of running it
# (tests/scripts/kut_shim_test.sh). LABYRINTH (default: build/labyrinth beside this tree)
# names the binary.
import os
import sys

PROG = "labyrinth-qemu"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_VCPUS = 32  # vmm/config/config.h ConfigLimits::max_vcpus
# What `-device ?` lists: the devices every Labyrinth VM has at the ports QEMU's have.
DEVICES = {
    "isa-debug-exit": "ISA",  # port 0xf4, status (v << 1) | 1
    "pc-testdev": "ISA",  # ports 0xe0-0xeb, irq lines 0x2000-0x2017, MMIO 0xff000000:
                          # labyrinth.pc_testdev, on the VM only when asked for (x86/run does)
    "pci-testdev": "PCI",  # slot 12, BAR0 MMIO 0xd2000000, BAR1 ports 0xc000:
                           # labyrinth.pci_testdev; x86/run asks for it once it is listed
}
# CPU models: Labyrinth gives the guest what KVM supports on this host (as QEMU's
# `host`); QEMU's `max` under KVM is the same set.
CPU_MODELS = {"host", "max"}
# A smaller model (`qemu64,+x2apic,+tsc-deadline`, as the x2apic, ioapic, umip,
# pcid-enabled and vmexit_tscdeadline tests ask; Opteron_G1 for syscall, IvyBridge for
# access-reduced-maxphyaddr) runs on the host's set: a superset of what was asked, with
# features only *added* taken as KVM has them (were one missing on the host, the test
# finds it absent as on any such host). QEMU under KVM gives every model the host's
# vendor, as this does, unless vendor= says otherwise.
SUPERSET_MODELS = {"qemu64", "kvm64", "Opteron_G1", "IvyBridge"}
# What a -cpu option can take away or change: a CPU template (Firecracker's cpuid_modifiers,
# the "cpu-config" section, docs/vmm.md) forcing the bits. name: (leaf, subleaf, KVM flags
# of that entry, register, bit). Only the features the suite's tests remove; any other
# is refused. (tsc-deadline cannot be removed: Labyrinth always sets it, vmm/boot/cpuid.h.)
CPU_FEATURES = {
    "x2apic": (0x1, 0, 0, "ecx", 21),
    "pcid": (0x1, 0, 0, "ecx", 17),
    "invpcid": (0x7, 0, 1, "ebx", 10),  # leaf 7 has subleaves: KVM_CPUID_FLAG_SIGNIFCANT_INDEX
}
VENDOR_LEAVES = (0x0, 0x80000000)  # QEMU writes the vendor string into both
PHYS_BITS_RANGE = (32, 52)  # QEMU's limits for phys-bits
# Options that change nothing under Labyrinth because it already behaves that way.
NO_VALUE = {"--no-reboot", "-no-reboot", "-nodefaults", "--nodefaults", "-enable-kvm",
            "-no-user-config", "-nographic"}


def die(message, status=2):
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(status)


def parse_size_mib(text):
    # QEMU's -m forms the suite uses: N (MiB), NM, NG, optionally "size=" and a "B".
    t = text[len("size="):] if text.startswith("size=") else text
    if t[-1:] in ("B", "b"):
        t = t[:-1]
    unit = t[-1:] if t[-1:] in ("M", "m", "G", "g") else ""
    digits = t[:-1] if unit else t
    if not digits.isascii() or not digits.isdigit():
        die(f"-m {text}: not a size (N, NM or NG)")
    n = int(digits)
    return n * 1024 if unit in ("G", "g") else n


def json_text(value, indent=0):
    # The configuration as JSON without importing json (see the note at the top): dicts,
    # lists, strings, ints and booleans are all it holds.
    pad = "  " * (indent + 1)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [f"{pad}{json_text(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    if isinstance(value, str):
        out = []
        for c in value:
            if c in ('"', "\\"):
                out.append("\\" + c)
            elif ord(c) < 0x20:
                out.append(f"\\u{ord(c):04x}")
            else:
                out.append(c)
        return '"' + "".join(out) + '"'
    items = [f"{pad}{json_text(k)}: {json_text(v, indent + 1)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"


def feature_switch(prop):
    # "+name" / "name=on": (name, True); "-name" / "name=off": (name, False); else None.
    # A CPU feature name is letters, digits, '_', '.' and '-'.
    if prop[:1] in ("+", "-"):
        name, on = prop[1:], prop[0] == "+"
    elif prop.endswith(("=on", "=off")):
        name, _, value = prop.rpartition("=")
        on = value == "on"
    else:
        return None
    if name == "" or not name.isascii() or not all(
            c.islower() or c.isdigit() or c in "_.-" for c in name):
        return None
    return name, on


def check_cpu(spec):
    # The template's cpuid_modifiers for -cpu spec ([] for the host's CPUID as it is), or a
    # refusal naming the first property that cannot be honoured.
    model, *props = spec.split(",")
    if model not in SUPERSET_MODELS and model not in CPU_MODELS:
        die(f"-cpu {spec}: CPU model {model} is not supported: Labyrinth gives the guest the "
            "host's KVM-supported CPUID (as QEMU's host or max)")
    forced = {}  # (leaf, subleaf, flags, register) -> [filter, bits]

    def force(leaf, subleaf, flags, reg, mask, bits):
        f = forced.setdefault((leaf, subleaf, flags, reg), [0, 0])
        f[0] |= mask
        f[1] = (f[1] & ~mask) | (bits & mask)

    for p in props:
        switch = feature_switch(p)
        key, _, value = p.partition("=")
        if switch is not None and switch[1] and model in SUPERSET_MODELS:
            continue  # added: the host's set has it or the test finds it absent
        if switch is not None and not switch[1] and switch[0] in CPU_FEATURES:
            leaf, subleaf, flags, reg, bit = CPU_FEATURES[switch[0]]
            force(leaf, subleaf, flags, reg, 1 << bit, 0)
        elif key == "vendor" and len(value) == 12 and value.isascii() and value.isprintable():
            # CPUID's vendor registers: EBX, EDX, ECX, four characters each, little-endian.
            words = [int.from_bytes(value[i:i + 4].encode(), "little") for i in (0, 4, 8)]
            for leaf in VENDOR_LEAVES:
                for reg, word in zip(("ebx", "edx", "ecx"), words):
                    force(leaf, 0, 0, reg, 0xFFFFFFFF, word)
        elif key == "vendor":
            die(f"-cpu {spec}: vendor must be 12 printable ASCII characters, got {value!r}")
        elif key == "phys-bits":
            lo, hi = PHYS_BITS_RANGE
            if not value.isascii() or not value.isdigit() or not lo <= int(value) <= hi:
                die(f"-cpu {spec}: phys-bits must be {lo}..{hi}, got {value}")
            force(0x80000008, 0, 0, "eax", 0xFF, int(value))  # MAXPHYADDR, EAX[7:0]
        elif p in ("host-phys-bits=off", "host-phys-bits=false"):
            continue  # the host's width unless phys-bits says otherwise: what Labyrinth does
        elif model in CPU_MODELS and p in ("migratable=no", "host-phys-bits", "host-phys-bits=on"):
            continue
        else:
            die(f"-cpu {spec}: CPU property {p} is not supported (Labyrinth can take away "
                f"{', '.join(sorted(CPU_FEATURES))}, set vendor= and phys-bits=; on "
                f"{', '.join(sorted(SUPERSET_MODELS))} it can add features)")
    modifiers = []
    for (leaf, subleaf, flags, reg), (mask, bits) in forced.items():
        bitmap = "0b" + "".join(
            ("1" if bits >> i & 1 else "0") if mask >> i & 1 else "x" for i in range(31, -1, -1))
        entry = {"register": reg, "bitmap": bitmap}
        for m in modifiers:
            if (m["leaf"], m["subleaf"]) == (f"0x{leaf:x}", f"0x{subleaf:x}"):
                m["modifiers"].append(entry)
                break
        else:
            modifiers.append({"leaf": f"0x{leaf:x}", "subleaf": f"0x{subleaf:x}",
                              "flags": flags, "modifiers": [entry]})
    return modifiers


def check_machine(spec, machine):
    # machine: what the options set so far ({"pit": bool}); updated in place.
    for p in spec.split(","):
        if p.startswith("accel="):
            if p != "accel=kvm":
                die(f"-machine {spec}: only accel=kvm (Labyrinth is a KVM VMM)")
        elif p in ("pc", "type=pc"):
            continue
        elif p in ("pit=on", "pit=off"):
            # labyrinth.pit: KVM's in-kernel PIT or none (vmexit_ipi asks for none).
            machine["pit"] = p == "pit=on"
        else:
            die(f"-machine {spec}: {p} is not supported (Labyrinth has one machine type)")


def check_device(spec):
    name, *props = spec.split(",")
    if name not in DEVICES:
        die(f"-device {spec}: device {name} is not emulated by Labyrinth")
    if name == "isa-debug-exit":
        for p in props:
            key, _, value = p.partition("=")
            if (key, value.lower()) not in (("iobase", "0xf4"), ("iosize", "0x4"), ("iosize", "4")):
                die(f"-device {spec}: Labyrinth's debug-exit port is iobase=0xf4,iosize=0x4 only")
    elif props:
        die(f"-device {spec}: {name} takes no properties")
    return name


def check_global(spec):
    # The suite always passes kvm-pit.lost_tick_policy=discard: Labyrinth's in-kernel PIT
    # runs without tick re-injection (KVM_REINJECT_CONTROL), which is that policy.
    if spec != "kvm-pit.lost_tick_policy=discard":
        die(f"-global {spec}: not supported")


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "-help"):  # as labyrinth-qemu answers it
        print("QEMU emulator version 7.2.0 (compatible command line: Labyrinth's "
              "kvm-unit-tests shim, tests/kvm-unit-tests/labyrinth-qemu)")
        print("usage: labyrinth-qemu -kernel FILE [-initrd FILE] [-append ARGS] [-smp N] "
              "[-m SIZE] [-cpu host|max] [-device isa-debug-exit|pc-testdev|pci-testdev] "
              "[-machine pit=off] ...")
        return 0
    kernel = initrd = None
    append = ""
    smp, mem_mib = 1, 128  # QEMU's defaults
    devices = set()
    machine = {"pit": True}
    cpuid_modifiers = []  # the -cpu option's CPU template (check_cpu)
    args = list(argv)
    i = 0

    def value():
        nonlocal i
        if i + 1 >= len(args):
            die(f"{args[i]} needs a value")
        i += 1
        return args[i]

    while i < len(args):
        a = args[i]
        if a in NO_VALUE:
            pass
        elif a == "-kernel":
            kernel = value()
        elif a == "-initrd":
            initrd = value()
        elif a == "-append":
            append = value()
        elif a == "-smp":
            spec = value()
            first, *rest = spec.split(",")
            count = first[len("cpus="):] if first.startswith("cpus=") else first
            if (not count.isascii() or not count.isdigit() or
                    any(not p.startswith(("cpus=", "maxcpus=")) for p in rest)):
                die(f"-smp {spec}: only -smp N is supported (no topology options)")
            smp = int(count)
        elif a == "-m":
            mem_mib = parse_size_mib(value())
        elif a == "-cpu":
            cpuid_modifiers = check_cpu(value())
        elif a in ("-machine", "-M"):
            check_machine(value(), machine)
        elif a == "-accel":
            if value() != "kvm":
                die("-accel: only kvm (Labyrinth is a KVM VMM)")
        elif a == "-device":
            spec = value()
            if spec in ("?", "help"):  # labyrinth-qemu answers a bare `-device ?` itself
                for name, bus in DEVICES.items():
                    print(f'name "{name}", bus {bus}')
                return 0
            devices.add(check_device(spec))
        elif a == "-global":
            check_global(value())
        elif a == "-display":
            if value() != "none":
                die("-display: only none (Labyrinth has no display)")
        elif a == "-serial":
            if value() != "stdio":
                die("-serial: only stdio")
        else:
            die(f"option {a} is not supported")
        i += 1

    if smp < 1 or smp > MAX_VCPUS:
        # The wording qemu_probe_maxsmp parses: the last word is the limit.
        print(f"{PROG}: Invalid SMP CPUs {smp}. The max CPUs supported by machine "
              f"'labyrinth' is {MAX_VCPUS}", file=sys.stderr)
        return 1
    if kernel is None:
        die("no -kernel given")
    if not os.path.isfile(kernel):
        # QEMU's wording: the suite's premature_failure() check looks for it.
        print(f"{PROG}: could not load kernel '{kernel}': no such file", file=sys.stderr)
        return 1

    boot = {"kernel_image_path": os.path.abspath(kernel), "boot_args": append}
    if initrd is not None:
        boot["initrd_path"] = os.path.abspath(initrd)
    config = {
        "boot-source": boot,
        "machine-config": {"vcpu_count": smp, "mem_size_mib": mem_mib},
        "serial": {"output": "stdout"},
    }
    labyrinth_section = {}
    if "pc-testdev" in devices:
        labyrinth_section["pc_testdev"] = True
    if "pci-testdev" in devices:
        labyrinth_section["pci_testdev"] = True
    if not machine["pit"]:
        labyrinth_section["pit"] = False
    if labyrinth_section:
        config["labyrinth"] = labyrinth_section
    if cpuid_modifiers:
        config["cpu-config"] = {"cpuid_modifiers": cpuid_modifiers}
    labyrinth = os.environ.get("LABYRINTH", os.path.join(ROOT, "build", "labyrinth"))
    text = json_text(config)
    if os.environ.get("LABYRINTH_SHIM_PRINT") == "1":
        print(text)
        print(" ".join([labyrinth, "run", "--config", "CONFIG", "--log-level", "warn"]))
        return 0
    if not os.access(labyrinth, os.X_OK):
        die(f"{labyrinth}: not an executable (build it, or set LABYRINTH)", 1)
    fd = os.memfd_create("labyrinth-config", 0)  # no MFD_CLOEXEC: labyrinth inherits it
    os.write(fd, text.encode())
    os.lseek(fd, 0, os.SEEK_SET)
    sys.stdout.flush()
    os.execv(labyrinth, [labyrinth, "run", "--config", f"/proc/self/fd/{fd}",
                         "--log-level", "warn"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
