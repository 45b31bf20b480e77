#!/usr/bin/env bash
# Starts a ctrfs daemon with its default flags (mount /mnt/ctrfs, LXC path
# /var/lib/lxc, store /var/lib/ctrfs) in the background, creates and starts
# a container "demo", and says what to try. `demo.sh stop` stops the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."

MOUNT=/mnt/ctrfs
RUN=/run/ctrfs-demo
PIDFILE=$RUN/ctrfs.pid
LOG=/var/log/ctrfs-demo.log

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "${1:-start}" in
start)
  mkdir -p "$RUN"
  if running; then
    echo "demo: ctrfs already running (pid $(cat "$PIDFILE"))"
  else
    setsid bin/ctrfs serve --mount "$MOUNT" </dev/null >>"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 100); do
      [ -f "$MOUNT/host" ] && break
      running || { echo "demo: ctrfs exited; see $LOG" >&2; tail -n 20 "$LOG" >&2; exit 1; }
      sleep 0.1
    done
    [ -f "$MOUNT/host" ] || { echo "demo: $MOUNT did not appear; see $LOG" >&2; exit 1; }
  fi
  cd "$MOUNT/containers"
  [ -d demo ] || mkdir demo
  [ "$(cat demo/status)" = RUNNING ] || echo start >demo/ctl
  ip=$(awk '/^ipv4:/ {print $2}' demo/info)
  count=""
  for _ in $(seq 50); do
    count=$(bash -c "exec 3<>/dev/tcp/$ip/8080 && cat <&3" 2>/dev/null || true)
    [ -n "$count" ] && break
    sleep 0.2
  done
  cat <<MSG

ctrfs is serving $MOUNT (daemon pid $(cat "$PIDFILE"), log $LOG).
Container "demo" is $(cat demo/status) at $ip; its counter is at ${count:-?}.

Try:
  cd $MOUNT/containers
  cat demo/info
  echo stop-stateful > demo/ctl && ls -l demo/state && cat demo/state/ps
  echo start > demo/ctl && cat < /dev/tcp/$ip/8080     # the count went on
  cat $MOUNT/events                                     # follow what happens
  mkdir c2 && echo start > c2/ctl
Stop the daemon with: make demo-stop (containers keep running).
MSG
  ;;
stop)
  if running; then
    pid=$(cat "$PIDFILE")
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "demo: ctrfs stopped"
  else
    echo "demo: ctrfs not running"
  fi
  rm -f "$PIDFILE"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
