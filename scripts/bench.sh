#!/usr/bin/env bash
# The stateful stop/start and snapshot benchmark (`make bench`): builds
# ctrfs, ctrfs-bench and the memhog workload, starts a private ctrfs daemon on
# temporary directories, runs cmd/ctrfs-bench against it and always tears
# everything down again: the daemon it started (by pid), its mount, the
# containers under its LXC path, the bridge if this script brought it into
# being, the files. ctrfs-bench deletes the snapshots it takes itself.
#
# Arguments go to ctrfs-bench, e.g. scripts/bench.sh --runs 3 --raw-only, or
# --snapshots 0 to skip the snapshot part.
# Environment: BENCH_DIR (parent of the temporary directory, default
# /var/tmp: on disk, not tmpfs), BENCH_KEEP_WORK=1 keeps the directory.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOFLAGS=${GOFLAGS:--mod=mod}

if [ "$(id -u)" != 0 ]; then
  echo "bench: needs root (FUSE, LXC, CRIU)" >&2
  exit 1
fi

bridge=ctrfsb0
subnet=10.88.0.0/16

mkdir -p bin
echo "bench: building bin/ctrfs, bin/ctrfs-bench, bin/memhog"
go build -o bin/ctrfs ./cmd/ctrfs
go build -o bin/ctrfs-bench ./cmd/ctrfs-bench
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/memhog ./bench/memhog

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/ctrfs-bench.XXXXXX")
mnt=$work/mnt lxcpath=$work/lxc store=$work/store
mkdir -p "$mnt" "$lxcpath" "$store" "$work/raw"

bridge_existed=0
ip link show "$bridge" >/dev/null 2>&1 && bridge_existed=1

daemon_pid=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    for _ in $(seq 1 200); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$daemon_pid" 2>/dev/null; then
      echo "bench: daemon $daemon_pid ignored SIGTERM for 20s; killing it" >&2
      kill -KILL "$daemon_pid"
    fi
    wait "$daemon_pid" 2>/dev/null
  fi
  if mountpoint -q "$mnt"; then
    umount -l "$mnt"
  fi
  # Containers outlive the daemon: stop whatever still runs under our path.
  if [ -d "$lxcpath" ]; then
    for c in $(lxc-ls -P "$lxcpath" --running 2>/dev/null); do
      echo "bench: stopping leftover container $c" >&2
      lxc-stop -P "$lxcpath" -n "$c" -k
    done
  fi
  if [ "$bridge_existed" = 0 ] && ip link show "$bridge" >/dev/null 2>&1; then
    ip link del "$bridge"
  fi
  if [ "$rc" != 0 ] && [ -s "$work/daemon.log" ]; then
    echo "bench: last lines of the daemon's log:" >&2
    tail -n 20 "$work/daemon.log" >&2
  fi
  if [ "${BENCH_KEEP_WORK:-0}" = 1 ]; then
    echo "bench: kept $work" >&2
  elif findmnt -rn -o TARGET | grep -q "^$work"; then
    echo "bench: something is still mounted under $work; not removing it" >&2
  else
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# In its own session, so that ^C reaches only the bench (which then cleans
# up through the mount) and the daemon stops when cleanup says so.
setsid bin/ctrfs serve --mount "$mnt" --lxcpath "$lxcpath" --store "$store" --name bench \
  --bridge "$bridge" --subnet "$subnet" >"$work/daemon.log" 2>&1 &
daemon_pid=$!

for _ in $(seq 1 150); do
  [ -e "$mnt/README" ] && break
  kill -0 "$daemon_pid" 2>/dev/null || { echo "bench: the daemon exited before mounting" >&2; exit 1; }
  sleep 0.1
done
[ -e "$mnt/README" ] || { echo "bench: $mnt not mounted after 15s" >&2; exit 1; }

bin/ctrfs-bench --mount "$mnt" --lxcpath "$lxcpath" --store "$store" --memhog bin/memhog --dumpdir "$work/raw" "$@"
