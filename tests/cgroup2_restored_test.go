package tests

import (
	"fmt"
	"testing"
)

// TestCgroup2OnlyCheckpointAfterRestore: on a cgroup2-only host, a
// container restored from saved state checkpoints again. LXC 5.0.2's
// restore never looks for cgroup2's freezer (upstream lxc f30cbb86f, 2026,
// "restore cgroup limits and freezer on restore", added the missing
// cgroup_ops->finalize), so the restored container's monitor answers no
// freezer cgroup and every later dump failed with "Failed getting freezer
// path": a container could be stopped statefully, moved or snapshotted
// once after each cold start.
func TestCgroup2OnlyCheckpointAfterRestore(t *testing.T) {
	d := startCgroup2Only(t)
	ip := d.CreateRunning("c1")
	n := Count(t, ip)
	for i := 0; i < 2; i++ {
		if _, err := d.Sh("echo stop-stateful > containers/c1/ctl"); err != nil {
			t.Fatalf("stop-stateful #%d: %v; error: %s", i+1, err, d.Read("containers/c1/error"))
		}
		d.MustSh("echo start > containers/c1/ctl")
		n = CountsPast(t, ip, n, fmt.Sprintf("after stop-stateful and start #%d", i+1))
	}
	d.MustSh("echo 'snapshot s1 --stateful' > containers/c1/ctl && echo 'restore s1' > containers/c1/ctl")
	CountsPast(t, ip, n, "after a snapshot of the restored container and its restore")
	d.MustSh("echo stop > containers/c1/ctl")
}
