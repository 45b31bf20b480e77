# Sourced by the scripts of the two-VM test bed (docs/vmtest.md): names,
# addresses and paths in one place. Nothing here runs anything.

# The image, its recipe hash, the VMs' kernels and the bed's root ssh key
# are kept; the run directory (overlays, pids, consoles, the bed's secret)
# lives as long as the bed.
VMTEST_CACHE=${VMTEST_CACHE:-/var/cache/ctrfs/vm}
VMTEST_RUNDIR=${VMTEST_RUNDIR:-$VMTEST_CACHE/run}
VMTEST_KEY=$VMTEST_CACHE/id_ed25519
CTRFS_CACHE=${CTRFS_CACHE:-/var/cache/ctrfs}

# Names no test lane uses (lanes: ctrfstN bridges, 10.9N.0.0/16, 127.0.N.x;
# the demo: ctrfsbr0, 10.87.0.0/16). vmtbr0 carries ssh, gossip and
# migrations; vmtbr1 is the containers' segment that each VM's ctrfsbr0
# joins through its second NIC.
VMTEST_MGMT_BR=vmtbr0
VMTEST_MGMT_HOST=10.213.0.1/24
VMTEST_SEG_BR=vmtbr1
# The containers' subnet inside the VMs (ctrfs --subnet); the host's own
# address on it lets a client here reach the containers. ctrfs gives the
# bridge .0.1 and never hands out .0.0 or the broadcast; .0.2 could in
# principle be picked for a container (1 in 65533 per container).
VMTEST_SUBNET=10.214.0.0/16
VMTEST_SEG_HOST=10.214.0.2/16

# Per VM: its name (hostname and ctrfs --name), management address, taps.
# A boots bookworm's own kernel (6.1), B the newest one of bookworm-backports.
vm_name() { case $1 in A) echo vma ;; B) echo vmb ;; *) echo "no VM $1 (A or B)" >&2; return 1 ;; esac; }
vm_addr() { case $1 in A) echo 10.213.0.11 ;; B) echo 10.213.0.12 ;; esac; }
vm_peer() { case $1 in A) echo B ;; B) echo A ;; esac; }
vm_tap() { echo "vmt$1$2"; } # vm_tap A 0: A's management tap
vm_mac() { case $1 in A) echo "52:54:00:d5:0a:0$2" ;; B) echo "52:54:00:d5:0b:0$2" ;; esac; }
VMTEST_GOSSIP_PORT=7946

vm_ssh_opts=(-i "$VMTEST_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=8 -o BatchMode=yes)
# bed_teardown WHO T0: the EXIT trap of a script that brings the bed up
# (run.sh, bench.sh; WHO prefixes its lines, T0 is its start in SECONDS):
# the bed goes down unless VMTEST_KEEP=1, then the time and exit status.
bed_teardown() {
  local rc=$? who=$1 t0=$2
  if [ "${VMTEST_KEEP:-0}" = 1 ]; then
    echo "$who: VMTEST_KEEP=1: the bed stays up; scripts/vmtest/vm.sh ssh A|B, then vm.sh down"
  else
    "$(dirname "${BASH_SOURCE[0]}")/vm.sh" down || true
  fi
  echo "$who: $((SECONDS - t0)) s in all, exit $rc"
  exit "$rc"
}

# vm_ssh A CMD...: runs CMD as root in VM A.
vm_ssh() { local v=$1; shift; ssh "${vm_ssh_opts[@]}" "root@$(vm_addr "$v")" "$@"; }
