#!/usr/bin/env bash
# scripts/vm.sh's own checks, run by scripts/test.sh (~2 min; QEMU TCG, no /dev/kvm needed):
#  1. the command's exit status passes through, and it has a TMPDIR of its own (the
#     host's /tmp is shared with every VM, whose pids repeat); what it writes to the
#     host's files is there when vm.sh returns, and its heartbeat reaches the watchdog
#     through the VM's 9p cache (LABYRINTH_VM_9P_CACHE=loose: a live VM that runs past
#     LABYRINTH_VM_STALL is not stopped; the stall margin is 15 s, as this runs beside
#     a build in scripts/test.sh);
#  2. the VM kernel's tick is the LAPIC timer in periodic mode (docs/test-vm.md, "A lost
#     timer interrupt": with a one-shot tick, a timer interrupt QEMU 7.2 loses is never
#     raised again and the VM wedges);
#  3. the stall watchdog ends a VM whose kernel stops writing its heartbeat (played here
#     by stopping the heartbeat's writer): status 124, the line that says so, the vCPU's state;
#  4. --timeout ends a VM still running then: status 124 and the line that says so.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
  echo "vm_sh_test: FAIL: $*" >&2
  exit 1
}

st=0
written="$(mktemp)"
trap 'rm -f "$written"' EXIT
out="$(LABYRINTH_VM_STALL=25 scripts/vm.sh sh -c 'echo "TMPDIR=$TMPDIR"; test -d "$TMPDIR" || echo "no TMPDIR"
  grep -A16 "^Clock Event Device: lapic" /proc/timer_list; sleep 40; echo "from the VM" >"$1"; exit 7' \
  sh "$written" 2>&1)" || st=$?
((st == 7)) || fail "the command's status 7 came back as $st (a live VM stopped by the stall watchdog?): $out"
[[ $(cat "$written") == "from the VM" ]] || fail "what the VM wrote did not reach the host: '$(cat "$written")'"
grep -q "event_handler: *tick_handle_periodic" <<<"$out" ||
  fail "the VM kernel's lapic tick is not periodic: $out"
grep -q -x 'TMPDIR=.*/runs/run\.[A-Za-z0-9]*/tmp' <<<"$out" && ! grep -q "no TMPDIR" <<<"$out" ||
  fail "the command has no TMPDIR of its own: $out"
echo "vm_sh_test: status passes through; a TMPDIR of its own; the VM's lapic tick is periodic;"
echo "vm_sh_test: its writes reach the host; a live VM outlives LABYRINTH_VM_STALL=25"

st=0
err="$(LABYRINTH_VM_STALL=20 scripts/vm.sh sh -c \
  'kill -STOP "$(cat "$LABYRINTH_VM_RUN/beat.pid")" && sleep 900' 2>&1 >/dev/null)" || st=$?
((st == 124)) || fail "a VM without a heartbeat ended with status $st, not 124: $err"
grep -q '^vm.sh: watchdog: the test VM made no progress for [0-9]* s' <<<"$err" ||
  fail "no stall line from the watchdog: $err"
grep -q '^vm.sh: its vCPU when stopped: RIP=[0-9a-f]* ' <<<"$err" ||
  fail "no vCPU state from the watchdog: $err"
echo "vm_sh_test: a VM without a heartbeat was stopped: $(grep -m1 'watchdog' <<<"$err")"

st=0
err="$(scripts/vm.sh --timeout 40 sleep 900 2>&1 >/dev/null)" || st=$?
((st == 124)) || fail "--timeout 40 ended with status $st, not 124: $err"
grep -q '^vm.sh: watchdog: the test VM ran longer than 40 s and was stopped' <<<"$err" ||
  fail "no timeout line from the watchdog: $err"
echo "vm_sh_test: --timeout 40 stopped the VM"
echo "vm_sh_test: ok"
