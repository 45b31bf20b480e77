#!/usr/bin/env bash
# The stateful stop/start, snapshot and migration benchmark (`make bench`):
# builds ctrfs, ctrfs-bench and the memhog workload, starts two private ctrfs
# daemons on temporary directories, clustered on 127.0.0.2 and 127.0.0.3 with
# a secret of their own (`bench` runs the first two parts, `bench-peer` is
# the other host of the migration part), runs bench/ctrfs-bench against them
# and always tears everything down again: the daemons it started (by pid),
# their mounts, the containers under their LXC paths, the bridge if this
# script brought it into being, the files. ctrfs-bench deletes the snapshots
# and containers it makes itself.
#
# It runs ctrfs-bench once per template of BENCH_TEMPLATES (default
# "busybox debian"): busybox containers for every part, then Debian ones
# (`--template debian`, made through the top-level ctl) for the stop/start,
# snapshot and migration parts, with BENCH_DEBIAN_MIB (default 64) MiB of
# memhog beside systemd and its services; that pass ends with a table of
# each figure against raw lxc-checkpoint and issue 12's targets. The
# daemons keep the debian template's archive in BENCH_TEMPLATE_CACHE
# (default /var/cache/ctrfs/templates), so only the first run on a machine
# pays for debootstrap.
#
# Arguments go to ctrfs-bench (each pass), e.g. scripts/bench.sh --runs 3
# --raw-only, --snapshots 0 to skip the snapshot part, --only migrate for
# the migration part alone, --only evacuate,scale for those of many small
# containers (BENCH_TEMPLATES=busybox then, since debian skips them).
# Environment: BENCH_DIR (parent of the temporary directory, default
# /var/tmp: on disk, not tmpfs), BENCH_KEEP_WORK=1 keeps the directory,
# BENCH_PORT (first gossip port to try, default 7990; the migration endpoint
# is the next one, the first daemon's metrics the one after), BENCH_BRIDGE
# and BENCH_SUBNET (the daemons' bridge and subnet, default ctrfsb0 and
# 10.88.0.0/16: benches run side by side each need their own).
# BENCH_PREBUILT=1 builds nothing and runs the bin/ctrfs, bin/ctrfs-bench and
# bin/memhog that are there: on a host without Go, such as the test bed's
# guests (scripts/vmtest/bench.sh copies them in).
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/gateway.sh
export PATH=/usr/local/go/bin:$PATH
export GOFLAGS=${GOFLAGS:--mod=mod}

if [ "$(id -u)" != 0 ]; then
  echo "bench: needs root (FUSE, LXC, CRIU)" >&2
  exit 1
fi

bridge=${BENCH_BRIDGE:-ctrfsb0}
subnet=${BENCH_SUBNET:-10.88.0.0/16}
templates=${BENCH_TEMPLATES:-busybox debian}
template_cache=${BENCH_TEMPLATE_CACHE:-/var/cache/ctrfs/templates}
mkdir -p "$template_cache"

if [ "${BENCH_PREBUILT:-0}" = 1 ]; then
  for b in bin/ctrfs bin/ctrfs-bench bin/memhog; do
    [ -x "$b" ] || { echo "bench: BENCH_PREBUILT=1 but no executable $PWD/$b" >&2; exit 1; }
  done
  echo "bench: BENCH_PREBUILT=1: running the bin/ctrfs, bin/ctrfs-bench, bin/memhog that are there"
else
  mkdir -p bin
  echo "bench: building bin/ctrfs, bin/ctrfs-bench, bin/memhog"
  go build -o bin/ctrfs ./cmd/ctrfs
  go build -o bin/ctrfs-bench ./bench/ctrfs-bench
  CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/memhog ./bench/memhog
fi

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/ctrfs-bench.XXXXXX")
mnt=$work/mnt lxcpath=$work/lxc store=$work/store
peer_mnt=$work/peer/mnt peer_lxcpath=$work/peer/lxc peer_store=$work/peer/store
mkdir -p "$mnt" "$lxcpath" "$store" "$work/raw" "$peer_mnt" "$peer_lxcpath" "$peer_store"
# An unprivileged container's root (a mapped host uid) must pass through
# every directory above its rootfs; mktemp made this one 0700. o+x only:
# no one else may list it.
chmod 0711 "$work"

bridge_existed=0
ip link show "$bridge" >/dev/null 2>&1 && bridge_existed=1

daemon_pid= peer_pid=
lazy_pipe_bytes=4194304 pipe_max_old=

# stop_daemon PID: SIGTERM (the daemon unmounts and leaves the cluster),
# SIGKILL after 20s. Only the pids this script started come here.
stop_daemon() {
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid"
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "bench: daemon $pid ignored SIGTERM for 20s; killing it" >&2
    kill -KILL "$pid"
  fi
  wait "$pid" 2>/dev/null
}

# stop_containers LXCPATH: containers outlive the daemon; stop whatever
# still runs under our path (the directory itself goes with $work).
stop_containers() {
  local path=$1 c
  [ -d "$path" ] || return 0
  for c in $(lxc-ls -P "$path" --running 2>/dev/null); do
    echo "bench: stopping leftover container $c under $path" >&2
    lxc-stop -P "$path" -n "$c" -k
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  stop_daemon "$peer_pid"
  stop_daemon "$daemon_pid"
  for m in "$peer_mnt" "$mnt"; do
    if mountpoint -q "$m"; then
      umount -l "$m"
    fi
  done
  stop_containers "$peer_lxcpath"
  stop_containers "$lxcpath"
  if [ "$bridge_existed" = 0 ]; then
    remove_network "$bridge"
  fi
  if [ -n "$pipe_max_old" ] && [ "$(cat /proc/sys/fs/pipe-max-size)" = "$lazy_pipe_bytes" ]; then
    echo "$pipe_max_old" > /proc/sys/fs/pipe-max-size
  fi
  if [ "$rc" != 0 ]; then
    for log in "$work/daemon.log" "$work/peer/daemon.log"; do
      if [ -s "$log" ]; then
        echo "bench: last lines of $log:" >&2
        tail -n 20 "$log" >&2
      fi
    done
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

# Post-copy moves (the migration part) need CRIU's lazy page server to grow
# pipes to 4 MiB. Root without CAP_SYS_RESOURCE (some VMs) cannot beyond
# fs.pipe-max-size: raise it for the run; cleanup puts the old value back.
if [ "$(cat /proc/sys/fs/pipe-max-size)" -lt "$lazy_pipe_bytes" ]; then
  pipe_max_old=$(cat /proc/sys/fs/pipe-max-size)
  echo "$lazy_pipe_bytes" > /proc/sys/fs/pipe-max-size
fi

# The two hosts of the migration part gossip on 127.0.0.2 and 127.0.0.3
# (lo), migration endpoints on the gossip port + 1. A port whose gossip or
# migration port is taken on either address is skipped.
port_busy() {
  local p=$1
  ss -Htuln 2>/dev/null | awk '{print $5}' |
    grep -Eq "^(127\.0\.0\.[23]|0\.0\.0\.0|\*|\[::\]):($p|$((p + 1))|$((p + 2)))$"
}
port=${BENCH_PORT:-7990}
for _ in $(seq 1 20); do
  port_busy "$port" || break
  port=$((port + 2))
done
if port_busy "$port"; then
  echo "bench: no free gossip port pair from ${BENCH_PORT:-7990} on" >&2
  exit 1
fi
(umask 077; head -c 32 /dev/urandom | base64 >"$work/secret")

# Each daemon in its own session, so that ^C reaches only the bench (which
# then cleans up through the mounts) and the daemons stop when cleanup says so.
setsid bin/ctrfs serve --mount "$mnt" --lxcpath "$lxcpath" --store "$store" --name bench \
  --bridge "$bridge" --subnet "$subnet" --template-cache "$template_cache" \
  --bind "127.0.0.2:$port" --secret-file "$work/secret" --metrics "127.0.0.2:$((port + 2))" >"$work/daemon.log" 2>&1 &
daemon_pid=$!

wait_mounted() {
  local m=$1 pid=$2
  for _ in $(seq 1 150); do
    [ -e "$m/README" ] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "bench: the daemon for $m exited before mounting" >&2; exit 1; }
    sleep 0.1
  done
  echo "bench: $m not mounted after 15s" >&2
  exit 1
}
# The first daemon makes the bridge; the second only after it exists.
wait_mounted "$mnt" "$daemon_pid"

setsid bin/ctrfs serve --mount "$peer_mnt" --lxcpath "$peer_lxcpath" --store "$peer_store" --name bench-peer \
  --bridge "$bridge" --subnet "$subnet" --template-cache "$template_cache" \
  --bind "127.0.0.3:$port" --join "127.0.0.2:$port" --secret-file "$work/secret" >"$work/peer/daemon.log" 2>&1 &
peer_pid=$!
wait_mounted "$peer_mnt" "$peer_pid"

for template in $templates; do
  case $template in
  busybox) flags=() ;;
  debian) flags=(--template debian --mib "${BENCH_DEBIAN_MIB:-64}") ;;
  *) echo "bench: BENCH_TEMPLATES: unknown template $template (busybox, debian)" >&2; exit 2 ;;
  esac
  echo "bench: $template containers"
  bin/ctrfs-bench --mount "$mnt" --lxcpath "$lxcpath" --store "$store" --memhog bin/memhog --ctrfs bin/ctrfs \
    --dumpdir "$work/raw" --template-cache "$template_cache" --peer-mount "$peer_mnt" --peer-lxcpath "$peer_lxcpath" \
    --metrics-url "http://127.0.0.2:$((port + 2))/metrics" "${flags[@]}" "$@"
done
