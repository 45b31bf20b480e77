#!/usr/bin/env bash
# `make vmtest`: the image (cached), the network and two VMs, this checkout
# installed in both, then the end-to-end suite in tests/vmtest run from
# this host over ssh. Torn down whatever happens, unless VMTEST_KEEP=1
# (then `scripts/vmtest/vm.sh down` does it; running this again reuses
# the VMs). VMTEST_RUN=REGEX runs only the suite tests it matches.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
src=$(cd "$here/../.." && pwd)
export PATH=/usr/local/go/bin:$PATH
t0=$SECONDS

trap 'bed_teardown vmtest "$t0"' EXIT
trap 'exit 130' INT TERM

# What only the bed needs (make deps installs the rest), skipping what is there.
missing=()
for p in qemu-system-x86 qemu-utils debootstrap openssh-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "vmtest: installing ${missing[*]}"
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$here/image.sh"
"$here/vm.sh" up
echo "vmtest: bed up after $((SECONDS - t0)) s"
"$here/install.sh"
echo "vmtest: installed after $((SECONDS - t0)) s"

cd "$src"
VMTEST_SCRIPTS=$here go test -tags vmtest ./tests/vmtest/ -count=1 -v -timeout "${VMTEST_TIMEOUT:-6h}" \
  ${VMTEST_RUN:+-run "$VMTEST_RUN"} 2>&1 | tee "$VMTEST_CACHE/last-run.log"
