#!/usr/bin/env bash
# Builds the debian template's rootfs archive into the cache DIR on this
# host, through ctrfs's own code path: a throwaway daemon (its own mount,
# LXC path, store and bridge, all removed after) creates one container of
# the template, which builds the archive (a few minutes), then destroys it.
# The bed's guests reach no mirror, so they get the archive from here.
#
# An archive already there is kept when this checkout's daemon takes it:
# the archive is keyed by its recipe (debootstrap's suite and packages,
# DIR/debian.info), which only the daemon knows, and templates/debian/info
# names the archive only when the recipe matches. The template's own files
# (ops/templates/template_debian: its drop-ins, the MariaDB .cnf) are not
# in the archive: each create lays them over it, so changing them needs no
# rebuild.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../gateway.sh"
src=$(cd "$here/../.." && pwd)
cache=${1:?usage: template.sh CACHEDIR}
work=$(mktemp -d /tmp/ctrfs-vmtest-template.XXXXXX)
bridge=vmtbrt
pid=

cleanup() {
  [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  ! mountpoint -q "$work/mnt" || umount -l "$work/mnt"
  remove_network "$bridge"
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/mnt" "$cache"
"$src/bin/ctrfs" serve --mount "$work/mnt" --lxcpath "$work/lxc" --store "$work/store" \
  --name vmtest-template --bridge "$bridge" --subnet 10.215.0.0/24 --template-cache "$cache" \
  > "$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 120); do
  [ -e "$work/mnt/ctl" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/daemon.log" >&2; exit 1; }
  sleep 0.5
done
[ -e "$work/mnt/ctl" ] || { echo "vmtest: the template daemon did not mount" >&2; exit 1; }
if grep -q '^archive: ' "$work/mnt/templates/debian/info"; then
  echo "vmtest: the debian template in $cache is of this checkout's recipe"
  exit 0
fi
echo "vmtest: building the debian template into $cache ($(grep '^built: ' "$work/mnt/templates/debian/info"); a few minutes)"
echo 'create vmtpl --template debian' > "$work/mnt/ctl" || { cat "$work/mnt/error" >&2; exit 1; }
rmdir "$work/mnt/containers/vmtpl"
[ -s "$cache/debian.tar.zst" ] || { echo "vmtest: no $cache/debian.tar.zst after the build" >&2; exit 1; }
