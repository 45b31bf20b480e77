package tests

import (
	"os"
	"strconv"
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

// TestMoveOverSlowLinkKeepsSession: a live move whose transfer takes many
// times the target's session deadline, over a slow link (the source writes
// at 1 MiB/s, CTRFS_TEST_SEND_RATE, with 8 MiB of rootfs that does not
// compress), still succeeds: the source's renewals do not wait behind the
// batches of chunks on the move's connection. Before, a renewal queued
// behind up to four 8 MiB batches, no call reached the target for longer
// than the deadline, and the target expired the session of a move that
// was sending ("no such migration session"), as a 1 GiB container's move
// did on the test bed.
func TestMoveOverSlowLinkKeepsSession(t *testing.T) {
	const idle = 3 * time.Second
	env := "CTRFS_TEST_SESSION_IDLE=" + idle.String()
	a, b := twoHostsWith(t, []string{env, "CTRFS_TEST_SEND_RATE=" + strconv.Itoa(1<<20)}, []string{env})
	ip := a.CreateRunning("c1")
	// Random bytes: zstd cannot shrink them, so about 8 s of sending at
	// the rate, in one batch longer than the deadline.
	a.fillRootfs("c1", 8)
	before := Count(t, ip)

	t0 := time.Now()
	if out, err := a.Sh("echo 'move tollana' > containers/c1/ctl"); err != nil {
		why, _ := a.Sh("cat containers/c1/error")
		t.Fatalf("the move over a slow link failed: %v: %s\nerror: %s\ntarget's log:\n%s", err, out, why, b.Log())
	}
	if took := time.Since(t0); took < 2*idle {
		t.Fatalf("the move took %s, not the several times the session deadline (%s) the test needs: is CTRFS_TEST_SEND_RATE applied?", took, idle)
	}
	wantMoved(t, "c1", a, b, "after a move over a slow link")
	countFrom(t, ip, before, "over the move")
	if log := b.Log(); strings.Contains(log, "migration session expired") {
		t.Errorf("the target let the session expire while the source sent:\n%s", log)
	}
	b.MustSh("echo stop > containers/c1/ctl")
}
