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
# BENCH_BTRFS=1 (issue 22; the default, 0 turns it off) also makes a btrfs filesystem of BENCH_BTRFS_GIB
# (default 8) GiB in a sparse file in the work directory, loop-mounts it,
# and starts a second pair of daemons (bench-btrfs, bench-btrfs-peer, on the
# gossip port + 3, their own cluster) whose LXC paths are on it, with
# --storage btrfs; the first pair then runs with --storage dir. Each pass
# gets --btrfs-mount and the rest: its stop/start, snapshot and migration
# parts run again on the btrfs daemons, and it ends with a table of both
# backends against issue 22's targets (set for the debian template).
# Cleanup unmounts the filesystem and frees its loop device, whatever the
# exit.
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
# BENCH_BTRFS=1: the btrfs filesystem (its image, mount point, loop
# device once mounted) and its daemons, with their FUSE mounts and stores
# outside it, beside the first pair's.
btrfs=${BENCH_BTRFS:-1}
btrfs_img=$work/btrfs.img btrfs_fs=$work/btrfs/fs btrfs_loop=
btrfs_mnt=$work/btrfs/mnt btrfs_lxcpath=$btrfs_fs/lxc btrfs_store=$work/btrfs/store
btrfs_peer_mnt=$work/btrfs/peer/mnt btrfs_peer_lxcpath=$btrfs_fs/peer-lxc btrfs_peer_store=$work/btrfs/peer/store
btrfs_pid= btrfs_peer_pid=
case $btrfs in
0 | 1) ;;
*) echo "bench: BENCH_BTRFS=$btrfs: want 0 or 1" >&2; exit 2 ;;
esac
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

# unmount_btrfs: the btrfs filesystem goes once nothing runs on it; a
# lazy unmount if it stays busy, and its loop device is detached should
# the unmount not have freed it (mount -o loop sets autoclear).
unmount_btrfs() {
  if mountpoint -q "$btrfs_fs"; then
    for _ in 1 2 3 4 5; do
      umount "$btrfs_fs" 2>/dev/null && break
      sleep 1
    done
    if mountpoint -q "$btrfs_fs"; then
      echo "bench: $btrfs_fs busy; unmounting it lazily" >&2
      umount -l "$btrfs_fs"
    fi
  fi
  if [ -n "$btrfs_loop" ] && losetup "$btrfs_loop" 2>/dev/null | grep -qF "$btrfs_img"; then
    losetup -d "$btrfs_loop"
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  stop_daemon "$btrfs_peer_pid"
  stop_daemon "$btrfs_pid"
  stop_daemon "$peer_pid"
  stop_daemon "$daemon_pid"
  for m in "$btrfs_peer_mnt" "$btrfs_mnt" "$peer_mnt" "$mnt"; do
    if mountpoint -q "$m"; then
      umount -l "$m"
    fi
  done
  stop_containers "$btrfs_peer_lxcpath"
  stop_containers "$btrfs_lxcpath"
  stop_containers "$peer_lxcpath"
  stop_containers "$lxcpath"
  unmount_btrfs
  if [ "$bridge_existed" = 0 ]; then
    remove_network "$bridge"
  fi
  if [ -n "$pipe_max_old" ] && [ "$(cat /proc/sys/fs/pipe-max-size)" = "$lazy_pipe_bytes" ]; then
    echo "$pipe_max_old" > /proc/sys/fs/pipe-max-size
  fi
  if [ "$rc" != 0 ]; then
    for log in "$work/daemon.log" "$work/peer/daemon.log" "$work/btrfs/daemon.log" "$work/btrfs/peer/daemon.log"; do
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
# migration port is taken on either address is skipped. The btrfs pair
# (BENCH_BTRFS=1) gossips on the port + 3 of the same addresses.
port_busy() {
  local p=$1 ports="$1|$(($1 + 1))|$(($1 + 2))"
  [ "$btrfs" = 1 ] && ports="$ports|$((p + 3))|$((p + 4))"
  ss -Htuln 2>/dev/null | awk '{print $5}' |
    grep -Eq "^(127\.0\.0\.[23]|0\.0\.0\.0|\*|\[::\]):($ports)$"
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

# Comparing backends, the first pair is the directory backend's whatever
# filesystem BENCH_DIR is on.
storage=()
[ "$btrfs" = 1 ] && storage=(--storage dir)

# Each daemon in its own session, so that ^C reaches only the bench (which
# then cleans up through the mounts) and the daemons stop when cleanup says so.
setsid bin/ctrfs serve --mount "$mnt" --lxcpath "$lxcpath" --store "$store" --name bench "${storage[@]}" \
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

setsid bin/ctrfs serve --mount "$peer_mnt" --lxcpath "$peer_lxcpath" --store "$peer_store" --name bench-peer "${storage[@]}" \
  --bridge "$bridge" --subnet "$subnet" --template-cache "$template_cache" \
  --bind "127.0.0.3:$port" --join "127.0.0.2:$port" --secret-file "$work/secret" >"$work/peer/daemon.log" 2>&1 &
peer_pid=$!
wait_mounted "$peer_mnt" "$peer_pid"

btrfs_flags=()
if [ "$btrfs" = 1 ]; then
  for tool in mkfs.btrfs btrfs losetup; do
    command -v "$tool" >/dev/null || { echo "bench: BENCH_BTRFS=1 needs $tool (btrfs-progs; make deps installs it)" >&2; exit 1; }
  done
  mkdir -p "$btrfs_fs" "$btrfs_mnt" "$btrfs_store" "$btrfs_peer_mnt" "$btrfs_peer_store"
  # Sparse: it takes of the disk what the containers write.
  truncate -s "${BENCH_BTRFS_GIB:-8}G" "$btrfs_img"
  mkfs.btrfs -q "$btrfs_img"
  mount -o loop "$btrfs_img" "$btrfs_fs"
  btrfs_loop=$(findmnt -n -o SOURCE "$btrfs_fs")
  chmod 0711 "$btrfs_fs" "$work/btrfs"
  mkdir -p "$btrfs_lxcpath" "$btrfs_peer_lxcpath"
  echo "bench: btrfs backend: ${BENCH_BTRFS_GIB:-8} GiB btrfs on $btrfs_loop at $btrfs_fs"
  setsid bin/ctrfs serve --mount "$btrfs_mnt" --lxcpath "$btrfs_lxcpath" --store "$btrfs_store" --name bench-btrfs --storage btrfs \
    --bridge "$bridge" --subnet "$subnet" --template-cache "$template_cache" \
    --bind "127.0.0.2:$((port + 3))" --secret-file "$work/secret" >"$work/btrfs/daemon.log" 2>&1 &
  btrfs_pid=$!
  wait_mounted "$btrfs_mnt" "$btrfs_pid"
  setsid bin/ctrfs serve --mount "$btrfs_peer_mnt" --lxcpath "$btrfs_peer_lxcpath" --store "$btrfs_peer_store" --name bench-btrfs-peer --storage btrfs \
    --bridge "$bridge" --subnet "$subnet" --template-cache "$template_cache" \
    --bind "127.0.0.3:$((port + 3))" --join "127.0.0.2:$((port + 3))" --secret-file "$work/secret" >"$work/btrfs/peer/daemon.log" 2>&1 &
  btrfs_peer_pid=$!
  wait_mounted "$btrfs_peer_mnt" "$btrfs_peer_pid"
  btrfs_flags=(--btrfs-mount "$btrfs_mnt" --btrfs-lxcpath "$btrfs_lxcpath" --btrfs-store "$btrfs_store"
    --btrfs-peer-mount "$btrfs_peer_mnt" --btrfs-peer-lxcpath "$btrfs_peer_lxcpath")
fi

for template in $templates; do
  case $template in
  busybox) flags=() ;;
  debian) flags=(--template debian --mib "${BENCH_DEBIAN_MIB:-64}") ;;
  *) echo "bench: BENCH_TEMPLATES: unknown template $template (busybox, debian)" >&2; exit 2 ;;
  esac
  echo "bench: $template containers"
  bin/ctrfs-bench --mount "$mnt" --lxcpath "$lxcpath" --store "$store" --memhog bin/memhog --ctrfs bin/ctrfs \
    --dumpdir "$work/raw" --template-cache "$template_cache" --peer-mount "$peer_mnt" --peer-lxcpath "$peer_lxcpath" \
    --metrics-url "http://127.0.0.2:$((port + 2))/metrics" "${flags[@]}" "${btrfs_flags[@]}" "$@"
done
