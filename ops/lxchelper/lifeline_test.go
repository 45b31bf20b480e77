package lxchelper

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLifeline: a helper whose lifeline ends (its daemon closed it, or
// died) kills what it runs, the orphans of what it ran too, undoes its
// work and exits with exitStopped. A dump is let finish when its daemon
// died, and stopped at once when its daemon stops it. The helper is this
// test binary, run again as one.
func TestLifeline(t *testing.T) {
	if dir := os.Getenv("CTRFS_TEST_LIFELINE_DIR"); dir != "" {
		lifelineHelper(dir, os.Getenv("CTRFS_TEST_LIFELINE_DUMPING") != "")
		return
	}
	t.Run("daemon gone", func(t *testing.T) {
		h := startLifelineHelper(t, false)
		h.lifeline.Close()
		h.wantStopped(t)
	})
	t.Run("dump stopped by its daemon", func(t *testing.T) {
		h := startLifelineHelper(t, true)
		stopHelper(h.lifeline)
		h.wantStopped(t)
	})
	t.Run("dump whose daemon is gone", func(t *testing.T) {
		h := startLifelineHelper(t, true)
		h.lifeline.Close()
		// Let finish: what it runs still runs a moment later, however
		// long the helper took to notice.
		time.Sleep(time.Second)
		for _, pid := range h.pids {
			if Gone(pid) {
				t.Fatalf("process %d of a dump whose daemon died was stopped at once", pid)
			}
		}
		for _, pid := range h.pids { // the dump finishes
			syscall.Kill(pid, syscall.SIGKILL)
		}
		h.wantStopped(t)
	})
}

type lifelineRun struct {
	cmd      *exec.Cmd
	lifeline *os.File
	dir      string
	pids     []int // its child and its orphan
}

func startLifelineHelper(t *testing.T, dumping bool) *lifelineRun {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLifeline$")
	cmd.Env = append(os.Environ(), "CTRFS_TEST_LIFELINE_DIR="+dir)
	if dumping {
		cmd.Env = append(cmd.Env, "CTRFS_TEST_LIFELINE_DUMPING=1")
	}
	lifeline, started, err := withLifeline(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lifeline.Close() })
	err = cmd.Start()
	started()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	h := &lifelineRun{cmd: cmd, lifeline: lifeline, dir: dir}
	for deadline := time.Now().Add(20 * time.Second); len(h.pids) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the helper did not start its processes")
		}
		h.pids = h.pids[:0]
		for _, f := range []string{"child", "orphan"} {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil && strings.HasSuffix(string(b), "\n") {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				h.pids = append(h.pids, pid)
			}
		}
	}
	t.Cleanup(func() {
		for _, pid := range h.pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return h
}

// wantStopped waits for the helper to end by its lifeline, its work
// undone and its processes gone.
func (h *lifelineRun) wantStopped(t *testing.T) {
	t.Helper()
	err := h.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitStopped {
		t.Fatalf("the helper ended with %v; want exit status %d", err, exitStopped)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "undone")); err != nil {
		t.Error("the helper did not undo its work")
	}
	for _, pid := range h.pids {
		if !Gone(pid) {
			t.Errorf("process %d of the helper still runs", pid)
		}
	}
}

// lifelineHelper is TestLifeline's helper: a child, and an orphan (whose
// parent exited) that it keeps as their subreaper.
func lifelineHelper(dir string, dumping bool) {
	followLifeline(func() { os.WriteFile(filepath.Join(dir, "undone"), nil, 0o600) }, dumping)
	exec.Command("sh", "-c", "sleep 300 & echo $! > "+filepath.Join(dir, "orphan")).Run()
	child := exec.Command("sleep", "300")
	if child.Start() == nil {
		os.WriteFile(filepath.Join(dir, "child"), []byte(strconv.Itoa(child.Process.Pid)+"\n"), 0o600)
	}
	time.Sleep(time.Minute)
	os.Exit(1)
}
