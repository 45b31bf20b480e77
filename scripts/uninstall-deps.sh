#!/usr/bin/env bash
# Undoes `make deps`: purges the packages deps.sh recorded as installed by it
# (CRIU's local build among them) and removes its cache. Packages that were
# on the machine before deps ran are not touched. If apt would have to remove
# anything more with them, nothing is removed and the command is printed for
# the operator to decide.
set -euo pipefail
cd "$(dirname "$0")"

CACHE=${CTRFS_CACHE:-/var/cache/ctrfs}
record=$CACHE/installed-by-deps
export DEBIAN_FRONTEND=noninteractive

# still_installed NAME...: those of NAME that dpkg has installed.
still_installed() {
  [ $# -gt 0 ] || return 0
  # dpkg-query fails when some NAME is not known at all: not an error here.
  { dpkg-query -W -f '${db:Status-Abbrev} ${binary:Package}\n' "$@" 2>/dev/null || true; } | awk '$1 == "ii" {print $2}'
}

if [ -s "$record" ]; then
  # shellcheck disable=SC2046
  mapfile -t pkgs < <(still_installed $(cat "$record"))
  if [ "${#pkgs[@]}" -gt 0 ]; then
    # Names as apt prints them (without the native architecture).
    arch=$(dpkg --print-architecture)
    mine=$(printf '%s\n' "${pkgs[@]}" | sed "s/:$arch\$//" | sort -u)
    more=$(apt-get -s purge "${pkgs[@]}" | awk '/^Purg / {print $2}' | sed "s/:$arch\$//" | sort -u | comm -23 - <(printf '%s\n' "$mine"))
    if [ -n "$more" ]; then
      echo "uninstall-deps: purging what deps installed would also remove packages that need it:" >&2
      printf '  %s\n' $more >&2
      echo "uninstall-deps: nothing removed. To remove all of it: apt-get purge ${pkgs[*]}" >&2
      exit 1
    fi
    echo "uninstall-deps: purging the ${#pkgs[@]} packages make deps installed: ${pkgs[*]}"
    apt-get purge -y -qq "${pkgs[@]}" >/dev/null
  fi
else
  # An older setup did not record what it installed: remove our CRIU build,
  # name the rest.
  if dpkg-query -W -f '${Version}' criu 2>/dev/null | grep -q '~local'; then
    echo "uninstall-deps: purging criu (the local build)"
    apt-get purge -y -qq criu >/dev/null
  fi
  # shellcheck disable=SC2046
  left=$(still_installed $(./deps.sh --packages) | tr '\n' ' ')
  cat <<MSG
uninstall-deps: this machine's setup did not record what it installed. Of what
  make deps installs, these are here; remove them if nothing else needs them:
    apt-get purge ${left:-(none)}
    apt-get autoremove --purge
MSG
fi
rm -rf "$CACHE"
echo "uninstall-deps: removed $CACHE"
