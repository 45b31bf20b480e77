package tests

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A live move's target restores lazily from the precopy it unpacked: CRIU's
// lazy-pages daemon, started just before the restore, copies the memory
// in. TestLazyRestoreFailures ends that daemon, then the target daemon, at
// that point of a move: each time the move fails, the container runs on
// at the source, the target keeps no copy and no lazy-pages daemon is left
// waiting for a restore that will never come.
func TestLazyRestoreFailures(t *testing.T) {
	secret := newSecret(t)
	env, pause := pauseAt(t, "lazy-restore")
	a := startPeer(t, "dakara", loopback(2), secret, "")
	b := startPeer(t, "tollana", loopback(3), secret, a.Addr, env)
	a.waitHosts("dakara", "tollana")
	ip := a.CreateRunning("c1")

	for _, kill := range []string{"the lazy-pages daemon", "the target daemon"} {
		before := Count(t, ip)
		move := a.Background("echo 'move tollana' > containers/c1/ctl")
		waitPaused(t, pause)
		pid := lazyPid(t, pause)
		t.Cleanup(func() { // one this test made ctrfs leave, if it failed
			if cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); strings.Contains(string(cmd), "lazy-pages") {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		})
		if kill == "the lazy-pages daemon" {
			syscall.Kill(pid, syscall.SIGKILL)
		} else {
			b.Kill()
			os.Remove(pause)
			b.Start() // the source learns from it that the copy is gone
		}
		os.Remove(pause)
		done := make(chan error, 1)
		go func() { done <- move.Wait() }()
		var err error
	waiting:
		for {
			select {
			case err = <-done:
				break waiting
			case <-time.After(20 * time.Millisecond):
				if exists(pause) { // paused again: a second restore attempt
					os.Remove(pause)
					t.Errorf("the target tried the restore again after %s was killed", kill)
				}
			}
		}
		if err == nil {
			t.Fatalf("the move succeeded although %s was killed", kill)
		}
		stillHere(t, a, b, ip, before)
		waitLong(t, "the lazy-pages daemon to end after "+kill+" was killed", 30*time.Second, func() bool {
			return syscall.Kill(pid, 0) != nil
		})
		a.waitHosts("dakara", "tollana")
	}
	a.MustSh("echo stop > containers/c1/ctl")
}

// lazyPid is the lazy-pages daemon's pid that the pause file names.
func lazyPid(t *testing.T, pause string) int {
	t.Helper()
	b, _ := os.ReadFile(pause)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	pid, err := strconv.Atoi(lines[len(lines)-1])
	if len(lines) < 2 || err != nil || pid <= 1 {
		t.Fatalf("the pause names no lazy-pages daemon: %q", b)
	}
	return pid
}
