package tests

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownFinishesOperation: SIGTERM while a stateful snapshot is under
// way unmounts and exits 0 only once the snapshot has finished, and the
// snapshot is kept (ctrfs(8), SIGNALS). The operation runs on a context
// that shutdown does not cancel; this keeps it so.
func TestShutdownFinishesOperation(t *testing.T) {
	d, pause := pausingSnapshots(t)

	snapshotUnderSIGTERM(t, d, pause)
	d.waitStopped(2*time.Minute, "after the snapshot it waited for")

	d.Env = nil
	d.Start()
	if got := d.MustSh("ls containers/c1/snapshots"); !strings.Contains(got, "s1") {
		t.Fatalf("snapshots after the restart: %q; want s1", got)
	}
	d.WantStatus("containers/c1", "RUNNING", "after a snapshot finished under SIGTERM")
}

// pausingSnapshots starts dakara, its stateful snapshots pausing at
// snapshot-freeze (pauseAt's file is returned), with c1 running.
func pausingSnapshots(t *testing.T) (*Daemon, string) {
	t.Helper()
	env, pause := pauseAt(t, "snapshot-freeze")
	d := NewDaemon(t, "dakara")
	d.Env = []string{env}
	d.Start()
	d.CreateRunning("c1")
	return d, pause
}

// snapshotUnderSIGTERM takes the stateful snapshot s1 of c1 on d, sends
// SIGTERM while it is paused at pause (pauseAt's snapshot-freeze), and
// checks that the daemon waits for it: the snapshot finishes and its
// caller gets the answer.
func snapshotUnderSIGTERM(t *testing.T, d *Daemon, pause string) {
	t.Helper()
	snap := d.Background("echo 'snapshot s1 --stateful' > containers/c1/ctl")
	waitPaused(t, pause)
	d.cmd.Process.Signal(syscall.SIGTERM)
	waitLong(t, "the daemon to take SIGTERM", time.Minute, func() bool {
		return strings.Contains(d.Log(), "unmounting")
	})
	select {
	case err := <-d.exited:
		t.Fatalf("the daemon exited (%v) with a snapshot under way", err)
	default:
	}
	if err := os.Remove(pause); err != nil {
		t.Fatal(err)
	}
	if err := snap.Wait(); err != nil {
		t.Fatalf("snapshot s1 --stateful under SIGTERM: %v", err)
	}
}

// waitStopped waits up to within for the daemon, sent SIGTERM, to exit 0.
func (d *Daemon) waitStopped(within time.Duration, when string) {
	d.t.Helper()
	select {
	case err := <-d.exited:
		d.cmd = nil
		if err != nil {
			d.t.Fatalf("daemon exit after SIGTERM: %v", err)
		}
	case <-time.After(within):
		d.t.Fatalf("the daemon did not exit within %s %s", within, when)
	}
}
