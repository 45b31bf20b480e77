#!/usr/bin/env bash
# Verifies ctrfs's setup from nothing: debootstraps a minimal RELEASE
# (bookworm, trixie) into a temporary directory under /var/tmp, copies this
# checkout into it and runs, inside that chroot, what an operator runs on a
# fresh machine:
#   scripts/deps.sh, the setup test (tests/setup_test.go: no package or apt
#   source from unstable or testing, os-release unchanged), `criu check`, a
#   real dump and restore of a process, deps.sh again over the files an older
#   ctrfs setup left (they go, CRIU stays), and `make build` when the
#   release's Go can build ctrfs.
# Not part of `make test` (it downloads a few hundred MB and takes minutes);
# run it by hand, as root, on a Debian host with debootstrap and Go. The
# chroot, its mounts and its processes are gone afterwards, even on failure.
set -euo pipefail

release=${1:?usage: scripts/verify-setup.sh RELEASE (bookworm, trixie)}
repo=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "verify-setup[$release]: $*"; }

# The host's mirror, as in scripts/criu-deb.sh.
uri=http://deb.debian.org/debian
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  u=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources); [ -n "$u" ] && uri=$u
fi

root=$(mktemp -d "/var/tmp/ctrfs-verify-$release.XXXXXX")
cleanup() {
  local p
  # Only processes whose root is this chroot: the ones this script started.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  if awk -v r="$root" '$2 == r || index($2, r "/") == 1 {f=1} END {exit !f}' /proc/mounts; then
    say "mounts under $root are still there; not deleting it" >&2
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT

say "debootstrap --variant=minbase $release from $uri into $root"
t0=$SECONDS
debootstrap --variant=minbase "$release" "$root" "$uri" >"$root.debootstrap.log" 2>&1 ||
  { tail -n 20 "$root.debootstrap.log" >&2; rm -f "$root.debootstrap.log"; exit 1; }
rm -f "$root.debootstrap.log"
say "debootstrap took $((SECONDS - t0)) s"

# The chroot's root a mount point of its own: CRIU wants every mount's
# parent in the task's mount tree.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The host's CA bundle for Go's downloads (the module proxy), in case the
# host's network needs a CA of its own; deps installs the chroot's own
# ca-certificates over /etc/ssl/certs.
mkdir -p "$root/etc/ssl" && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca-certificates.crt"

# This checkout as committed, plus uncommitted changes to tracked files.
mkdir -p "$root/root/ctrfs"
rev=$(git -C "$repo" stash create 2>/dev/null || true)
git -C "$repo" archive "${rev:-HEAD}" | tar -x -C "$root/root/ctrfs"

# The setup test, built here (the chroot may have no Go). CTRFS_BIN keeps the
# test binary from building ctrfs, which these tests do not run.
(cd "$repo" && CGO_ENABLED=0 go test -c -o "$root/root/tests.test" ./tests/)

in_root() { chroot "$root" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 SSL_CERT_FILE=/etc/ssl/host-ca-certificates.crt "$@"; }

say "running scripts/deps.sh"
t0=$SECONDS
go_ok=1
if ! in_root /root/ctrfs/scripts/deps.sh >"$root/deps.log" 2>&1; then
  go_ok=0
fi
sed 's/^/  | /' "$root/deps.log"
say "deps.sh took $((SECONDS - t0)) s, exit status $([ $go_ok = 1 ] && echo 0 || echo non-zero)"
if [ $go_ok = 0 ]; then
  # The one accepted failure: no Go for this release, said clearly, after
  # CRIU and everything else went in.
  grep -q '^deps: no Go >= ' "$root/deps.log" || { say "FAIL: deps.sh failed"; exit 1; }
  say "deps.sh stopped at Go (as it says above); CRIU and the rest must be in"
fi

say "checking the installed system"
in_root sh -c '. /etc/os-release; echo "os-release: $PRETTY_NAME"'
in_root dpkg-query -W -f 'installed: ${Package} ${Version}\n' criu libc6 base-files
in_root sh -c 'cd /root && CTRFS_BIN=/bin/false ./tests.test -test.run "^TestSetup" -test.v' | grep -E '^(---|ok|FAIL|PASS)|setup_test'
in_root criu check
[ -s "$root/var/cache/ctrfs/installed-by-deps" ] ||
  { say "FAIL: deps recorded nothing in /var/cache/ctrfs/installed-by-deps"; exit 1; }
say "deps recorded $(wc -l <"$root/var/cache/ctrfs/installed-by-deps") packages it installed"

say "dump and restore of a process"
cat >"$root/root/dump-restore.sh" <<'SH'
set -eu
rm -rf /tmp/dr && mkdir -p /tmp/dr/img
# A subshell that exits at once: the counter is orphaned, so that init reaps
# it when CRIU kills it (a zombie would keep the PID the restore needs).
( setsid bash -c 'for fd in $(ls /proc/$$/fd); do [ "$fd" -le 2 ] || eval "exec $fd>&-"; done
  echo $$ >/tmp/dr/pid
  i=0; while :; do i=$((i+1)); echo $i >/tmp/dr/counter.tmp; mv /tmp/dr/counter.tmp /tmp/dr/counter; sleep 0.2; done' \
  </dev/null >/dev/null 2>&1 & )
n=0
until [ -s /tmp/dr/counter ] && [ "$(cat /tmp/dr/counter)" -ge 3 ]; do
  n=$((n + 1)); [ $n -lt 300 ] || { echo "the counter did not start"; exit 1; }; sleep 0.1
done
pid=$(cat /tmp/dr/pid)
criu dump -t "$pid" -D /tmp/dr/img --shell-job -o dump.log || { tail -n 20 /tmp/dr/img/dump.log; exit 1; }
at_dump=$(cat /tmp/dr/counter)
n=0
while [ -e "/proc/$pid" ]; do
  n=$((n + 1)); [ $n -lt 300 ] || { echo "pid $pid still there after the dump"; exit 1; }; sleep 0.1
done
echo "dumped pid $pid at count $at_dump ($(du -sk /tmp/dr/img | cut -f1) KiB of images)"
criu restore -D /tmp/dr/img --shell-job --restore-detached -o restore.log || { tail -n 20 /tmp/dr/img/restore.log; exit 1; }
kill -0 "$pid"
n=0
until [ "$(cat /tmp/dr/counter)" -gt "$at_dump" ]; do
  n=$((n + 1)); [ $n -lt 300 ] || { echo "the restored counter does not count"; exit 1; }; sleep 0.1
done
echo "restored pid $pid, counting on: $(cat /tmp/dr/counter) > $at_dump"
kill "$pid"
SH
in_root sh /root/dump-restore.sh <"$root/dev/null"

say "deps.sh again, over the files an older ctrfs setup left behind"
before=$(in_root dpkg-query -W -f '${Version}' criu)
printf 'Types: deb\nURIs: %s\nSuites: sid\nComponents: main\n' "$uri" >"$root/etc/apt/sources.list.d/ctrfs-sid.sources"
printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n' >"$root/etc/apt/preferences.d/ctrfs-sid"
in_root /root/ctrfs/scripts/deps.sh 2>&1 | sed 's/^/  | /' || true
for f in etc/apt/sources.list.d/ctrfs-sid.sources etc/apt/preferences.d/ctrfs-sid; do
  [ ! -e "$root/$f" ] || { say "FAIL: /$f is still there"; exit 1; }
done
after=$(in_root dpkg-query -W -f '${Version}' criu)
[ "$before" = "$after" ] || { say "FAIL: criu went from $before to $after"; exit 1; }
say "old sid files removed, criu $after left as it was"

if [ $go_ok = 0 ]; then
  say "enabling $release-backports, as deps.sh's message says, and deps.sh again"
  echo "deb $uri $release-backports main" >"$root/etc/apt/sources.list.d/backports.list"
  in_root /root/ctrfs/scripts/deps.sh 2>&1 | sed 's/^/  | /'
  go_ok=1
fi
if [ $go_ok = 1 ]; then
  say "make build"
  t0=$SECONDS
  in_root sh -c 'cd /root/ctrfs && make build' 2>&1 | tail -n 5 | sed 's/^/  | /'
  in_root /root/ctrfs/bin/ctrfs --help >/dev/null 2>&1 || in_root test -x /root/ctrfs/bin/ctrfs
  say "make build took $((SECONDS - t0)) s: $(in_root sh -c 'cd /root/ctrfs && go version')"
fi

say "the setup test again, with Go and its toolchain in"
in_root sh -c 'cd /root && CTRFS_BIN=/bin/false ./tests.test -test.run "^TestSetup" -test.v' | grep -E '^(---|ok|FAIL|PASS)|setup_test'

say "uninstall-deps"
in_root sh -c 'cd /root/ctrfs && make uninstall-deps' 2>&1 | sed 's/^/  | /'
in_root sh -c '! dpkg-query -W -f "\${Status}" criu 2>/dev/null | grep -q "install ok installed"' ||
  { say "FAIL: criu still installed after uninstall-deps"; exit 1; }
[ ! -e "$root/var/cache/ctrfs" ] || { say "FAIL: /var/cache/ctrfs still there"; exit 1; }
say "PASS: $release"
