#!/usr/bin/env bash
# tests/scripts/kut_shim_test.sh — the kvm-unit-tests QEMU shim
# (tests/kvm-unit-tests/labyrinth-qemu and the labyrinth-qemu.py behind it) answers the suite's probes the way the suite's
# scripts parse them, refuses what Labyrinth does not provide with a line naming it, and
# translates the options x86/run passes into a Labyrinth configuration. The timing wrapper
# in front of either VMM (tests/kvm-unit-tests/timed-vmm) times real runs only, keeps the
# VMM's status, and leaves no VMM behind when the suite's timeout ends it.
# Needs no /dev/kvm (the configuration is printed, not run). Exit status: 0 all passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
shim=tests/kvm-unit-tests/labyrinth-qemu
failed=0
check() {  # name expected-status expected-regex command...
  local name="$1" want_status="$2" want="$3" out status
  shift 3
  out=$("$@" 2>&1)
  status=$?
  if [[ $status -ne $want_status ]] || ! grep -qE -- "$want" <<<"$out"; then
    echo "FAIL $name: status $status (want $want_status), output:"
    sed 's/^/  | /' <<<"$out"
    failed=1
  else
    echo "ok   $name"
  fi
}

# search_qemu_binary: `--help` must mention QEMU; x86/run: `-device ?` lists pc-testdev.
check help 0 '^QEMU emulator version' "$shim" --help
check device-list 0 '^name "pc-testdev"' "$shim" -device '?'
check device-list-debug-exit 0 '^name "isa-debug-exit"' "$shim" -device '?'
check device-list-pci-testdev 0 '^name "pci-testdev", bus PCI' "$shim" -device '?'
# The bash front answers the bare probes itself; labyrinth-qemu.py answers them the same.
check probes-agree 0 '^same$' bash -c \
  "diff <($shim --help) <($shim.py --help) && diff <($shim -device '?') <($shim.py -device help) &&
   echo same"
# Everything else goes through to labyrinth-qemu.py (its refusal, status 2).
check front-passes-on 2 'option -s is not supported' "$shim" -s
# premature_failure: a missing kernel in QEMU's wording, status non-zero.
check missing-kernel 1 "could not load kernel '_NO_FILE_4Uhere_'" "$shim" -kernel _NO_FILE_4Uhere_
# qemu_probe_maxsmp parses the last word of the line with 'SMP CPUs'.
check max-smp 1 "SMP CPUs 300\. The max CPUs supported by machine 'labyrinth' is 32$" \
  "$shim" -kernel _NO_FILE_4Uhere_ -smp 300
# What Labyrinth does not provide is refused before the kernel is looked at (-> SKIP).
check cpu-model 2 'CPU model Haswell is not supported' "$shim" -kernel _NO_FILE_4Uhere_ -cpu Haswell
# A smaller model with features only added runs on the host's set (a superset): no template.
check cpu-superset 0 '"vcpu_count": 1' bash -c \
  "LABYRINTH_SHIM_PRINT=1 $shim -kernel $0 -cpu qemu64,+x2apic,+tsc-deadline | grep -v cpu-config"
# A feature taken away, another vendor, a smaller MAXPHYADDR: a CPU template (cpu-config,
# Firecracker's cpuid_modifiers) forcing those bits, read back through a real JSON parser.
cpu_template() {  # -cpu SPEC -> the template's leaves as "leaf/subleaf/flags reg=bitmap ..."
  LABYRINTH_SHIM_PRINT=1 "$shim" -kernel "$0" -cpu "$1" | head -n -1 | python3 -c '
import json, sys
for m in json.load(sys.stdin)["cpu-config"]["cpuid_modifiers"]:
    print(m["leaf"] + "/" + m["subleaf"] + "/" + str(m["flags"]),
          " ".join(r["register"] + "=" + r["bitmap"] for r in m["modifiers"]))'
}
x=xxxxxxxxxxxxxxxx
check cpu-remove-x2apic 0 "^0x1/0x0/0 ecx=0bxxxxxxxxxx0xxxxx$x\$" cpu_template qemu64,-x2apic,+tsc-deadline
check cpu-remove-pcid 0 "^0x1/0x0/0 ecx=0bxxxxxxxxxxxxxx0x$x\$" cpu_template qemu64,-pcid,-invpcid
check cpu-remove-invpcid 0 "^0x7/0x0/1 ebx=0b${x}xxxxx0xxxxxxxxxx\$" cpu_template qemu64,-pcid,-invpcid
check cpu-remove-off 0 "^0x1/0x0/0 ecx=0bxxxxxxxxxx0xxxxx$x\$" cpu_template max,x2apic=off
leaves() { cpu_template "$1" | wc -l; }
check cpu-add-invpcid 0 '^1$' leaves qemu64,-pcid,+invpcid  # +invpcid: the host's bit, kept
# "GenuineIntel": EBX "Genu", EDX "ineI", ECX "ntel", in leaf 0 and 0x80000000 (as QEMU).
genu=01110101011011100110010101000111 inei=01001001011001010110111001101001
ntel=01101100011001010111010001101110
check cpu-vendor 0 "^0x0/0x0/0 ebx=0b$genu edx=0b$inei ecx=0b$ntel\$" cpu_template max,vendor=GenuineIntel
check cpu-vendor-ext 0 "^0x80000000/0x0/0 ebx=0b$genu edx=0b$inei ecx=0b$ntel\$" \
  cpu_template qemu64,vendor=GenuineIntel
check cpu-vendor-model 0 '^0x0/0x0/0 ebx=0b01101000011101000111010101000001 ' \
  cpu_template Opteron_G1,vendor=AuthenticAMD
check cpu-phys-bits 0 "^0x80000008/0x0/0 eax=0b${x}xxxxxxxx00100100\$" \
  cpu_template IvyBridge,phys-bits=36,host-phys-bits=off
# What the template cannot express is still refused, naming it.
check cpu-remove-other 2 'CPU property -tsc-deadline is not supported' "$shim" -kernel _NO_FILE_4Uhere_ \
  -cpu qemu64,-x2apic,-tsc-deadline
check cpu-vendor-short 2 'vendor must be 12 printable ASCII characters' "$shim" -kernel _NO_FILE_4Uhere_ \
  -cpu max,vendor=Intel
check cpu-phys-bits-range 2 'phys-bits must be 32..52, got 20' "$shim" -kernel _NO_FILE_4Uhere_ \
  -cpu max,phys-bits=20
check cpu-prop-level 2 'CPU property level=7 is not supported' "$shim" -kernel _NO_FILE_4Uhere_ \
  -cpu qemu64,level=7
check cpu-prop 2 'CPU property \+vmx is not supported' "$shim" -kernel _NO_FILE_4Uhere_ -cpu max,+vmx
check q35 2 'q35 is not supported' "$shim" -kernel _NO_FILE_4Uhere_ -M q35,kernel-irqchip=split
check device 2 'device edu is not emulated' "$shim" -kernel _NO_FILE_4Uhere_ -device edu
check debug-exit-port 2 'iobase=0xf4,iosize=0x4 only' "$shim" -device isa-debug-exit,iobase=0x501
check unknown 2 'option -s is not supported' "$shim" -kernel _NO_FILE_4Uhere_ -s
check global 2 '-global kvm-pit.reinject=off: not supported' "$shim" -global kvm-pit.reinject=off
check missing-value 2 '-m needs a value' "$shim" -kernel x -m
check bad-size 2 '-m 2x: not a size' "$shim" -kernel x -m 2x
# The command line x86/run builds, translated.
kernel=$(mktemp)
trap 'rm -f "$kernel"' EXIT
cmd=("$shim" --no-reboot -nodefaults -global kvm-pit.lost_tick_policy=discard -device pc-testdev
     -device isa-debug-exit,iobase=0xf4,iosize=0x4 -display none -serial stdio
     -machine accel=kvm -kernel "$kernel" -smp 2 -m 2g -append "one two" -initrd "$kernel"
     -cpu max)
check translate 0 '"vcpu_count": 2' env LABYRINTH_SHIM_PRINT=1 "${cmd[@]}"
check translate-mem 0 '"mem_size_mib": 2048' env LABYRINTH_SHIM_PRINT=1 "${cmd[@]}"
check translate-args 0 '"boot_args": "one two"' env LABYRINTH_SHIM_PRINT=1 "${cmd[@]}"
check translate-initrd 0 "\"initrd_path\": \"$kernel\"" env LABYRINTH_SHIM_PRINT=1 "${cmd[@]}"
check translate-kernel 0 "\"kernel_image_path\": \"$kernel\"" env LABYRINTH_SHIM_PRINT=1 "${cmd[@]}"
check translate-pc-testdev 0 '"pc_testdev": true' env LABYRINTH_SHIM_PRINT=1 "${cmd[@]}"
check translate-pci-testdev 0 '"pci_testdev": true' env LABYRINTH_SHIM_PRINT=1 "${cmd[@]}" \
  -device pci-testdev
check pci-testdev-props 2 'pci-testdev takes no properties' "$shim" -device pci-testdev,membar=4096
# vmexit_ipi's -machine pit=off: labyrinth.pit false; the PIT stays by default.
check translate-pit-off 0 '"pit": false' env LABYRINTH_SHIM_PRINT=1 "${cmd[@]}" -machine pit=off
check translate-pit-default 0 '"mem_size_mib": 128' bash -c \
  "! LABYRINTH_SHIM_PRINT=1 $shim -kernel $kernel | grep -q '\"pit\"' && LABYRINTH_SHIM_PRINT=1 $shim -kernel $kernel"
check machine-vmport 2 'vmport=on is not supported' "$shim" -kernel x -machine vmport=on
check translate-no-pc-testdev 0 '"mem_size_mib": 128' bash -c \
  "! LABYRINTH_SHIM_PRINT=1 $shim -kernel $kernel | grep -q pc_testdev && LABYRINTH_SHIM_PRINT=1 $shim -kernel $kernel"
# The shim writes its JSON by hand (no json import): quotes, backslashes and control
# characters in -append come back intact through a real JSON parser.
check translate-escaping 0 "^'a \"b\\\\\\\\c\\\\x01'\$" bash -c \
  "LABYRINTH_SHIM_PRINT=1 $shim -kernel $kernel -append \$'a \"b\\\\c\\x01' | head -n -1 |
   python3 -c 'import json, sys; print(repr(json.load(sys.stdin)[\"boot-source\"][\"boot_args\"]))'"
check translate-defaults 0 '"mem_size_mib": 128' env LABYRINTH_SHIM_PRINT=1 "$shim" -kernel "$kernel"
check translate-quiet 0 'run --config CONFIG --log-level warn$' env LABYRINTH_SHIM_PRINT=1 "$shim" -kernel "$kernel"
# The configuration really reaches labyrinth (through the memfd): a binary that prints
# its --config file stands in for labyrinth here; the exec keeps the status.
fake=$(mktemp)
trap 'rm -f "$kernel" "$fake"' EXIT
printf '#!/bin/sh\ncat "$3"; exit 7\n' >"$fake"
chmod +x "$fake"
check exec-memfd 7 '"vcpu_count": 2' env LABYRINTH="$fake" "${cmd[@]}"

# --- timed-vmm: the QEMU= run.sh gives run_tests.sh, in front of either VMM ------------
timed=tests/kvm-unit-tests/timed-vmm
times=$(mktemp)
pidfile=$(mktemp)
trap 'rm -f "$kernel" "$fake" "$times" "$pidfile"' EXIT
tv() { env LABYRINTH_KUT_TIMES="$times" LABYRINTH_KUT_VMM="$@"; }
# The probes go straight to the VMM (here the Labyrinth shim) and are not timed.
check timed-help 0 '^QEMU emulator version' tv "$shim" "$timed" --help
check timed-device-list 0 '^name "pc-testdev"' tv "$shim" "$timed" -device '?'
check timed-premature 1 "could not load kernel '_NO_FILE_4Uhere_'" \
  tv "$shim" TESTNAME=probe "$timed" -kernel _NO_FILE_4Uhere_ -smp 2
check timed-probes-untimed 0 '^empty$' bash -c "[[ ! -s $times ]] && echo empty"
# A real run: the VMM's output and status come through, one line "TESTNAME SECONDS STATUS".
check timed-run 7 '"vcpu_count": 2' tv "$shim" LABYRINTH="$fake" TESTNAME=t1 "${cmd[@]/#$shim/$timed}"
check timed-run-line 0 '^t1 [0-9]+\.[0-9]{3} 7$' cat "$times"
# Without TESTNAME the line still comes, named "-".
check timed-no-name 3 '' tv /bin/sh "$timed" -c 'exit 3'
check timed-no-name-line 0 '^- [0-9]+\.[0-9]{3} 3$' tail -1 "$times"
# Without LABYRINTH_KUT_TIMES nothing is written: the VMM is exec'd.
check timed-no-file 5 '^ran$' env LABYRINTH_KUT_VMM=/bin/sh "$timed" -c 'echo ran; exit 5'
# The suite's `timeout -k 1s --foreground` signals only timed-vmm: SIGTERM reaches the VMM
# (it ends, 143 recorded, the suite sees timeout's 124) ...
: >"$times"
check timed-timeout 124 '' tv /bin/sh TESTNAME=t2 timeout -k 1s --foreground 1s "$timed" \
  -c "echo \$\$ >$pidfile; exec sleep 60 >/dev/null 2>&1"
check timed-timeout-line 0 '^t2 [0-9]+\.[0-9]{3} 143$' cat "$times"
check timed-timeout-gone 0 '^gone$' bash -c "! kill -0 \$(cat $pidfile) 2>/dev/null && echo gone"
# ... and a VMM that ignores SIGTERM dies with timed-vmm's SIGKILL (setpriv --pdeathsig):
# tail --pid returns when the process is gone (bounded by its own timeout, status 124).
# (The fake VMM's output goes to /dev/null: a survivor must not hold check's pipe open.)
check timed-kill 137 '' tv /bin/sh TESTNAME=t3 timeout -k 1s --foreground 1s "$timed" \
  -c "trap '' TERM; echo \$\$ >$pidfile; exec sleep 60 >/dev/null 2>&1"
check timed-kill-gone 0 '^gone$' bash -c \
  "timeout 20 tail --pid=\$(cat $pidfile) -f /dev/null && echo gone"
exit $failed
