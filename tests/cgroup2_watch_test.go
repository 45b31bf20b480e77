package tests

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCgroup2WatchOnControllerFile: a container whose process watches a
// file that a cgroup2 controller adds to a child cgroup, as systemd does
// for every unit (memory.events), is restored. CRIU 4.2 restored the
// watch before it enabled the controllers again (cgroup.subtree_control
// is restored after the tasks), so the file did not exist yet and every
// restore of a Debian container on a stock host failed ("fsnotify: Unable
// to open .../memory.events"). tests/cgwatch plays systemd. In an
// unprivileged container the restored root task may not write the cgroup
// files CRIU made (the host's root owns them): CRIU patch 0001 has
// usernsd write them, or the restore failed with EACCES on
// cgroup.subtree_control.
func TestCgroup2WatchOnControllerFile(t *testing.T) {
	bothKinds(t, cgroup2Watch)
}

func cgroup2Watch(t *testing.T, kind string) {
	d := startCgroup2Only(t)
	if kind == "--unprivileged" {
		d.reachableBase()
	}
	ip := d.createRunning("c1", "echo 'create c1 "+kind+"' > ctl")
	if want := map[string]string{"--privileged": "yes", "--unprivileged": "no"}[kind]; d.Info("c1")["privileged"] != want {
		t.Fatalf("create c1 %s: info says privileged %q", kind, d.Info("c1")["privileged"])
	}
	pid := startCgwatch(t, d, "c1")
	n := Count(t, ip)
	if _, err := d.Sh("echo stop-stateful > containers/c1/ctl"); err != nil {
		t.Fatalf("stop-stateful: %v; error: %s", err, d.Read("containers/c1/error"))
	}
	if _, err := d.Sh("echo start > containers/c1/ctl"); err != nil {
		t.Fatalf("start from saved state: %v\nerror: %s", err, d.Read("containers/c1/error"))
	}
	n = CountsPast(t, ip, n, "after stop-stateful and start")
	wantCgwatch(t, d, "c1", pid, "after stop-stateful and start")
	d.MustSh("echo 'snapshot s1 --stateful' > containers/c1/ctl && echo 'restore s1' > containers/c1/ctl")
	CountsPast(t, ip, n, "after a stateful snapshot and its restore")
	wantCgwatch(t, d, "c1", pid, "after a stateful snapshot and its restore")
	d.MustSh("echo stop > containers/c1/ctl")
}

// startCgwatch builds tests/cgwatch into the container's rootfs, starts it
// as a respawned service of its init and returns its pid in the container
// once it watches.
func startCgwatch(t *testing.T, d *Daemon, name string) string {
	t.Helper()
	build := exec.Command("go", "build", "-o", d.rootfs(name, "cgwatch"), "./cgwatch")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cgwatch: %v: %s", err, out)
	}
	appendFile(t, d.rootfs(name, "etc/inittab"), "::respawn:/cgwatch\n")
	d.MustSh("lxc-attach -P " + d.LXCPath + " -n " + name + " -- kill -HUP 1")
	var pid string
	waitLong(t, "cgwatch to watch", time.Minute, func() bool {
		b, _ := os.ReadFile(d.rootfs(name, "var/lib/cgwatch/ready"))
		pid = strings.TrimPrefix(strings.TrimSpace(string(b)), "pid ")
		return pid != ""
	})
	return pid
}

// wantCgwatch fails the test unless cgwatch runs on with the same pid, in
// its unit, the controller enabled for the unit.
func wantCgwatch(t *testing.T, d *Daemon, name, pid, when string) {
	t.Helper()
	out := d.MustSh("lxc-attach -P " + d.LXCPath + " -n " + name + " -- /bin/sh -c 'cat /proc/" + pid + "/cgroup /sys/fs/cgroup/cgroup.subtree_control; ls /sys/fs/cgroup/unit'")
	for _, want := range []string{"0::/unit", "hugetlb", "hugetlb.2MB.events"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s: cgwatch (pid %s) or its cgroup is not as it was (no %q):\n%s", when, pid, want, out)
		}
	}
}
