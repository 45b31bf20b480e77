#!/usr/bin/env bash
# `make vmbench`: the bench's services part (issue 19) on the test bed,
# whose root has every capability, so that PostgreSQL is measured beside
# Redis (this host's root lacks CAP_SYS_RESOURCE: docs/performance.md,
# Services). The bed comes up as for `make vmtest` (image, both VMs, this
# checkout installed) or a kept one (VMTEST_KEEP=1) is used again; then in
# VM A, exactly as `scripts/bench.sh --only services` runs here: two
# private daemons on 127.0.0.2 and 127.0.0.3 with their own bridge, a
# debian-template container with Redis and PostgreSQL 15, raw
# lxc-checkpoint -s + -r, stop-stateful/start, restore and the live move
# between the two daemons. The guests have no Go and reach no mirror:
# ctrfs-bench and memhog are built here and copied in beside install.sh's
# bin/ctrfs (BENCH_PREBUILT=1), the package set is fetched into this
# host's cache (ctrfs-bench --fetch-packages) and copied in, and the
# daemons take the template archive install.sh put in
# /var/lib/ctrfs/templates. The table comes back here, with where it was
# measured, and the bench's exit status is this script's. Torn down after
# unless VMTEST_KEEP=1, as run.sh does.
#
# Arguments go to ctrfs-bench (default --runs 3); the output is kept in
# $VMTEST_CACHE/last-bench.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"
src=$(cd "$here/../.." && pwd)
export PATH=/usr/local/go/bin:$PATH
t0=$SECONDS
[ "$#" -gt 0 ] || set -- --runs 3

trap 'bed_teardown vmbench "$t0"' EXIT
trap 'exit 130' INT TERM

"$here/image.sh"
"$here/vm.sh" up
"$here/install.sh"
echo "vmbench: bed up and installed after $((SECONDS - t0)) s"

echo "vmbench: building bin/ctrfs-bench, bin/memhog (install.sh built bin/ctrfs)"
(cd "$src" && go build -o bin/ctrfs-bench ./bench/ctrfs-bench &&
  CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/memhog ./bench/memhog)
(cd "$src" && tar -c bin/ctrfs-bench bin/memhog) | vm_ssh A 'tar -x -C /root/ctrfs'

# The set the bench installs in A, for the template archive A has: the
# cache directory is keyed by the archive's dpkg status, which is the
# container's, so the bench's debpkg.Dir finds it complete in A and
# downloads nothing. Copied under another name and renamed: a partial
# copy is never taken for a complete one.
pkgdir=$("$src/bin/ctrfs-bench" --fetch-packages --template-cache "$CTRFS_CACHE/templates")
pkgname=$(basename "$pkgdir")
if vm_ssh A "test -e /var/cache/ctrfs/packages/$pkgname/complete"; then
  echo "vmbench: VM A has $pkgname already"
else
  echo "vmbench: copying $pkgdir into VM A"
  tar -c -C "$(dirname "$pkgdir")" "$pkgname" |
    vm_ssh A "set -e; mkdir -p /var/cache/ctrfs/packages; cd /var/cache/ctrfs; rm -rf packages/.copy packages/$pkgname
      mkdir packages/.copy; tar -x -C packages/.copy; mv packages/.copy/$pkgname packages/; rmdir packages/.copy"
fi

accel=$(tr '\0' ' ' < "/proc/$(cat "$VMTEST_RUNDIR/A.pid")/cmdline" | grep -o -- '-accel [a-z]*' | cut -d' ' -f2 || true)
where="VM A ($(vm_name A), kernel $(vm_ssh A uname -r), $(vm_ssh A nproc) vCPUs, QEMU ${accel:-?}) of the bed, $(date -u '+%Y-%m-%d %H:%M UTC')"
log=$VMTEST_CACHE/last-bench.log
echo "vmbench: scripts/bench.sh --only services $* in $where" | tee "$log"

# The bench runs in the background, where SIGINT is ignored (ssh keeps it
# so, tee -i too): a ^C here reaches the bench in A as one there would, by
# its process group (sshd made the remote shell a session leader, and exec
# keeps its pid), so that it tears its daemons and containers down; its
# output still arrives here until it has. Waiting for tee waits for all of it.
stop_remote() {
  echo "vmbench: interrupted: stopping the bench in VM A (it cleans up first)" >&2
  interrupted=1
  # shellcheck disable=SC2016 # expanded in A
  vm_ssh A 'kill -INT -- -"$(cat /run/ctrfs-vmbench.pid)"' || true
}
interrupted=0
rcfile=$(mktemp)
trap stop_remote INT TERM
{
  r=0
  vm_ssh A "echo \$\$ > /run/ctrfs-vmbench.pid && cd /root/ctrfs &&
    exec env BENCH_PREBUILT=1 BENCH_BTRFS=0 BENCH_TEMPLATES=debian BENCH_TEMPLATE_CACHE=/var/lib/ctrfs/templates \
    scripts/bench.sh --only services $(printf '%q ' "$@")" || r=$?
  echo "$r" > "$rcfile"
} 2>&1 | tee -i -a "$log" &
tee_pid=$!
# wait returns early (above 128) when a trapped signal arrives: wait
# again until the output has ended.
while kill -0 "$tee_pid" 2>/dev/null; do
  wait "$tee_pid" || true
done
rc=$(cat "$rcfile")
rm -f "$rcfile"
trap 'exit 130' INT TERM

{
  echo
  echo "vmbench: measured in $where, exit $rc"
  echo "vmbench: under emulation absolute times mean little: compare each operation with raw -s + -r of the same run"
  echo "vmbench: the output is in $log"
} | tee -a "$log"
[ "$interrupted" = 0 ] || rc=130
[ "$rc" = 0 ] || exit "$rc"
