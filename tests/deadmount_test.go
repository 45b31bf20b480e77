package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDeadDaemonMountAborted: a daemon that dies while something else
// still holds its /dev/fuse (as a daemon stuck in its own exit does, or a
// process that inherited the descriptor) leaves a mount that the kernel
// does not fail: whoever touches it waits for an answer that never comes.
// The next daemon started on it aborts that connection, so that every
// process waiting there fails at once, and mounts the tree afresh.
func TestDeadDaemonMountAborted(t *testing.T) {
	d := StartDaemon(t, "dakara")
	holdDevFuse(t, d.cmd.Process.Pid)
	conn := fuseConn(t, d.Mount)
	d.Kill()

	type waiter struct {
		script string
		stderr strings.Builder
		done   chan error
	}
	var waiters []*waiter
	for _, script := range []string{"cat " + d.Path("host"), "ls " + d.Path("containers")} {
		w := &waiter{script: script, done: make(chan error, 1)}
		cmd := exec.Command("sh", "-c", script)
		cmd.Stderr = &w.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { w.done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() }) // if the mount still hangs
		waiters = append(waiters, w)
	}
	waitLong(t, "both to wait on the dead daemon's mount", 30*time.Second, func() bool {
		return fuseWaiting(conn) >= len(waiters)
	})
	for _, w := range waiters {
		select {
		case err := <-w.done:
			t.Fatalf("%s ended on a mount with no daemon: %v: %s", w.script, err, w.stderr.String())
		default:
		}
	}

	// Not Start: its look into the mount would wait there too.
	d.launch()
	for _, w := range waiters {
		select {
		case err := <-w.done:
			if err == nil {
				t.Errorf("%s succeeded on the dead daemon's mount", w.script)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s still waits on the dead daemon's mount a minute after the next daemon started", w.script)
		}
	}
	waitLong(t, "the next daemon to mount", 30*time.Second, d.mounted)
	if !strings.Contains(d.Log(), "aborting and detaching the stale mount of a dead daemon") {
		t.Errorf("the daemon does not say it aborted the dead daemon's mount:\n%s", d.Log())
	}
	if host := d.Read("host"); host != d.Name {
		t.Errorf("host: %q", host)
	}
}

// holdDevFuse copies the daemon's /dev/fuse descriptor into this process
// until the test ends, keeping the daemon's FUSE connection from closing
// when the daemon dies.
func holdDevFuse(t *testing.T, pid int) {
	t.Helper()
	fds, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "fd", "*"))
	for _, fd := range fds {
		if target, _ := os.Readlink(fd); target != "/dev/fuse" {
			continue
		}
		n, _ := strconv.Atoi(filepath.Base(fd))
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatalf("pidfd_open %d: %v", pid, err)
		}
		defer unix.Close(pidfd)
		held, err := unix.PidfdGetfd(pidfd, n, 0)
		if err != nil {
			t.Fatalf("pidfd_getfd of /dev/fuse of %d: %v", pid, err)
		}
		t.Cleanup(func() { unix.Close(held) })
		return
	}
	t.Fatalf("process %d has no /dev/fuse open", pid)
}

// fuseConn is the number of the FUSE connection of the mount on dir: the
// minor number of its device, as fusectl names it.
func fuseConn(t *testing.T, dir string) string {
	t.Helper()
	conn, err := fuseConnOf(dir)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func fuseConnOf(dir string) (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			_, minor, _ := strings.Cut(f[2], ":")
			return minor, nil
		}
	}
	return "", fmt.Errorf("%s is not mounted", dir)
}

// fusectl is where fusectl shows the FUSE connections, mounted if it is not.
func fusectl() string {
	const dir = "/sys/fs/fuse/connections"
	if !isMounted(dir) {
		syscall.Mount("fusectl", dir, "fusectl", 0, "")
	}
	return dir
}

// fuseWaiting is how many requests wait on FUSE connection conn.
func fuseWaiting(conn string) int {
	b, _ := os.ReadFile(filepath.Join(fusectl(), conn, "waiting"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
