package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"ctrfs/ops/lxchelper"
)

// prepareMountPoint creates the directory, refuses one that is mounted and
// alive, and takes over a FUSE mount left by a daemon that died
// (deadmount.go). It learns what is mounted there from
// /proc/self/mountinfo, not from the directory: a look into a dead
// daemon's mount can wait for an answer for good.
func prepareMountPoint(dir string, log *slog.Logger) error {
	m, err := mountAt(dir)
	if err != nil {
		return err
	}
	if m != nil && strings.HasPrefix(m.fstype, "fuse") {
		if err := takeOverDeadMount(dir, m, log); err != nil {
			return err
		}
	}
	_, statErr := os.Stat(dir)
	if os.IsNotExist(statErr) {
		return os.MkdirAll(dir, 0o755)
	}
	if statErr != nil {
		return fmt.Errorf("mount point %s: %w", dir, statErr)
	}
	if m, err := mountAt(dir); err != nil {
		return err
	} else if m != nil {
		return fmt.Errorf("%s is already mounted (another ctrfs?); unmount it or choose another --mount", dir)
	}
	return nil
}

// mountEntry is a mount as /proc/self/mountinfo shows it.
type mountEntry struct {
	fstype string // "fuse.ctrfs" for ctrfs's
	minor  int    // of its device: a FUSE mount's connection number
}

// mountAt is the mount on dir that a path sees (the last of those stacked
// there), or nil.
func mountAt(dir string) (*mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var found *mountEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTS
		pre, post, _ := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 1 || lxchelper.UnescapeMountPath(a[4]) != dir {
			continue
		}
		_, minor, _ := strings.Cut(a[2], ":")
		n, err := strconv.Atoi(minor)
		if err != nil {
			return nil, fmt.Errorf("mountinfo: device %q of %s", a[2], dir)
		}
		found = &mountEntry{fstype: b[0], minor: n}
	}
	return found, sc.Err()
}
