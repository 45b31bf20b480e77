package tests

import (
	"os"
	"strings"
	"testing"
	"time"
)

// targetSessionIdle is how long a move's target keeps a session whose
// source makes no call: cluster's sessionIdle (30 s), shortened for the
// test through CTRFS_TEST_SESSION_IDLE on both hosts (the source renews
// every third of it).
const targetSessionIdle = 6 * time.Second

// TestMoveOutlastsSessionIdle: the source works between two calls for
// longer than the target's session deadline (it packs the rootfs, held
// there by a pause; a big rootfs, or a slow host, takes as long) and the
// move still succeeds: the source keeps the session alive while it works.
// Before, the target dropped the session 30 s after Begin and the move
// failed every time for the debian container on an emulated host.
func TestMoveOutlastsSessionIdle(t *testing.T) {
	env, paused := pauseAt(t, "move-pack-rootfs")
	idle := "CTRFS_TEST_SESSION_IDLE=" + targetSessionIdle.String()
	a, b := twoHostsWith(t, []string{env, idle}, []string{idle})
	ip := a.CreateRunning("c1")
	before := Count(t, ip)

	move := &backgroundMove{stderr: t.TempDir() + "/stderr"}
	move.Cmd = a.Background("echo 'move tollana' > containers/c1/ctl 2>" + move.stderr)
	waitPaused(t, paused)
	// Past the deadline by half of it: on the old code the session is gone
	// by now (it went targetSessionIdle after Begin, before the pause).
	time.Sleep(targetSessionIdle * 3 / 2)
	if err := os.Remove(paused); err != nil {
		t.Fatal(err)
	}
	if err := move.Wait(); err != nil {
		t.Fatalf("the move failed after the source packed for longer than the target's session deadline: %v: %s", err, move.Stderr())
	}
	wantMoved(t, "c1", a, b, "after a move that packed the rootfs for longer than the session deadline")
	countFrom(t, ip, before, "over the move")
	if log := b.Log(); strings.Contains(log, "migration session expired") {
		t.Errorf("the target let the session expire while the source worked:\n%s", log)
	}
	b.MustSh("echo stop > containers/c1/ctl")
}
