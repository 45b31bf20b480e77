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
// work and exits with exitStopped. The helper is this test binary, run
// again as one.
func TestLifeline(t *testing.T) {
	if dir := os.Getenv("CTRFS_TEST_LIFELINE_DIR"); dir != "" {
		lifelineHelper(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLifeline$")
	cmd.Env = append(os.Environ(), "CTRFS_TEST_LIFELINE_DIR="+dir)
	lifeline, started, err := withLifeline(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer lifeline.Close()
	err = cmd.Start()
	started()
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var pids []int
	for deadline := time.Now().Add(20 * time.Second); len(pids) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the helper did not start its processes")
		}
		pids = pids[:0]
		for _, f := range []string{"child", "orphan"} {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil && strings.HasSuffix(string(b), "\n") {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				pids = append(pids, pid)
			}
		}
	}
	lifeline.Close()
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitStopped {
		t.Fatalf("the helper ended with %v; want exit status %d", err, exitStopped)
	}
	if _, err := os.Stat(filepath.Join(dir, "undone")); err != nil {
		t.Error("the helper did not undo its work")
	}
	for _, pid := range pids {
		if !Gone(pid) {
			t.Errorf("process %d of the helper still runs", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// lifelineHelper is TestLifeline's helper: a child, and an orphan (whose
// parent exited) that it keeps as their subreaper.
func lifelineHelper(dir string) {
	followLifeline(func() { os.WriteFile(filepath.Join(dir, "undone"), nil, 0o600) }, false)
	exec.Command("sh", "-c", "sleep 300 & echo $! > "+filepath.Join(dir, "orphan")).Run()
	child := exec.Command("sleep", "300")
	if child.Start() == nil {
		os.WriteFile(filepath.Join(dir, "child"), []byte(strconv.Itoa(child.Process.Pid)+"\n"), 0o600)
	}
	time.Sleep(time.Minute)
	os.Exit(1)
}
