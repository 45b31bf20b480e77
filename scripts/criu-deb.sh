#!/usr/bin/env bash
# Builds CRIU from Debian unstable's *source* package against this host's own
# libraries, packages it as a local .deb and installs that with apt, so that
# dpkg knows it, `apt-get remove criu` removes it and an official newer
# package replaces it. No binary package and no apt source from unstable or
# testing is used or left behind: the source is fetched through a private,
# temporary apt configuration, and the build dependencies that this script
# installed are purged again.
#
# The built .deb is kept in $CTRFS_CACHE (default /var/cache/ctrfs), named
# after the host's release, so that a second run installs it in seconds.
#
# What it installs and how to undo it: README, "Requirements".
set -euo pipefail

CACHE=${CTRFS_CACHE:-/var/cache/ctrfs}
# Debian's version of the source package to build; its upstream tarball is
# checked against the SHA-256 that apt read from the signed Sources index.
CRIU_SRC_VERSION=${CRIU_SRC_VERSION:-4.2.1-1}
upstream=${CRIU_SRC_VERSION%-*}

. /etc/os-release
release=${VERSION_ID:-0}
codename=${VERSION_CODENAME:-unknown}
arch=$(dpkg --print-architecture)
# The patches ctrfs carries (scripts/criu-patches/*.patch, applied in name
# order; each says why and where upstream stands). Their digest is in the
# version, so that a changed patch set is built and installed again.
patches_dir=$(cd "$(dirname "$0")" && pwd)/criu-patches
patch_files=("$patches_dir"/*.patch)
[ -e "${patch_files[0]}" ] || patch_files=()
patch_id=$(cat /dev/null "${patch_files[@]}" | sha256sum | cut -c1-8)
# ~local sorts below Debian's own -1, so an official package replaces ours.
deb_version="${upstream}-0~local${release}+2.p${patch_id}"
deb="$CACHE/criu_${deb_version}_${arch}.deb"

# deps.sh asks which version this would build, to tell a stale local build.
if [ "${1:-}" = "--print-version" ]; then
  echo "$deb_version"
  exit 0
fi

log() { echo "deps: criu: $*"; }

install_cached() {
  log "installing $deb"
  # A local build of other patches may sort above this one.
  apt-get install -y -qq --no-install-recommends --allow-downgrades "$deb" >/dev/null
}

if [ -f "$deb" ]; then
  install_cached
  exit 0
fi

mkdir -p "$CACHE"
work=$(mktemp -d /var/tmp/ctrfs-criu-build.XXXXXX)
installed_before=$(mktemp)
cleanup() {
  rm -rf "$work"
  rm -f "$installed_before"
}
trap cleanup EXIT

# --- phase 1: fetch the source through a private apt configuration --------
# The host's own debian.sources names the mirror and the keyring; the sid
# deb-src entry lives only under $work and only for these calls.
uri=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
base=/etc/apt/sources.list.d/debian.sources
if [ -f "$base" ]; then
  u=$(awk '/^URIs:/ {print $2; exit}' "$base"); [ -n "$u" ] && uri=$u
  k=$(awk '/^Signed-By:/ {print $2; exit}' "$base"); [ -n "$k" ] && keyring=$k
elif [ -f /etc/apt/sources.list ]; then
  u=$(awk '$1=="deb" && $2 ~ /^http/ {print $2; exit}' /etc/apt/sources.list); [ -n "$u" ] && uri=$u
fi
mkdir -p "$work/apt/parts" "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
cat >"$work/apt/sid-src.sources" <<SRC
Types: deb-src
URIs: $uri
Suites: sid
Components: main
Signed-By: $keyring
SRC
aptopts=(-o "Dir::Etc::SourceList=$work/apt/sid-src.sources"
  -o "Dir::Etc::SourceParts=$work/apt/parts"
  -o "Dir::State::Lists=$work/apt/lists"
  -o "Dir::Cache=$work/apt/cache"
  -o "Acquire::Check-Valid-Until=false"
  -o "APT::Sandbox::User=root")
log "fetching the source of criu $CRIU_SRC_VERSION (sid's deb-src, private apt configuration)"
apt-get "${aptopts[@]}" update -qq
# The mirror serves the .dsc and the upstream tarball but not always the
# Debian packaging, so fetch just the tarball, with the size and SHA-256 that
# apt took from the signed index.
uris=$(cd "$work/src" && apt-get "${aptopts[@]}" source --print-uris --only-source "criu=$CRIU_SRC_VERSION")
line=$(printf '%s\n' "$uris" | grep -F "criu_${upstream}.orig.tar" | head -n1)
[ -n "$line" ] || { echo "deps: criu: sid has no criu $CRIU_SRC_VERSION source (set CRIU_SRC_VERSION)" >&2; exit 1; }
url=$(printf '%s' "$line" | awk '{print $1}' | tr -d "'")
file=$(printf '%s' "$line" | awk '{print $2}')
sum=$(printf '%s' "$line" | grep -o 'SHA256:[0-9a-f]*' | cut -d: -f2)
[ -n "$sum" ] || { echo "deps: criu: the index gives no SHA-256 for $file" >&2; exit 1; }
# apt's own downloader fetches the one file and checks it against the hash.
fetch() { /usr/lib/apt/apt-helper -qq -o APT::Sandbox::User=root download-file "$1" "$2" "SHA256:$sum" >/dev/null; }
fetch "$url" "$work/src/$file"
echo "$sum  $work/src/$file" | sha256sum -c --quiet - ||
  { echo "deps: criu: $file does not match the SHA-256 of sid's signed index" >&2; exit 1; }
rm -rf "$work/apt"

# --- phase 2: build dependencies, all from the host's release ------------
build_deps=(build-essential xz-utils pkgconf libprotobuf-dev libprotobuf-c-dev
  protobuf-c-compiler protobuf-compiler libnet1-dev libnl-3-dev libcap-dev
  libbsd-dev libgnutls28-dev libnftables-dev uuid-dev dpkg-dev)
dpkg-query -W -f '${Package}:${Architecture} ${Status}\n' | awk '/ installed$/ {print $1}' | sort >"$installed_before"
log "installing build dependencies from $codename"
apt-get install -y -qq --no-install-recommends "${build_deps[@]}" >/dev/null
purge_build_deps() {
  local now added
  now=$(dpkg-query -W -f '${Package}:${Architecture} ${Status}\n' | awk '/ installed$/ {print $1}' | sort)
  added=$(comm -13 "$installed_before" <(printf '%s\n' "$now"))
  if [ -n "$added" ]; then
    log "purging the $(printf '%s\n' "$added" | wc -l) packages the build installed"
    # shellcheck disable=SC2086
    apt-get purge -y -qq $added >/dev/null
  fi
}
trap 'purge_build_deps; cleanup' EXIT

# --- phase 3: build ------------------------------------------------------
log "building criu $upstream ($(nproc) cores, about a minute)"
tar -C "$work/src" -xf "$work/src/$file"
srcdir=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'criu-*' | head -n1)
for p in "${patch_files[@]}"; do
  log "applying $(basename "$p")"
  patch -d "$srcdir" -p1 --forward --quiet <"$p" ||
    { echo "deps: criu: $(basename "$p") does not apply to criu $upstream" >&2; exit 1; }
done
make -C "$srcdir" -j"$(nproc)" PREFIX=/usr criu >"$work/build.log" 2>&1 ||
  { tail -n 30 "$work/build.log" >&2; echo "deps: criu: build failed (log above)" >&2; exit 1; }
strip "$srcdir/criu/criu"

# --- phase 4: package ----------------------------------------------------
pkg="$work/pkg"
mkdir -p "$pkg/usr/sbin" "$pkg/DEBIAN" "$pkg/debian" "$pkg/usr/share/doc/criu"
install -m 0755 "$srcdir/criu/criu" "$pkg/usr/sbin/criu"
cp "$srcdir/COPYING" "$pkg/usr/share/doc/criu/copyright" 2>/dev/null || true
# dpkg-shlibdeps wants a debian/control beside the tree it reads.
printf 'Source: criu\n\nPackage: criu\nArchitecture: any\n' >"$pkg/debian/control"
depends=$(cd "$pkg" && dpkg-shlibdeps -O -e usr/sbin/criu 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$pkg/debian"
cat >"$pkg/DEBIAN/control" <<CTL
Package: criu
Version: $deb_version
Architecture: $arch
Maintainer: ctrfs local build <root@localhost>
Depends: $depends, iptables
Section: admin
Priority: optional
Description: checkpoint and restore in userspace (local build for $codename)
 CRIU $upstream built by ctrfs's setup from Debian's source package
 against this host's own libraries, with the patches ctrfs carries
 (${#patch_files[@]}, id $patch_id). An official Debian package of a newer
 version replaces it; apt-get remove criu removes it.
CTL
dpkg-deb --root-owner-group --build "$pkg" "$work/criu.deb" >/dev/null
mv "$work/criu.deb" "$deb"
# Builds of other patch sets are of no more use.
find "$CACHE" -maxdepth 1 -name "criu_*_${arch}.deb" ! -path "$deb" -delete
log "built $deb"

# --- phase 5: purge what the build installed, then install the package ---
trap cleanup EXIT
purge_build_deps
install_cached
