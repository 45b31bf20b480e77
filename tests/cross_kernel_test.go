package tests

import (
	"strings"
	"testing"

	"ctrfs/internal/tree"
)

// TestMoveToOlderKernel: the way back after a kernel upgrade is a move to
// a host with an older kernel. It goes through when that kernel has every
// feature a restore may use (here the target plays 6.1.0 with the features
// this machine has), and is refused before anything is sent when it lacks
// one, the container RUNNING at the source and `error` naming the feature.
func TestMoveToOlderKernel(t *testing.T) {
	a, b := twoHostsTargetEnv(t, "CTRFS_TEST_KERNEL=6.1.0")
	playsKernel(t, a, "tollana", "6.1.0")
	ip := a.CreateRunning("c1")
	before := Count(t, ip)
	a.MustSh("echo 'move tollana' > containers/c1/ctl")
	wantMoved(t, "c1", a, b, "after a move to an older kernel")
	if after := Count(t, ip); after < before {
		t.Errorf("count went from %d to %d: the processes did not move", before, after)
	}
}

func TestMoveRefusedForMissingKernelFeature(t *testing.T) {
	a, b := twoHostsTargetEnv(t, "CTRFS_TEST_KERNEL=6.1.0:")
	playsKernel(t, a, "tollana", "6.1.0")
	ip := a.CreateRunning("c1")
	before := Count(t, ip)
	if _, err := a.Sh("echo 'move tollana' > containers/c1/ctl"); err == nil || !strings.Contains(err.Error(), "Operation not supported") {
		t.Fatalf("move to a kernel without the features: %v", err)
	}
	stillHere(t, a, b, ip, before)
	msg := a.Read("containers/c1/error")
	if !strings.Contains(msg, "6.1.0 lacks") || !strings.Contains(msg, "criu check --feature") {
		t.Errorf("error does not name the missing kernel features: %q", msg)
	}
}

// playsKernel fails the test unless a shows peer running kernel release.
func playsKernel(t *testing.T, a *Peer, peer, release string) {
	t.Helper()
	if info := tree.ParseKV(a.Read("hosts/" + peer + "/info")); info["kernel"] != release {
		t.Fatalf("hosts/%s/info shows kernel %q, not the %s it plays", peer, info["kernel"], release)
	}
}
