# Sourced by scripts/main.sh and scripts/test.sh: decides where KVM work runs.
#
#   source scripts/kvm_env.sh
#   kvm_decide build/labyrinth      # sets KVM_WHERE=native|vm and prints one line saying which
#   kvm_run CMD...                   # runs CMD natively, or inside the test VM (scripts/vm.sh)
#
# Native where this machine's /dev/kvm boots a guest; inside the test VM (QEMU TCG with
# a real kvm_amd, scripts/vm.sh) where it does not, or on demand with LABYRINTH_TEST_VM=1
# (LABYRINTH_TEST_VM=0 forbids the VM: no usable /dev/kvm is then an error).

kvm_usable() {  # $1: a built labyrinth binary
  [[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]] || return 1
  "$1" run --config configs/hello.json >/dev/null 2>&1
}

kvm_decide() {
  local labyrinth="$1"
  case "${LABYRINTH_TEST_VM:-auto}" in
    1)
      KVM_WHERE=vm
      echo "kvm: running KVM work inside the test VM (LABYRINTH_TEST_VM=1)"
      ;;
    0)
      kvm_usable "$labyrinth" || {
        echo "kvm: /dev/kvm cannot run a guest here and LABYRINTH_TEST_VM=0 forbids the test VM" >&2
        return 2
      }
      KVM_WHERE=native
      echo "kvm: running KVM work natively on /dev/kvm (LABYRINTH_TEST_VM=0)"
      ;;
    *)
      if kvm_usable "$labyrinth"; then
        KVM_WHERE=native
        echo "kvm: running KVM work natively on this machine's /dev/kvm"
      else
        KVM_WHERE=vm
        echo "kvm: no usable /dev/kvm here: running KVM work inside the test VM (scripts/vm.sh)"
      fi
      ;;
  esac
  export KVM_WHERE
}

kvm_run() {
  if [[ ${KVM_WHERE:-native} == vm ]]; then
    scripts/vm.sh "$@"
  else
    "$@"
  fi
}
