package tests

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestStopStatefulWithDeadForegroundGroup: a container checkpointed while
// a terminal's foreground process group has no task left (an interactive
// shell, between reaping a command and taking the terminal back) is
// restored, the terminal given to its session's group. CRIU without
// scripts/criu-patches/0006 failed that restore ("tty: Failed to set
// group N on M: No such process"), so stop-stateful refused at the
// rehearsal and a snapshot of the same moment could not be restored.
func TestStopStatefulWithDeadForegroundGroup(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")
	d.runInside(t, "c1", "./ttyfg")
	var pid, dead string
	waitLong(t, "ttyfg to leave its terminal to a dead group", time.Minute, func() bool {
		b, _ := os.ReadFile(d.rootfs("c1", "var/lib/ttyfg/ready"))
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "pid "); ok {
				pid = v
			}
			if v, ok := strings.CutPrefix(l, "foreground "); ok {
				dead = v
			}
		}
		return pid != "" && dead != ""
	})
	// Field 8 of /proc/PID/stat: the terminal's foreground group.
	foreground := func() string {
		out, err := d.Sh("lxc-attach -P " + d.LXCPath + " -n c1 -- cat /proc/" + pid + "/stat")
		if err != nil {
			t.Fatalf("ttyfg (pid %s) is gone: %v %q", pid, err, out)
		}
		f := strings.Fields(out[strings.LastIndex(out, ")")+1:])
		return f[5]
	}
	if fg := foreground(); fg != dead {
		t.Fatalf("before stop-stateful the terminal's foreground group is %s, not the dead %s", fg, dead)
	}

	d.MustSh("echo stop-stateful > containers/c1/ctl")
	d.WantStatus("containers/c1", "STOPPED", "after stop-stateful")
	d.MustSh("echo start > containers/c1/ctl")
	d.WantStatus("containers/c1", "RUNNING", "after start")
	if fg := foreground(); fg != pid {
		t.Errorf("after the restore the terminal's foreground group is %s, not the session's %s", fg, pid)
	}
}
