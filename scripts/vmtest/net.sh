#!/usr/bin/env bash
# The test bed's own network on the host: up makes two bridges and a tap per
# VM NIC, down removes exactly those (by name; the host's own bridges,
# containers and addresses are never touched). Idempotent both ways.
#   vmtbr0  10.213.0.1/24: ssh, gossip and migrations (VMs .11 and .12)
#   vmtbr1  the containers' segment (each VM's ctrfsbr0 has its second NIC
#           as a port), with the host's own address on it for the clients
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

bridge_up() { # NAME ADDR
  ip link show "$1" >/dev/null 2>&1 || ip link add "$1" type bridge
  ip addr replace "$2" dev "$1"
  ip link set "$1" up
}

up() {
  bridge_up "$VMTEST_MGMT_BR" "$VMTEST_MGMT_HOST"
  bridge_up "$VMTEST_SEG_BR" "$VMTEST_SEG_HOST"
  for v in A B; do
    for n in 0 1; do
      t=$(vm_tap "$v" "$n")
      ip link show "$t" >/dev/null 2>&1 || ip tuntap add dev "$t" mode tap
      br=$VMTEST_MGMT_BR
      [ "$n" = 1 ] && br=$VMTEST_SEG_BR
      ip link set "$t" master "$br"
      ip link set "$t" up
    done
  done
}

down() {
  for v in A B; do
    for n in 0 1; do
      t=$(vm_tap "$v" "$n")
      ! ip link show "$t" >/dev/null 2>&1 || ip link del "$t"
    done
  done
  for br in "$VMTEST_MGMT_BR" "$VMTEST_SEG_BR"; do
    ! ip link show "$br" >/dev/null 2>&1 || ip link del "$br"
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
