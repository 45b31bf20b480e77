#!/usr/bin/env bash
# Installs what ctrfs needs on a Debian 12 machine, as root, skipping what is
# already right. Idempotent: safe to run before every build and test.
set -euo pipefail

need_pkgs=(lxc lxc-dev golang-gopkg-lxc-go-lxc.v2-dev fuse3 iptables busybox-static
  iproute2 bridge-utils pkg-config gcc make rsync zstd)

missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

criu_ok() {
  command -v criu >/dev/null 2>&1 || return 1
  local v
  v=$(criu --version 2>/dev/null | awk '/^Version:/ {print $2}')
  [ -n "$v" ] || return 1
  # CRIU older than 4.2 does not work on this kernel (see shared/ENVIRONMENT.md).
  [ "$(printf '%s\n4.2\n' "$v" | sort -V | head -n1)" = "4.2" ]
}

export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update() {
  [ "$updated" = 1 ] && return 0
  # Third-party sources on some machines cannot be reached; Debian's can.
  apt-get update -qq || true
  updated=1
}

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  apt_update
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# add_sid: Debian unstable as a source, pinned low (100) so that nothing
# comes from it unless asked for by name with -t sid.
add_sid() {
  local src=/etc/apt/sources.list.d/ctrfs-sid.sources
  if [ ! -f "$src" ]; then
    base=/etc/apt/sources.list.d/debian.sources
    uri=http://deb.debian.org/debian
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    if [ -f "$base" ]; then
      u=$(awk '/^URIs:/ {print $2; exit}' "$base"); [ -n "$u" ] && uri=$u
      k=$(awk '/^Signed-By:/ {print $2; exit}' "$base"); [ -n "$k" ] && keyring=$k
    fi
    cat >"$src" <<SRC
Types: deb
URIs: $uri
Suites: sid
Components: main
Signed-By: $keyring
SRC
    cat >/etc/apt/preferences.d/ctrfs-sid <<PIN
Package: *
Pin: release n=sid
Pin-Priority: 100
PIN
    updated=0
  fi
}

if ! criu_ok; then
  echo "deps: installing CRIU >= 4.2 from Debian unstable (pinned low)"
  add_sid
  apt_update
  apt-get install -y -qq --no-install-recommends -t sid criu
  criu_ok || { echo "deps: criu >= 4.2 still missing" >&2; exit 1; }
fi

# FUSE needs its device node; LXC needs these kernel bits loaded when modular.
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
# Go >= 1.25 (go.mod): the machines here have it in /usr/local/go; bookworm's
# golang-go is 1.19, so elsewhere it comes from unstable.
go_ok() {
  local go v
  go=$(PATH=/usr/local/go/bin:$PATH command -v go) || return 1
  v=$("$go" env GOVERSION 2>/dev/null | sed 's/^go//')
  [ -n "$v" ] && [ "$(printf '%s\n1.25\n' "$v" | sort -V | head -n1)" = "1.25" ]
}
if ! go_ok; then
  echo "deps: installing Go >= 1.25 from Debian unstable (pinned low)"
  add_sid
  apt_update
  apt-get install -y -qq --no-install-recommends -t sid golang-go
  go_ok || { echo "deps: Go >= 1.25 still missing" >&2; exit 1; }
fi
echo "deps: ok"
