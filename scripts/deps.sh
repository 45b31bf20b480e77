#!/usr/bin/env bash
# Installs what ctrfs needs on a Debian machine (12 or newer), as root,
# skipping what is already right. Idempotent: safe to run before every build
# and test. Every system package comes from the host's own release: CRIU,
# which bookworm and trixie have too old, is built from source for it
# (scripts/criu-deb.sh), and nothing from unstable or testing is installed.
set -euo pipefail
cd "$(dirname "$0")"

need_pkgs=(lxc lxc-dev golang-gopkg-lxc-go-lxc.v2-dev fuse3 iptables busybox-static debootstrap go-md2man
  iproute2 bridge-utils pkg-config gcc make rsync zstd btrfs-progs)

# A kernel with AppArmor on (stock Debian's) needs its userspace: LXC loads
# a profile for every container with apparmor_parser, and without it no
# container starts ("Failed to spawn container"; LXC's log has the cause).
# A kernel without AppArmor (or with it off) has no use for it.
apparmor_on() { [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; }
if apparmor_on; then
  need_pkgs+=(apparmor)
fi

# uninstall-deps.sh asks for the list, to name it to the operator.
if [ "${1:-}" = --packages ]; then
  echo "${need_pkgs[*]}"
  exit 0
fi

# What this run installs (packages absent before it, present after) is added
# to $CACHE/installed-by-deps, so that `make uninstall-deps` purges exactly
# those and nothing the operator had before.
CACHE=${CTRFS_CACHE:-/var/cache/ctrfs}
installed_pkgs() { dpkg-query -W -f '${db:Status-Abbrev} ${binary:Package}\n' | awk '$1 == "ii" {print $2}' | sort; }
before=$(installed_pkgs)
record_installed() {
  local added
  added=$(comm -13 <(printf '%s\n' "$before") <(installed_pkgs))
  [ -n "$added" ] || return 0
  mkdir -p "$CACHE" && touch "$CACHE/installed-by-deps"
  sort -u -o "$CACHE/installed-by-deps" "$CACHE/installed-by-deps" <(printf '%s\n' "$added")
}
trap record_installed EXIT

missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# at_least V MIN: version V is MIN or newer.
at_least() { [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]; }

criu_ok() {
  command -v criu >/dev/null 2>&1 || return 1
  # CRIU older than 4.2 does not work on these kernels: bookworm's 3.17 fails
  # `criu check`, trixie's 4.1.1 hangs dumping a container.
  at_least "$(criu --version 2>/dev/null | awk '/^Version:/ {print $2}')" 4.2 || return 1
  # A local build (ours) must carry today's patches (scripts/criu-patches);
  # an official package is taken as it is.
  local have
  have=$(dpkg-query -W -f '${Version}' criu 2>/dev/null || true)
  case "$have" in
    *~local*) [ "$have" = "$(./criu-deb.sh --print-version)" ] ;;
  esac
}

export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update() {
  [ "$updated" = 1 ] && return 0
  # Third-party sources on some machines cannot be reached; Debian's can.
  apt-get update -qq || true
  updated=1
}

# Earlier versions of this script added Debian unstable as an apt source
# (pinned low). Those two files are ours: take them away, so that nothing
# from unstable can come in later by accident. What was installed from it
# stays (removing libc6 is not ours to do); README says how to check.
for f in /etc/apt/sources.list.d/ctrfs-sid.sources /etc/apt/preferences.d/ctrfs-sid; do
  if [ -e "$f" ]; then
    echo "deps: removing $f (an unstable source added by an older ctrfs setup)"
    rm -f "$f"
    updated=0
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  apt_update
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! criu_ok; then
  apt_update
  ./criu-deb.sh
  criu_ok || { echo "deps: criu >= 4.2 still missing after the build" >&2; exit 1; }
fi

# FUSE needs its device node.
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true

# Go: go.mod names the version. Any go >= 1.21 fetches that exact toolchain
# from the module proxy by itself (GOTOOLCHAIN=auto, Debian's default too),
# so the host's release or its backports is enough: trixie's golang-go is
# 1.24, bookworm's 1.19 (too old), bookworm-backports' 1.23.
gomod=$(awk '/^go / {print $2; exit}' ../go.mod)
# Asked outside the module, so that go.mod's newer version does not get in
# the way of a plain answer.
go_version() { (cd / && GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null | sed 's/^go//'); }
# The go that make and the tests run: /usr/local/go (Makefile's PATH) or PATH's.
find_go() {
  local g
  for g in /usr/local/go/bin/go "$(command -v go 2>/dev/null)"; do
    [ -x "$g" ] && at_least "$(go_version "$g")" 1.21 && { echo "$g"; return 0; }
  done
  return 1
}
# upstream VERSION: 2:1.23~2~bpo12+1 -> 1.23
upstream() { sed 's/^[0-9]*://; s/[~+-].*//' <<<"$1"; }
if ! find_go >/dev/null; then
  apt_update
  . /etc/os-release
  # The newest golang-go any configured source offers, and from which suite.
  read -r gover gosuite < <(apt-cache madison golang-go 2>/dev/null |
    awk -F' [|] ' '{split($3, a, " "); split(a[2], s, "/"); print $2, s[1]; exit}') || true
  if at_least "$(upstream "${gover:-}")" 1.21; then
    echo "deps: installing golang-go $gover from $gosuite"
    apt-get install -y -qq --no-install-recommends -t "$gosuite" golang-go ca-certificates >/dev/null
  fi
  find_go >/dev/null || {
    cat >&2 <<MSG
deps: no Go >= 1.21 here, and this host's apt sources offer none (golang-go ${gover:-?}).
  Either enable ${VERSION_CODENAME:-your release}-backports and run make deps again
  (it installs golang-go from there), or unpack Go $gomod from
  https://go.dev/dl/ into /usr/local/go. The go command then fetches go $gomod
  itself (GOTOOLCHAIN).
MSG
    exit 1
  }
fi
g=$(find_go)
if ! at_least "$(go_version "$g")" "$gomod"; then
  # Fetched once into the module cache; every later call finds it there.
  echo "deps: $g is $(go_version "$g"); go.mod wants $gomod: fetching that toolchain"
  (cd .. && GOTOOLCHAIN=auto "$g" version)
fi
echo "deps: ok"
