#!/usr/bin/env bash
# Builds the test bed's stock Debian image once: a debootstrap of the
# host's own release from the host's own apt mirror, with AppArmor, LXC, the
# CRIU .deb that `make deps` builds and two kernels (bookworm's 6.1 for VM A,
# bookworm-backports' newer one for VM B). Kept in $VMTEST_CACHE as a raw
# ext4 image plus the kernels and initrds that qemu boots directly; rebuilt
# only when its recipe changes: this script, the guest files, the CRIU .deb
# or the bed's ssh key.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

# What the guests need: ENVIRONMENT's stock-host list, make for `make
# install`, procps and less for whoever debugs a kept bed.
PACKAGES=linux-image-amd64,apparmor,systemd-sysv,udev,dbus,openssh-server,lxc,busybox-static,fuse3,iproute2,rsync,zstd,iptables,make,procps,less
SUITE=bookworm
IMAGE_SIZE=12G

mkdir -p "$VMTEST_CACHE"
chmod 0700 "$VMTEST_CACHE"
if [ ! -s "$VMTEST_KEY" ]; then
  ssh-keygen -q -t ed25519 -N '' -C ctrfs-vmtest -f "$VMTEST_KEY"
fi
chmod 0600 "$VMTEST_KEY"

# The CRIU of this checkout's patch series, not whichever .deb sorts last:
# the cache can hold another checkout's build (its version ends in the
# hash of its patches, which sorts by nothing meaningful).
criu_deb="$CTRFS_CACHE/criu_$("$here/../criu-deb.sh" --print-version)_$(dpkg --print-architecture).deb"
if [ ! -s "$criu_deb" ]; then
  echo "vmtest: no $criu_deb: building it (scripts/criu-deb.sh)"
  "$here/../criu-deb.sh"
fi

recipe=$(cat "$here/image.sh" "$here"/guest/* "$criu_deb" "$VMTEST_KEY.pub" | sha256sum | cut -d' ' -f1)
if [ -s "$VMTEST_CACHE/base.img" ] && [ "$(cat "$VMTEST_CACHE/base.recipe" 2>/dev/null)" = "$recipe" ]; then
  echo "vmtest: image cached ($VMTEST_CACHE/base.img)"
  exit 0
fi

# The URI of the host's own Debian source (deb822 first, then one-line lists).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "vmtest: no Debian mirror in the host's apt sources" >&2; exit 1; }

root=$VMTEST_CACHE/build.root
cleanup() {
  for m in dev/pts dev proc sys; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
  rm -rf "$root"
}
trap cleanup EXIT
cleanup
rm -f "$VMTEST_CACHE/base.img" "$VMTEST_CACHE/base.recipe"

started=$(date +%s)
echo "vmtest: debootstrap $SUITE from $mirror (a few minutes)"
debootstrap --include="$PACKAGES" "$SUITE" "$root" "$mirror" > "$VMTEST_CACHE/debootstrap.log" 2>&1 ||
  { tail -n 30 "$VMTEST_CACHE/debootstrap.log" >&2; exit 1; }

mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

# CRIU: the host's own build, with its runtime libraries from the mirror.
cp "$criu_deb" "$root/tmp/"
in_root apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$criu_deb")" >/dev/null
rm "$root/tmp/$(basename "$criu_deb")"

# The second kernel, from the same release's backports. The source is
# taken away again, so the guest's apt sees its stock release only.
bp=/etc/apt/sources.list.d/vmtest-backports.list
echo "deb $mirror $SUITE-backports main" > "$root$bp"
in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends -t "$SUITE-backports" linux-image-amd64 >/dev/null
rm "$root$bp"
in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/*

# Identity: none in the image, so that no two VMs share it (vmtest-guest
# makes the ssh host keys at first boot, systemd the machine-id).
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
install -m 0755 "$here/guest/vmtest-guest" "$root/usr/local/sbin/vmtest-guest"
install -m 0644 "$here/guest/vmtest-guest.service" "$root/etc/systemd/system/vmtest-guest.service"
in_root systemctl enable vmtest-guest.service >/dev/null 2>&1
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$VMTEST_KEY.pub" "$root/root/.ssh/authorized_keys"
echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$root/etc/fstab"
echo vmtest > "$root/etc/hostname"

# The two kernels qemu boots directly: the oldest is bookworm's own.
mkdir -p "$VMTEST_CACHE/boot"
rm -f "$VMTEST_CACHE"/boot/*
mapfile -t kernels < <(ls "$root"/boot/vmlinuz-* | sed 's|.*/vmlinuz-||' | sort -V)
[ "${#kernels[@]}" -ge 2 ] || { echo "vmtest: want two kernels in the image, found: ${kernels[*]}" >&2; exit 1; }
for pair in "A ${kernels[0]}" "B ${kernels[-1]}"; do
  set -- $pair
  cp "$root/boot/vmlinuz-$2" "$VMTEST_CACHE/boot/vmlinuz-$1"
  cp "$root/boot/initrd.img-$2" "$VMTEST_CACHE/boot/initrd-$1"
  echo "$2" > "$VMTEST_CACHE/boot/release-$1"
done

for m in dev/pts dev proc sys; do umount "$root/$m"; done
truncate -s "$IMAGE_SIZE" "$VMTEST_CACHE/base.img.new"
mkfs.ext4 -q -F -L vmtest -d "$root" "$VMTEST_CACHE/base.img.new"
mv "$VMTEST_CACHE/base.img.new" "$VMTEST_CACHE/base.img"
echo "$recipe" > "$VMTEST_CACHE/base.recipe"
echo "vmtest: image built in $(($(date +%s) - started)) s: kernels ${kernels[0]} (A), ${kernels[-1]} (B)"
