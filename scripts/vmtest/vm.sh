#!/usr/bin/env bash
# The test bed's two VMs (docs/vmtest.md), for `make vmtest` and for manual
# work on a bed kept with VMTEST_KEEP=1:
#   vm.sh up            network, overlays, both VMs booted and answering ssh
#   vm.sh down          both VMs killed, overlays, taps and bridges removed
#   vm.sh ssh A|B [CMD] a root shell (or CMD) in VM A or B
#   vm.sh start A|B     boot one VM again on its overlay (after a kill)
#   vm.sh kill A|B      SIGKILL one VM's qemu, as a power cut would
# VM A boots bookworm's kernel, B bookworm-backports'; both run overlays of
# the one image that image.sh builds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

SSH_TIMEOUT=${VMTEST_SSH_TIMEOUT:-900}

# accel: KVM only where the CPU offers hardware virtualisation; this
# machine's /dev/kvm is a paravirtual device under which a stock kernel
# hangs in its decompressor, and it has no vmx/svm flag.
accel() {
  if [ -n "${VMTEST_ACCEL:-}" ]; then
    echo "$VMTEST_ACCEL"
  elif [ -w /dev/kvm ] && grep -qw -e vmx -e svm /proc/cpuinfo; then
    echo kvm
  else
    echo tcg
  fi
}

pid_of() { # prints the pid of VM $1's qemu if it runs
  local f=$VMTEST_RUNDIR/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "vmtest-$1" || return 1
  echo "$pid"
}

start() {
  local v=$1 name addr a opts
  name=$(vm_name "$v")
  addr=$(vm_addr "$v")
  if pid_of "$v" >/dev/null; then
    echo "vmtest: VM $v runs already"
    return 0
  fi
  mkdir -p "$VMTEST_RUNDIR"
  [ -e "$VMTEST_RUNDIR/$v.qcow2" ] ||
    qemu-img create -q -f qcow2 -b "$VMTEST_CACHE/base.img" -F raw "$VMTEST_RUNDIR/$v.qcow2"
  a=$(accel)
  case $a in
    kvm) opts=(-accel kvm -cpu host) ;;
    # One host thread runs both vCPUs (thread=single, VMTEST_TCG_THREAD to
    # change it): with thread=multi a guest on 6.12 died on 2026-12-06 of
    # "Oops: int3" in __schedule while CRIU's restore set a ptrace
    # breakpoint (perf_event_alloc turning a static key on, the kernel
    # patching its own text with int3 while the other vCPU ran it);
    # cross-vCPU code patching under multi-threaded TCG is what breaks,
    # not the guest. This 2-core host gains little from multi anyway.
    tcg) opts=(-accel "tcg,thread=${VMTEST_TCG_THREAD:-single},tb-size=512" -cpu max) ;;
    *) echo "vmtest: VMTEST_ACCEL=$a: kvm or tcg" >&2; return 1 ;;
  esac
  echo "vmtest: booting VM $v ($name, $addr, kernel $(cat "$VMTEST_CACHE/boot/release-$v"), accel $a$([ "$a" = tcg ] && echo ': no vmx/svm CPU flag, software emulation'))"
  qemu-system-x86_64 -name "vmtest-$v" "${opts[@]}" -smp "${VMTEST_SMP:-2}" -m "${VMTEST_MEM:-4096}" \
    -kernel "$VMTEST_CACHE/boot/vmlinuz-$v" -initrd "$VMTEST_CACHE/boot/initrd-$v" \
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 vmtest.name=$name vmtest.addr=$addr/24" \
    -drive "file=$VMTEST_RUNDIR/$v.qcow2,if=virtio,format=qcow2,cache=writeback" \
    -netdev "tap,id=mgmt,ifname=$(vm_tap "$v" 0),script=no,downscript=no" \
    -device "virtio-net-pci,netdev=mgmt,mac=$(vm_mac "$v" 0)" \
    -netdev "tap,id=seg,ifname=$(vm_tap "$v" 1),script=no,downscript=no" \
    -device "virtio-net-pci,netdev=seg,mac=$(vm_mac "$v" 1)" \
    -display none -monitor none -serial "file:$VMTEST_RUNDIR/$v.console" \
    -pidfile "$VMTEST_RUNDIR/$v.pid" -daemonize
}

wait_ssh() {
  local v=$1 t0=$SECONDS
  until vm_ssh "$v" true 2>/dev/null; do
    if ! pid_of "$v" >/dev/null; then
      echo "vmtest: VM $v's qemu is gone; its console: $VMTEST_RUNDIR/$v.console" >&2
      return 1
    fi
    if [ $((SECONDS - t0)) -ge "$SSH_TIMEOUT" ]; then
      echo "vmtest: VM $v: no ssh after $SSH_TIMEOUT s; its console: $VMTEST_RUNDIR/$v.console" >&2
      tail -n 20 "$VMTEST_RUNDIR/$v.console" >&2 || true
      return 1
    fi
    sleep 5
  done
  echo "vmtest: VM $v answers ssh ($((SECONDS - t0)) s after the wait began): $(vm_ssh "$v" uname -r)"
}

kill_vm() {
  local pid
  if pid=$(pid_of "$1"); then
    kill -9 "$pid"
    while [ -e "/proc/$pid" ]; do sleep 0.2; done
    echo "vmtest: VM $1 killed (qemu pid $pid)"
  fi
  rm -f "$VMTEST_RUNDIR/$1.pid"
}

up() {
  [ -s "$VMTEST_CACHE/base.img" ] || { echo "vmtest: no image; run scripts/vmtest/image.sh" >&2; return 1; }
  "$here/net.sh" up
  start A
  start B
  wait_ssh A
  wait_ssh B
}

down() {
  kill_vm A
  kill_vm B
  "$here/net.sh" down
  rm -rf "$VMTEST_RUNDIR"
  echo "vmtest: bed torn down"
}

cmd=${1:-}
shift || true
case $cmd in
  up) up ;;
  down) down ;;
  ssh) v=${1:?A or B}; shift; vm_name "$v" >/dev/null; exec ssh "${vm_ssh_opts[@]}" -t "root@$(vm_addr "$v")" "$@" ;;
  start) vm_name "${1:?A or B}" >/dev/null; start "$1"; wait_ssh "$1" ;;
  kill) vm_name "${1:?A or B}" >/dev/null; kill_vm "$1" ;;
  *) echo "usage: $0 up|down|ssh A|B [CMD]|start A|B|kill A|B" >&2; exit 2 ;;
esac
