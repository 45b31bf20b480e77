package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHugeReservationWithoutPagemapScan: a task that reserves far more
// address space than the host has memory (tests/hugemap: 16 TiB, as
// MariaDB reserves innodb_buffer_pool_size_max, 8 TiB by default, and V8
// or ASAN do) is checkpointed and restored with its pages, on a kernel
// without the PAGEMAP_SCAN ioctl (before 6.7: Debian 12's 6.1). There
// CRIU 4.2 read a mapping's page map whole, 8 bytes a page, and 16 TiB
// wanted 32 GiB of it, more than the test machine has (23 GiB): "pmc_init:
// Can't allocate …", and stop-stateful failed. CRIU patch 0012 reads it
// window by window. A restore then read the pages written at its start
// as 0 pages (2^32 pages to its end, counted in an int): patch 0013.
// This kernel has PAGEMAP_SCAN: CRIU_FAULT=135 (FI_DONT_USE_PAGEMAP_SCAN)
// in the daemon's environment, which its CRIU runs inherit, makes CRIU
// take the old path.
func TestHugeReservationWithoutPagemapScan(t *testing.T) {
	d := NewDaemon(t, "h1")
	// Each CRIU run notes the CRIU_FAULT it got, to show that the
	// daemon's environment reaches CRIU through LXC and the helper.
	faults := filepath.Join(t.TempDir(), "faults")
	d.Env = append(d.Env, "CRIU_FAULT=135",
		// The page map of 16 TiB is read and walked a page at a time
		// without PAGEMAP_SCAN: minutes on a loaded machine, more than
		// the deadline of a dump of a container's few MiB of memory.
		"CTRFS_CRIU_LIMIT=20m",
		wrapCRIU(t, `echo "$1 CRIU_FAULT=$CRIU_FAULT" >> `+faults+"\n"))
	d.Start()
	d.CreatePrivilegedRunning("c1")
	d.runInside(t, "c1", "./hugemap")
	state := d.rootfs("c1", "var/lib/hugemap/state")
	var before hugemapState
	waitLong(t, "hugemap to reserve and write its pages", time.Minute, func() bool {
		before = readHugemap(state)
		return before.round > 0
	})
	if !before.ok {
		t.Fatalf("hugemap's pages do not hold their pattern before any checkpoint: %+v", before)
	}

	if _, err := d.Sh("echo stop-stateful > containers/c1/ctl"); err != nil {
		t.Fatalf("stop-stateful: %v; error: %s; status %s\nlog:\n%s", err, d.Read("containers/c1/error"), d.Read("containers/c1/status"), d.Read("containers/c1/log"))
	}
	if b, _ := os.ReadFile(faults); !strings.Contains(string(b), "dump CRIU_FAULT=135") {
		t.Errorf("CRIU's dump did not get CRIU_FAULT=135 (so it used PAGEMAP_SCAN); its runs:\n%s", b)
	}

	if _, err := d.Sh("echo start > containers/c1/ctl"); err != nil {
		t.Fatalf("start from saved state: %v\nerror: %s", err, d.Read("containers/c1/error"))
	}
	var after hugemapState
	waitLong(t, "hugemap to run on after start", time.Minute, func() bool {
		after = readHugemap(state)
		return after.round > before.round
	})
	if after.pid != before.pid || after.sum != before.sum || !after.ok {
		t.Fatalf("hugemap after stop-stateful and start: %+v; before: %+v (want the same pid and sum, ok)", after, before)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// hugemapState is tests/hugemap's state line: its pid, how many times it
// checked its pages, their checksum and whether they held their pattern.
type hugemapState struct {
	pid, sum string
	round    int
	ok       bool
}

// readHugemap reads hugemap's state file (a zero state until there is
// one).
func readHugemap(path string) hugemapState {
	b, _ := os.ReadFile(path)
	f := strings.Fields(string(b))
	if len(f) != 7 || f[0] != "pid" || f[2] != "round" || f[4] != "sum" {
		return hugemapState{}
	}
	round, _ := strconv.Atoi(f[3])
	return hugemapState{pid: f[1], round: round, sum: f[5], ok: f[6] == "ok"}
}
