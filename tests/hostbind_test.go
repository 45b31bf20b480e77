package tests

import (
	"os"
	"strings"
	"testing"
)

// TestHostLibBindMount: a container with a read-only bind mount of the
// host's /lib (LXC's own busybox template makes them) goes through
// stop-stateful and start with CRIU's default mount engine, and /lib is
// still the host's, read-only. /lib is a symlink to usr/lib on Debian 12,
// and LXC's rootfs mount point is beneath it while it restores
// (/usr/lib/<triplet>/lxc/rootfs): mount-v2 failed on the symlink, and in
// an unprivileged container both engines failed on the locked mount
// beneath it, so stop-stateful was refused. CRIU patch 0011.
func TestHostLibBindMount(t *testing.T) {
	bothKinds(t, hostLibBindMount)
}

func hostLibBindMount(t *testing.T, kind string) {
	d := StartDaemon(t, "dakara")
	d.reachableBase()
	ip := d.createRunning("c1", "echo 'create c1 "+kind+"' > ctl")
	d.MustSh("echo stop > containers/c1/ctl && echo 'lxc.mount.entry = /lib lib none ro,bind 0 0' >> containers/c1/config")
	d.MustSh("echo start > containers/c1/ctl")
	host, err := os.ReadFile("/lib/os-release")
	if err != nil {
		t.Fatal(err)
	}
	wantHostLib := func(when string) {
		t.Helper()
		if out, err := d.attach("c1", "cat", "/lib/os-release"); err != nil || out != strings.TrimSpace(string(host)) {
			t.Errorf("%s: /lib/os-release in c1 is not the host's: %v: %q", when, err, out)
		}
		if out, err := d.attach("c1", "touch", "/lib/ctrfs-written"); err == nil || !strings.Contains(out, "Read-only file system") {
			t.Errorf("%s: touch /lib/ctrfs-written in c1: %v: %q; want Read-only file system", when, err, out)
		}
	}
	wantHostLib("after start")
	before := Count(t, ip)

	d.MustSh("echo stop-stateful > containers/c1/ctl")
	if got := d.Info("c1")["rehearsal-restore-attempts"]; got != "mount-v2 ok" {
		t.Errorf("stop-stateful's rehearsal: rehearsal-restore-attempts %q; want mount-v2 ok", got)
	}
	d.MustSh("echo start > containers/c1/ctl")
	if got := d.Info("c1")["restore-attempts"]; got != "mount-v2 ok" {
		t.Errorf("start: restore-attempts %q; want mount-v2 ok", got)
	}
	CountsPast(t, ip, before, "after stop-stateful and start")
	wantHostLib("after stop-stateful and start")
	d.MustSh("echo stop > containers/c1/ctl")
}
