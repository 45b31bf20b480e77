package tests

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestStopStatefulWithFileLocks: a task that holds locks on a file of the
// container's rootfs (MariaDB does, on its data files) is checkpointed
// and restored. The restore rehearsal shares those files with the held
// original, whose task still holds the locks: a rehearsal that restored
// them waited on the original until CRIU's deadline, and stop-stateful
// refused. After the start the restored task holds both locks again.
func TestStopStatefulWithFileLocks(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")
	build := exec.Command("go", "build", "-o", d.rootfs("c1", "lockhold"), "./lockhold")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build lockhold: %v: %s", err, out)
	}
	appendFile(t, d.rootfs("c1", "etc/inittab"), "::respawn:/lockhold\n")
	d.MustSh("lxc-attach -P " + d.LXCPath + " -n c1 -- kill -HUP 1")
	var pid string
	waitLong(t, "lockhold to hold its locks", time.Minute, func() bool {
		b, _ := os.ReadFile(d.rootfs("c1", "var/lib/lockhold/ready"))
		pid = strings.TrimPrefix(strings.TrimSpace(string(b)), "pid ")
		return pid != ""
	})
	tryLocks := func() (string, error) {
		return d.Sh("lxc-attach -P " + d.LXCPath + " -n c1 -- /lockhold -check")
	}
	if out, err := tryLocks(); err == nil {
		t.Fatalf("another process took lockhold's locks: %s", out)
	}

	d.MustSh("echo stop-stateful > containers/c1/ctl")
	d.WantStatus("containers/c1", "STOPPED", "after stop-stateful")
	d.MustSh("echo start > containers/c1/ctl")
	d.WantStatus("containers/c1", "RUNNING", "after start")
	if out, err := d.Sh("lxc-attach -P " + d.LXCPath + " -n c1 -- cat /proc/" + pid + "/cmdline"); err != nil || !strings.Contains(out, "lockhold") {
		t.Fatalf("lockhold is not pid %s after the restore: %v %q", pid, err, out)
	}
	if out, err := tryLocks(); err == nil {
		t.Errorf("the restored lockhold does not hold its locks: %s", out)
	}
}
