#!/usr/bin/env bash
# Installs what ctrfs needs on a Debian machine (12 or newer), as root,
# skipping what is already right. Idempotent: safe to run before every build
# and test. Every system package comes from the host's own release: CRIU,
# which bookworm and trixie have too old, is built from source for it
# (scripts/criu-deb.sh), and nothing from unstable or testing is installed.
set -euo pipefail
cd "$(dirname "$0")"

need_pkgs=(lxc lxc-dev golang-gopkg-lxc-go-lxc.v2-dev fuse3 iptables busybox-static debootstrap go-md2man
  iproute2 bridge-utils pkg-config gcc make rsync zstd)

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
  at_least "$(criu --version 2>/dev/null | awk '/^Version:/ {print $2}')" 4.2
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
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! criu_ok; then
  apt_update
  ./criu-deb.sh
  criu_ok || { echo "deps: criu >= 4.2 still missing after the build" >&2; exit 1; }
fi

# FUSE needs its device node.
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true

# Go: go.mod names the version. Any go >= 1.21 fetches that exact toolchain
# from the module proxy by itself (GOTOOLCHAIN=auto), so the host's release
# (or its backports) is enough; bookworm's golang-go is 1.19, too old for that.
gomod=$(awk '/^go / {print $2; exit}' ../go.mod)
go_version() { "$1" env GOVERSION 2>/dev/null | sed 's/^go//'; }
find_go() {
  local g
  for g in /usr/local/go/bin/go "$(command -v go 2>/dev/null)" /usr/lib/go-1.2[1-9]/bin/go; do
    [ -x "$g" ] && at_least "$(GOTOOLCHAIN=local go_version "$g")" 1.21 && { echo "$g"; return 0; }
  done
  return 1
}
if ! find_go >/dev/null; then
  apt_update
  cand=$(apt-cache policy golang-go 2>/dev/null | awk '/Candidate:/ {print $2}' | sed 's/^[0-9]*://; s/[~+-].*//')
  if at_least "$cand" 1.21; then
    echo "deps: installing golang-go $cand from this host's release"
    apt-get install -y -qq --no-install-recommends golang-go ca-certificates
  else
    for v in 1.24 1.23 1.22 1.21; do
      if apt-cache policy "golang-$v-go" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        echo "deps: installing golang-$v-go from this host's backports"
        apt-get install -y -qq --no-install-recommends "golang-$v-go" ca-certificates
        break
      fi
    done
  fi
  find_go >/dev/null || {
    . /etc/os-release
    cat >&2 <<MSG
deps: no Go >= 1.21 here, and this host's release (${VERSION_CODENAME:-?}) has none.
  Either enable ${VERSION_CODENAME:-your release}-backports and run
    apt-get install -t ${VERSION_CODENAME:-RELEASE}-backports golang-1.23-go
  or unpack Go $gomod from https://go.dev/dl/ into /usr/local/go.
  The go command then fetches go $gomod itself (GOTOOLCHAIN).
MSG
    exit 1
  }
fi
g=$(find_go)
if ! at_least "$(GOTOOLCHAIN=local go_version "$g")" "$gomod"; then
  # Fetched once into the module cache; every later call finds it there.
  echo "deps: $g is $(GOTOOLCHAIN=local go_version "$g"); go.mod wants $gomod: fetching that toolchain"
  (cd .. && GOTOOLCHAIN=auto "$g" version)
fi
echo "deps: ok"
