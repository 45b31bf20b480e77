package tests

import (
	"os"
	"testing"
)

// TestBtrfsDebian: a debian-template container (systemd, sshd, nginx)
// whose rootfs is a btrfs subvolume goes through a stateful snapshot
// and its restore, and stop-stateful and start, its counter going on
// from where each was taken. systemd watches /etc/localtime, a symlink,
// with inotify; CRIU failed to dump that watch on btrfs until ctrfs's
// patch 0014.
func TestBtrfsDebian(t *testing.T) {
	d := StartBtrfsDaemon(t, "dakara")
	ip := d.debianContainer("deb1")
	if got := d.Info("deb1")["storage"]; got != "btrfs" {
		t.Fatalf("info storage %q", got)
	}
	before := CountsPast(t, ip, 5, "before the snapshot")
	d.MustSh("echo 'snapshot s1 --stateful' > containers/deb1/ctl")
	atSnapshot := Count(t, ip)
	if err := os.WriteFile(d.rootfs("deb1", "root", "after-s1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	beforeRestore := CountsPast(t, ip, atSnapshot+10, "after the snapshot")
	d.MustSh("echo 'restore s1' > containers/deb1/ctl")
	if n := Count(t, ip); n >= beforeRestore || n < before {
		t.Errorf("after restore s1 the count is %d; %d before the snapshot, %d just before the restore", n, before, beforeRestore)
	}
	if exists(d.rootfs("deb1", "root", "after-s1")) {
		t.Error("a file made after the snapshot is there after its restore")
	}
	n := Count(t, ip)
	d.MustSh("echo stop-stateful > containers/deb1/ctl && echo start > containers/deb1/ctl")
	countFrom(t, ip, n, "over stop-stateful and start")
	d.systemRunning("deb1")
}
