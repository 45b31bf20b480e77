#!/usr/bin/env bash
# Installs this checkout into both VMs of the bed as an operator would:
# `make install` there, a settings file naming the peer, the bed's shared
# secret, then `systemctl enable ctrfs` and (re)start it. The binary and man pages are
# built here first and copied with their mtimes, so make in the guest finds
# them up to date and nothing compiles under emulation. The debian
# template's rootfs archive is copied in from this host's cache (the guests
# reach no mirror), and so is this checkout's CRIU where a guest runs
# another: a kept bed, or an image built before the CRIU patches changed,
# would otherwise test an older CRIU than the checkout ships.
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
# the shared cache lacks it or holds one of another recipe (template.sh):
# the guests' daemons would otherwise try to build it, from no mirror.
tcache=$CTRFS_CACHE/templates
"$here/template.sh" "$tcache"

# This checkout's CRIU, the .deb image.sh puts in the image (named after
# scripts/criu-patches' digest). Not built here: scripts/criu-deb.sh also
# installs it on this host, which the bed's install should not do behind
# anyone's back.
criu_version=$("$src/scripts/criu-deb.sh" --print-version)
criu_deb=$CTRFS_CACHE/criu_${criu_version}_$(dpkg --print-architecture).deb
[ -s "$criu_deb" ] || { echo "vmtest: no $criu_deb: build this checkout's CRIU first (scripts/criu-deb.sh, or scripts/vmtest/image.sh)" >&2; exit 1; }

# install_criu V: dpkg -i of the checkout's CRIU in V unless it has that
# version. Its runtime libraries are in the image already (image.sh
# installed an earlier build with apt); dpkg -i also takes a downgrade.
install_criu() {
  local v=$1 have
  have=$(vm_ssh "$v" "dpkg-query -W -f '\${Version}' criu 2>/dev/null" || true)
  [ "$have" != "$criu_version" ] || return 0
  echo "vmtest: VM $v has CRIU ${have:-none}: installing $criu_version"
  vm_ssh "$v" 'cat > /root/criu.deb && dpkg -i /root/criu.deb > /root/criu-install.log 2>&1 ||
    { cat /root/criu-install.log; exit 1; }; rm -f /root/criu.deb' < "$criu_deb"
  have=$(vm_ssh "$v" "dpkg-query -W -f '\${Version}' criu")
  [ "$have" = "$criu_version" ] || { echo "vmtest: VM $v has CRIU $have after dpkg -i of $criu_version" >&2; exit 1; }
}

install_one() {
  local v=$1 p name addr opts
  p=$(vm_peer "$v")
  name=$(vm_name "$v")
  addr=$(vm_addr "$v")
  install_criu "$v"
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
