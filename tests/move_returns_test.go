package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// movedAway lists the directories of copies that moved away and are not
// removed yet on d's LXC path.
func (d *Daemon) movedAway() []string {
	dirs, _ := filepath.Glob(filepath.Join(d.LXCPath, ".*.moved-away"))
	return dirs
}

// TestMoveWriteReturnsWhenDone (issue 19, item 4): the ctl write of a move
// returns when the move is done, not after the source has removed its
// copy's files (seconds for a big rootfs, which the write used to wait
// for). Each source's removal is held (a pause point) until the test
// lets it go: every write returns meanwhile, with the container running on
// the target alone, and a move back works at once. Live, post-copy and mv.
func TestMoveWriteReturnsWhenDone(t *testing.T) {
	envA, heldA := pauseAt(t, "moved-away-remove")
	envB, heldB := pauseAt(t, "moved-away-remove")
	a, b := twoHostsWith(t, []string{envA}, []string{envB})
	ip := a.CreateRunning("c1")
	for _, m := range []struct {
		from, to *Peer
		held     string
		script   string
	}{
		{a, b, heldA, "echo 'move tollana' > containers/c1/ctl"},
		{b, a, heldB, "echo 'move dakara --post-copy' > containers/c1/ctl"},
		{a, b, heldA, "mv containers/c1 hosts/tollana/"},
	} {
		began := time.Now()
		m.from.MustSh(m.script)
		took := time.Since(began)
		wantMoved(t, "c1", m.from, m.to, "when the write of "+m.script+" returned")
		if ls := strings.Fields(m.from.MustSh("ls containers")); contains(ls, "c1") {
			t.Errorf("after %s, %s lists %v", m.script, m.from.Name, ls)
		}
		// The removal of the source's copy waits at its pause point:
		// the write did not wait for it.
		waitFor(t, "the removal of "+m.from.Name+"'s copy to begin after "+m.script, func() bool { return exists(m.held) })
		if len(m.from.movedAway()) == 0 {
			t.Errorf("after %s, %s holds %v", m.script, m.from.Name, m.from.movedAway())
		}
		secs, _ := strconv.ParseFloat(m.to.Info("c1")["move-seconds"], 64)
		t.Logf("%s: the write took %.2f s, move-seconds %.2f s", m.script, took.Seconds(), secs)
		Count(t, ip)
	}
	// The first move's removal is still held on dakara: a move back came
	// and went over it.
	os.Remove(heldA)
	os.Remove(heldB)
	waitFor(t, "the moved-away copies to go", func() bool { return len(a.movedAway())+len(b.movedAway()) == 0 })
	b.MustSh("echo stop > containers/c1/ctl")
}
