package tests

import (
	"os"
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
	d.runInside(t, "c1", "./lockhold")
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
