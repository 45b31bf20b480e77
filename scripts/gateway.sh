# Sourced by scripts that run a throwaway ctrfs daemon on a bridge of
# their own (scripts/bench.sh, scripts/vmtest/template.sh).
#
# remove_network BRIDGE: removes the bridge and what the daemon made
# beside it (ops/network/gateway.go, which Network.RemoveGateway removes
# in Go): the gateway's veth pair BRIDGE-gw/BRIDGE-gp, and the two
# ebtables rules on the gateway's MAC, one of which names its port.
# Deleting the bridge leaves both; stale rules drop the frames of a later
# bridge whose subnet gives its gateway the same MAC.
remove_network() {
  local bridge=$1 mac
  ! ip link show "$bridge" >/dev/null 2>&1 || ip link del "$bridge"
  ! ip link show "$bridge-gw" >/dev/null 2>&1 || ip link del "$bridge-gw"
  for mac in $(ebtables -t filter -L FORWARD 2>/dev/null |
    awk -v p="$bridge-gp" '$1 == "-s" && $3 == "-i" && $4 == "!" && $5 == p {print $2}'); do
    ebtables -t filter -D FORWARD -s "$mac" -o ! veth+ -j DROP 2>/dev/null || true
    ebtables -t filter -D FORWARD -s "$mac" -i ! "$bridge-gp" -j DROP 2>/dev/null || true
  done
}
