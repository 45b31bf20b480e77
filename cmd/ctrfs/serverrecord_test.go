package main

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestServerRecordAlive: a recorded daemon is alive only as itself: not
// once it has exited, nor as another process that got its pid.
func TestServerRecordAlive(t *testing.T) {
	start, _, err := procStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if r := (serverRecord{pid: os.Getpid(), start: start}); !r.alive() {
		t.Error("this process is not alive by its own record")
	}
	if r := (serverRecord{pid: os.Getpid(), start: start + "1"}); r.alive() {
		t.Error("a record with another start time names this process")
	}
	// Exited, not yet reaped: how a killed daemon stuck in its exit
	// looks (its main thread gone).
	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	var zstart, state string
	for deadline := time.Now().Add(10 * time.Second); state != "Z" && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		zstart, state, _ = procStart(zombie.Process.Pid)
	}
	if r := (serverRecord{pid: zombie.Process.Pid, start: zstart}); state != "Z" || r.alive() {
		t.Errorf("an exiting process (state %q) is alive by its record", state)
	}
	zombie.Wait()
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	if r := (serverRecord{pid: exited.Process.Pid, start: start}); r.alive() {
		t.Error("an exited process is alive by its record")
	}
}

// TestMountAt: mountinfo names what is mounted on a directory, and
// nothing on one that is not a mount point.
func TestMountAt(t *testing.T) {
	m, err := mountAt("/proc")
	if err != nil || m == nil || m.fstype != "proc" {
		t.Fatalf("mountAt(/proc): %+v, %v", m, err)
	}
	if m, err := mountAt(t.TempDir()); err != nil || m != nil {
		t.Fatalf("mountAt of a plain directory: %+v, %v", m, err)
	}
}
