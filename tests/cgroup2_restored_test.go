package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCgroup2OnlyCheckpointAfterRestore: on a cgroup2-only host, a
// container restored from saved state checkpoints again. LXC 5.0.2's
// restore never looks for cgroup2's freezer (upstream lxc f30cbb86f, 2026,
// "restore cgroup limits and freezer on restore", added the missing
// cgroup_ops->finalize), so the restored container's monitor answers no
// freezer cgroup and every later dump failed with "Failed getting freezer
// path": a container could be stopped statefully, moved or snapshotted
// once after each cold start. ctrfs now runs CRIU itself then; LXC's
// monitor must still end STOPPED after such a stop-stateful (start
// requires it), and `log` says what ran.
func TestCgroup2OnlyCheckpointAfterRestore(t *testing.T) {
	d := startCgroup2Only(t)
	ip := d.CreateRunning("c1")
	n := Count(t, ip)
	for i := 0; i < 2; i++ {
		if _, err := d.Sh("echo stop-stateful > containers/c1/ctl"); err != nil {
			t.Fatalf("stop-stateful #%d: %v; error: %s", i+1, err, d.Read("containers/c1/error"))
		}
		d.WantStatus("containers/c1", "STOPPED", fmt.Sprintf("after stop-stateful #%d", i+1))
		if i == 1 && !strings.Contains(d.Read("containers/c1/log"), "so ctrfs runs: criu dump") {
			t.Errorf("the log of the dump of a restored container does not say that ctrfs ran CRIU:\n%s", d.Read("containers/c1/log"))
		}
		d.MustSh("echo start > containers/c1/ctl")
		n = CountsPast(t, ip, n, fmt.Sprintf("after stop-stateful and start #%d", i+1))
	}
	d.MustSh("echo 'snapshot s1 --stateful' > containers/c1/ctl && echo 'restore s1' > containers/c1/ctl")
	n = CountsPast(t, ip, n, "after a snapshot of the restored container and its restore")
	d.MustSh("echo check > containers/c1/ctl")

	// CRIU's own failure is explained as with LXC's dump, and the criu
	// file reaches CRIU.
	d.MustSh("lxc-attach -P " + d.LXCPath + " -n c1 -- /bin/sh -c 'mkdir -p /mnt/r && mount -t ramfs none /mnt/r'")
	stopStatefulFailsOnRamfs(t, d)
	d.MustSh("printf 'dump: enable-fs ramfs\\n' | cat > containers/c1/criu")
	d.MustSh("echo stop-stateful > containers/c1/ctl && echo start > containers/c1/ctl")
	CountsPast(t, ip, n, "after a checkpoint with the criu file")
	d.MustSh("echo stop > containers/c1/ctl")
}

// hugetlbLimit is a cgroup2 limit that this machine's cgroup2 can hold
// (the other controllers are bound to v1 here); on a real host memory.max
// and pids.max are lost and set again the same way.
const hugetlbLimit = "hugetlb.2MB.max"

// limitContainer gives the stopped c1 an lxc.cgroup2 limit and starts it;
// it returns the value set.
func limitContainer(t *testing.T, d *Daemon) string {
	t.Helper()
	const value = "4194304"
	d.MustSh("cp containers/c1/config ../c1.config && echo 'lxc.cgroup2." + hugetlbLimit + " = " + value + "' >> ../c1.config && cat ../c1.config > containers/c1/config && rm ../c1.config")
	d.MustSh("echo start > containers/c1/ctl")
	checkLimit(t, d, value, "after a cold start")
	return value
}

// checkLimit fails the test unless c1's cgroup holds the limit.
func checkLimit(t *testing.T, d *Daemon, want, when string) {
	t.Helper()
	file := filepath.Join(cgroupDirs(t, d, "c1")["unified"], hugetlbLimit)
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if strings.TrimSpace(string(got)) != want {
		t.Errorf("%s: %s is %s, want %s (lxc.cgroup2.%s)", when, hugetlbLimit, strings.TrimSpace(string(got)), want, hugetlbLimit)
	}
}

// TestCgroup2OnlyLimitsAfterRestore: on a cgroup2-only host a container's
// lxc.cgroup2 limits are in force after a restore. LXC 5.0.2's restore
// never sets them (upstream's f30cbb86f added setup_limits there) and CRIU
// restores none of cgroup2's controller files, so a restored container ran
// unlimited.
func TestCgroup2OnlyLimitsAfterRestore(t *testing.T) {
	d := startCgroup2Only(t)
	d.CreateRunning("c1")
	d.MustSh("echo stop > containers/c1/ctl")
	want := limitContainer(t, d)
	d.MustSh("echo stop-stateful > containers/c1/ctl && echo start > containers/c1/ctl")
	checkLimit(t, d, want, "after stop-stateful and start")
	d.MustSh("echo 'snapshot s1 --stateful' > containers/c1/ctl && echo 'restore s1' > containers/c1/ctl")
	checkLimit(t, d, want, "after the restore of a stateful snapshot")
	d.MustSh("echo stop > containers/c1/ctl")
}

// twoCgroup2OnlyHosts starts dakara and tollana in one cluster, each on
// the cgroup2-only view.
func twoCgroup2OnlyHosts(t *testing.T) (a, b *Peer) {
	t.Helper()
	secret := newSecret(t)
	a = newPeer(t, "dakara", loopback(2), secret, "")
	a.Cgroup2Only()
	a.Start()
	b = newPeer(t, "tollana", loopback(3), secret, a.Addr)
	b.Cgroup2Only()
	b.Start()
	a.waitHosts("dakara", "tollana")
	return a, b
}

// TestCgroup2OnlyMoveRestored: between cgroup2-only hosts, a container
// that LXC restored (from saved state here, by a move's restore on the
// peer) moves live, there and back, with its limit.
func TestCgroup2OnlyMoveRestored(t *testing.T) {
	a, b := twoCgroup2OnlyHosts(t)
	ip := a.CreateRunning("c1")
	a.MustSh("echo stop > containers/c1/ctl")
	want := limitContainer(t, a.Daemon)
	a.MustSh("echo stop-stateful > containers/c1/ctl && echo start > containers/c1/ctl")
	n := Count(t, ip)

	a.MustSh("mv containers/c1 hosts/tollana/")
	wantMoved(t, "c1", a, b, "after the move")
	n = CountsPast(t, ip, n, "after the move of a restored container")
	checkLimit(t, b.Daemon, want, "on the target of a move")

	a.MustSh("mv hosts/tollana/c1 containers/")
	wantMoved(t, "c1", b, a, "after the move back")
	CountsPast(t, ip, n, "after the move back")
	checkLimit(t, a.Daemon, want, "after the move back")
	a.MustSh("echo stop > containers/c1/ctl")
}
