package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCgroup2OnlyPostCopyFailedResumes: on hosts with cgroup2 alone, a
// post-copy move of a container that LXC restored fails with the
// container's tasks frozen in their cgroup (as a CRIU killed before it has
// seized them leaves them), and the container runs on at the source. The
// monitor of a container that LXC 5.0.2 restored there knows no cgroup to
// thaw (LXC's own thaw fails), so the thaw must not be left to LXC, nor
// its failure go unsaid.
func TestCgroup2OnlyPostCopyFailedResumes(t *testing.T) {
	env, pause := pauseAt(t, "postcopy-serving")
	secret := newSecret(t)
	a := newPeer(t, "dakara", loopback(2), secret, "")
	a.Env = []string{env}
	a.Cgroup2Only()
	a.Start()
	b := newPeer(t, "tollana", loopback(3), secret, a.Addr)
	b.Cgroup2Only()
	b.Start()
	a.waitHosts("dakara", "tollana")
	ip := a.CreateRunning("c1")
	a.MustSh("echo stop-stateful > containers/c1/ctl && echo start > containers/c1/ctl")
	before := Count(t, ip)

	move, source, _ := stalledPostCopy(t, a, b, pause)
	freeze := cgroupFreezeFile(t, a.Daemon, a.Info("c1")["pid"])
	if err := os.WriteFile(freeze, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(freeze, []byte("0"), 0o644) })
	syscall.Kill(source, syscall.SIGKILL)
	if err := move.Wait(); err == nil {
		t.Fatal("the move succeeded")
	}
	if e := a.Read("containers/c1/error"); !strings.Contains(e, "RUNNING here again") {
		t.Errorf("error of the failed move: %q (%s)", e, move.Stderr())
	}
	stillHere(t, a, b, ip, before)
	CountsPast(t, ip, Count(t, ip), "after the failed post-copy move")
	a.MustSh("echo stop > containers/c1/ctl")
}

// cgroupFreezeFile is the cgroup.freeze of the cgroup2 cgroup of the
// process pid, which runs under d.
func cgroupFreezeFile(t *testing.T, d *Daemon, pid string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(d.cgroupMounts()["unified"], path, "cgroup.freeze")
		}
	}
	t.Fatalf("process %s is in no cgroup2 cgroup", pid)
	return ""
}
