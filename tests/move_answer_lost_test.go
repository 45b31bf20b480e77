package tests

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestMoveHandoverAnswerLost: the connection of a live move breaks after
// the target has installed and restored the container but before its
// answer reaches the source. The source asks the target who owns it, the
// target keeps it, and the move succeeds with the container on exactly one
// host: the source's stopped copy goes at once, not at the next start.
func TestMoveHandoverAnswerLost(t *testing.T) {
	env, paused := pauseAt(t, "install-answer")
	a, b := twoHostsTargetEnv(t, env)
	ip := a.CreateRunning("c1")
	before := Count(t, ip)

	moved := make(chan error, 1)
	go func() {
		_, err := a.Sh("echo 'move tollana' > containers/c1/ctl")
		moved <- err
	}()
	waitPaused(t, paused)
	// Break the source's connections to the target's migration endpoint
	// (the gossip port + 1), as a network that drops them would.
	host, port, err := net.SplitHostPort(b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	gossip, _ := strconv.Atoi(port)
	mustRun(t, "ss", "-K", "dst", host, "dport", "=", strconv.Itoa(gossip+1))
	os.Remove(paused)
	if err := <-moved; err != nil {
		t.Fatalf("the move whose answer was lost failed: %v (error: %s)", err, a.Read("containers/c1/error"))
	}

	b.WantStatus("containers/c1", "RUNNING", "on the target after a move whose answer was lost")
	if after := Count(t, ip); after < before {
		t.Errorf("count went from %d to %d: the processes did not move", before, after)
	}
	if a.has("c1") {
		t.Errorf("c1 is still listed on the source: it is on both hosts")
	}
	if _, err := os.Stat(filepath.Join(a.LXCPath, "c1")); err == nil {
		t.Errorf("the source's LXC path still holds c1")
	}
}
