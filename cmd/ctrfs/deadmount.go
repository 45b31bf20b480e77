package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// A daemon that dies leaves its FUSE mount behind. Once nothing holds the
// daemon's /dev/fuse the kernel fails every request on the mount
// (ENOTCONN); but while something still does, the connection lives on
// unserved and every process that touches the mount waits for good: a
// daemon stuck in its own exit (a request to its own mount under way when
// it was killed, see mountFUSE) or a process that inherited /dev/fuse. The
// next daemon on the mount point then aborts the connection through
// fusectl, which fails every request waiting on it at once, and detaches
// the mount.

// fusectlDir is where fusectl shows each FUSE connection.
const fusectlDir = "/sys/fs/fuse/connections"

// answerWait is how long a live FUSE server gets to answer a statfs: it
// answers within milliseconds; one that has not answered by then is asked
// no more, and the record of who serves the mount decides.
const answerWait = 2 * time.Second

// takeOverDeadMount aborts and detaches the FUSE mount m on dir if its
// daemon is dead, and refuses it if something still serves it.
func takeOverDeadMount(dir string, m *mountEntry, log *slog.Logger) error {
	why, err := deadServer(dir, m)
	if err != nil {
		return err
	}
	log.Warn("aborting and detaching the stale mount of a dead daemon", "mount", dir, "connection", m.minor, "because", why)
	if err := abortConnection(m.minor); err != nil {
		return fmt.Errorf("abort FUSE connection %d of the stale mount %s: %w", m.minor, dir, err)
	}
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("detach stale mount %s: %w", dir, err)
	}
	removeServerRecord(m.minor)
	return nil
}

// deadServer says why the FUSE mount m on dir has no live server, or
// fails if it may have one. A mount that answers is alive; one that
// answers ENOTCONN is dead; one that does not answer is dead if a ctrfs
// daemon recorded that it serves it and that daemon is gone or exiting.
func deadServer(dir string, m *mountEntry) (string, error) {
	answered := make(chan error, 1)
	go func() {
		// Waits until the server answers or the connection is aborted.
		var sfs syscall.Statfs_t
		answered <- syscall.Statfs(dir, &sfs)
	}()
	select {
	case err := <-answered:
		if errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED) {
			return "it answers ENOTCONN", nil
		}
		if err != nil {
			return "", fmt.Errorf("mount point %s: %w", dir, err)
		}
		return "", fmt.Errorf("%s is already mounted (another ctrfs?); unmount it or choose another --mount", dir)
	case <-time.After(answerWait):
	}
	rec, err := readServerRecord(m.minor)
	switch {
	case err == nil && rec.mount == dir && !rec.alive():
		return fmt.Sprintf("it does not answer, and its daemon (pid %d) is gone or exiting", rec.pid), nil
	case err == nil && rec.mount == dir:
		return "", fmt.Errorf("%s does not answer, and its daemon (pid %d) still runs; stop it, or choose another --mount", dir, rec.pid)
	}
	return "", fmt.Errorf("%s is a FUSE mount that does not answer (connection %d), and no ctrfs daemon recorded serving it: "+
		"if nothing serves it, abort it (echo 1 > %s/%d/abort) and unmount it", dir, m.minor, fusectlDir, m.minor)
}

// abortConnection aborts FUSE connection n through fusectl, mounted first
// if it is not. A connection already gone has nothing to abort.
func abortConnection(n int) error {
	if err := mountFusectl(); err != nil {
		return err
	}
	err := os.WriteFile(filepath.Join(fusectlDir, strconv.Itoa(n), "abort"), []byte("1"), 0o200)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// mountFusectl mounts fusectl on fusectlDir if it is not there.
func mountFusectl() error {
	ctl, err := mountAt(fusectlDir)
	if err != nil {
		return err
	}
	if ctl == nil || ctl.fstype != "fusectl" {
		if err := syscall.Mount("fusectl", fusectlDir, "fusectl", 0, ""); err != nil {
			return fmt.Errorf("mount fusectl on %s: %w", fusectlDir, err)
		}
	}
	return nil
}
