#!/usr/bin/env bash
# make test's end-to-end part: the tests but those of RACE_RE against the
# plain daemon (CTRFS_BIN unset: the tests build one), in lane TEST_LANE,
# and those of RACE_RE against the -race daemon RACE_BIN, in lane
# RACE_LANE, both at once. Most of an end-to-end test's time is waiting
# (for a container to start, a daemon to mount, a lease to run out), so
# the two passes share the machine's cores well: together they take
# little more than the plain pass alone. The lanes keep their bridges,
# subnets, loopback addresses and ports apart (tests/harness_test.go).
#
# Each pass's output goes to a log of its own, which is printed whole
# when both are done (the race pass's after the plain one's); meanwhile
# each test's result line is shown as it comes. The exit status is
# non-zero if either pass failed.
#
# Usage: scripts/e2e.sh RACE_RE RACE_BIN
# Environment: CTRFS_TEST_LANE (default 0) and CTRFS_RACE_LANE (default
# CTRFS_TEST_LANE + 5, mod 10), GO (default go).
set -uo pipefail
cd "$(dirname "$0")/.."

race_re=$1 race_bin=$2
go=${GO:-go}
plain_lane=${CTRFS_TEST_LANE:-0}
race_lane=${CTRFS_RACE_LANE:-$(( (plain_lane + 5) % 10 ))}
if [ "$plain_lane" = "$race_lane" ]; then
  echo "e2e: CTRFS_TEST_LANE and CTRFS_RACE_LANE are both $plain_lane: the passes would collide" >&2
  exit 2
fi

logs=$(mktemp -d /tmp/ctrfs-e2e.XXXXXX)
plain_log=$logs/plain.log race_log=$logs/race.log
: > "$plain_log"; : > "$race_log"

CTRFS_TEST_LANE=$plain_lane "$go" test ./tests/ -skip "$race_re" -count=1 -timeout 25m -v >"$plain_log" 2>&1 &
plain_pid=$!
CTRFS_BIN=$race_bin CTRFS_TEST_LANE=$race_lane "$go" test ./tests/ -run "$race_re" -count=1 -timeout 15m -v >"$race_log" 2>&1 &
race_pid=$!
# Results as they come, each line saying its pass.
tail -q -n +1 -F "$plain_log" 2>/dev/null | sed -nu 's/^\(--- [A-Z]*:.*\)/e2e plain: \1/p' &
tail_plain=$!
tail -q -n +1 -F "$race_log" 2>/dev/null | sed -nu 's/^\(--- [A-Z]*:.*\)/e2e race:  \1/p' &
tail_race=$!

wait "$plain_pid"; plain_rc=$?
wait "$race_pid"; race_rc=$?
sleep 1 # the last result lines
kill "$tail_plain" "$tail_race" 2>/dev/null
pkill -P "$tail_plain" 2>/dev/null; pkill -P "$tail_race" 2>/dev/null

echo "=== e2e plain pass (lane $plain_lane): exit $plain_rc"
cat "$plain_log"
echo "=== e2e race pass (lane $race_lane, $race_bin): exit $race_rc"
cat "$race_log"
rm -rf "$logs"
echo "e2e: plain pass exit $plain_rc, race pass exit $race_rc"
[ "$plain_rc" = 0 ] && [ "$race_rc" = 0 ]
