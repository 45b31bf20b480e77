package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"

	"ctrfs/ops/lxchelper"
)

// prepareMountPoint creates the directory, refuses one that is mounted and
// alive, and detaches a stale FUSE mount left by a daemon that was killed
// (its directory answers ENOTCONN). It asks with statfs(2), which always
// reaches the daemon: the kernel may answer a stat of the mount's root
// from what it keeps (fs/cache.go), daemon or not.
func prepareMountPoint(dir string, log *slog.Logger) error {
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(dir, &sfs); errors.Is(err, syscall.ENOTCONN) {
		log.Warn("detaching stale mount left by a dead daemon", "mount", dir)
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("detach stale mount %s: %w", dir, err)
		}
	}
	_, statErr := os.Stat(dir)
	if os.IsNotExist(statErr) {
		return os.MkdirAll(dir, 0o755)
	}
	if statErr != nil {
		return fmt.Errorf("mount point %s: %w", dir, statErr)
	}
	mounted, err := isMountPoint(dir)
	if err != nil {
		return err
	}
	if mounted {
		return fmt.Errorf("%s is already mounted (another ctrfs?); unmount it or choose another --mount", dir)
	}
	return nil
}

// isMountPoint looks the directory up in /proc/self/mountinfo.
func isMountPoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && lxchelper.UnescapeMountPath(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}
