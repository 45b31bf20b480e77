#!/usr/bin/env bash
# Installs this checkout into both VMs of the bed as an operator would:
# `make install` there, a settings file naming the peer, the bed's shared
# secret, then `systemctl enable ctrfs` and (re)start it. The binary and man pages are
# built here first and copied with their mtimes, so make in the guest finds
# them up to date and nothing compiles under emulation. The debian
# template's rootfs archive is copied in from this host's cache (the guests
# reach no mirror).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
src=$(cd "$here/../.." && pwd)
export PATH=/usr/local/go/bin:$PATH

version=${VERSION:-$(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)}
make -C "$src" --no-print-directory build man VERSION="$version"

# The secret is the bed's: made once per bed, gone with its run directory.
mkdir -p "$VMTEST_RUNDIR"
secret=$VMTEST_RUNDIR/secret
[ -s "$secret" ] || (umask 077 && head -c 32 /dev/urandom > "$secret")

# The debian template, built on this host through ctrfs's own code path if
# the shared cache lacks it (template.sh).
tcache=$CTRFS_CACHE/templates
[ -s "$tcache/debian.tar.zst" ] || "$here/template.sh" "$tcache"

install_one() {
  local v=$1 p name addr opts
  p=$(vm_peer "$v")
  name=$(vm_name "$v")
  addr=$(vm_addr "$v")
  echo "vmtest: installing ctrfs $version in VM $v"
  (cd "$src" && { git ls-files; echo bin/ctrfs; echo bin/version; ls docs/man/*; } |
    tar -c --files-from=- --ignore-failed-read) |
    vm_ssh "$v" 'rm -rf /root/ctrfs && mkdir /root/ctrfs && tar -x -C /root/ctrfs'
  vm_ssh "$v" "make -C /root/ctrfs --no-print-directory install VERSION='$version' >/root/ctrfs-install.log 2>&1 ||
    { cat /root/ctrfs-install.log; exit 1; }
    grep -q 'go build' /root/ctrfs-install.log && { echo 'make install rebuilt the binary in the guest' >&2; exit 1; }; true"
  vm_ssh "$v" 'install -d -m 0700 /etc/ctrfs && umask 077 && cat > /etc/ctrfs/secret' < "$secret"
  opts="--mount /mnt/ctrfs --lxcpath /var/lib/lxc --store /var/lib/ctrfs --name $name --subnet $VMTEST_SUBNET"
  opts+=" --bind $addr:$VMTEST_GOSSIP_PORT --secret-file /etc/ctrfs/secret --join $(vm_addr "$p"):$VMTEST_GOSSIP_PORT"
  vm_ssh "$v" "sed -i 's|^CTRFS_OPTS=.*|CTRFS_OPTS=\"$opts\"|' /etc/default/ctrfs && grep ^CTRFS_OPTS /etc/default/ctrfs"
  # The template cache is STORE/templates by default.
  (cd "$tcache" && tar -c debian.tar.zst debian.info) |
    vm_ssh "$v" 'install -d -m 0700 /var/lib/ctrfs /var/lib/ctrfs/templates && tar -x -p -C /var/lib/ctrfs/templates'
  # restart, not just --now: on a kept bed the daemon of the last install
  # runs still, and would go on serving the old binary.
  vm_ssh "$v" 'systemctl daemon-reload && systemctl enable ctrfs 2>&1 && systemctl restart ctrfs && systemctl is-active ctrfs'
}

for v in ${VMTEST_VMS:-A B}; do install_one "$v"; done
