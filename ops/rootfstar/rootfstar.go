// Package rootfstar archives a container's rootfs with GNU tar and
// unpacks it again: a whole tree (a snapshot, a template's cache), or in
// tar's listed-incremental format a whole tree made while the container
// runs and then only what changed since, made while it is frozen or
// stopped (a stateful snapshot, a move). Names are sorted and owners kept
// as numbers, so that archives of much the same tree are much the same
// bytes, which the image store's chunks then share. It knows nothing of
// containers or the store: it is given directories and archive files.
package rootfstar

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Flags keep owners as numbers (the container's ids mean nothing on the
// host) and extended attributes (file capabilities).
var Flags = []string{"--numeric-owner", "--xattrs", "--xattrs-include=*", "--one-file-system"}

// Archive writes the rootfs as a tar archive. Names are sorted so that
// two archives of much the same tree are much the same bytes, which the
// store's content-defined chunks then share.
func Archive(rootfs, archive string) error {
	return ArchiveSince(rootfs, archive, "")
}

// ArchiveRunning is Archive of a tree that its container changes while
// tar reads it (a stateless snapshot of a RUNNING container): a file
// that changes or goes meanwhile is archived as tar found it, and tar's
// exit status 1 for it is no failure. The archive is not of one instant;
// a stateful snapshot's is (ArchiveChanges, while frozen).
func ArchiveRunning(rootfs, archive string) error {
	if err := Archive(rootfs, archive); err != nil && !tarFilesChanged(err) {
		return err
	}
	return nil
}

// ArchiveSince is Archive in GNU tar's listed-incremental
// format if state is not "": with a new state file the archive holds the
// whole tree, with the state of an earlier archive only what changed since
// (and which files are gone), and tar updates the state.
func ArchiveSince(rootfs, archive, state string) error {
	args := append([]string{"--create", "--sort=name", "--file", archive, "--directory", rootfs}, Flags...)
	fresh := false
	if state != "" {
		args = append(args, "--listed-incremental="+state)
		_, err := os.Stat(state)
		fresh = errors.Is(err, fs.ErrNotExist)
	}
	if err := runTar(append(args, ".")...); err != nil && !(fresh && tarFilesChanged(err)) {
		return err
	}
	if fresh {
		return backdateTarState(state, 2*time.Second)
	}
	return nil
}

// ArchiveChanges archives what changed in rootfs since the archive
// whose listed-incremental state is given. The state is left as it is
// (tar works on a copy), so that every later call, or a dump tried again,
// archives the changes since that same archive.
func ArchiveChanges(rootfs, archive, state string) error {
	since := state + ".next"
	data, err := os.ReadFile(state)
	if err != nil {
		return err
	}
	if err := os.WriteFile(since, data, 0o600); err != nil {
		return err
	}
	defer os.Remove(since)
	return ArchiveSince(rootfs, archive, since)
}

// backdateTarState moves the time a listed-incremental state records for
// its archive back by d. tar takes files modified after that time as
// changed, and the kernel stamps files with a clock coarser than tar's: a
// file written just after the archive began can carry an earlier time and
// be missed. An earlier time only makes the next archive take a few more
// files.
func backdateTarState(path string, d time.Duration) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// "GNU tar-1.34-2\n" then the seconds and nanoseconds, each ending in NUL.
	header, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return fmt.Errorf("tar state %s: no header", path)
	}
	fields := bytes.SplitN(rest, []byte{0}, 3)
	if len(fields) != 3 {
		return fmt.Errorf("tar state %s: no time", path)
	}
	sec, err1 := strconv.ParseInt(string(fields[0]), 10, 64)
	nsec, err2 := strconv.ParseInt(string(fields[1]), 10, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("tar state %s: bad time %q %q", path, fields[0], fields[1])
	}
	t := time.Unix(sec, nsec).Add(-d)
	var b bytes.Buffer
	b.Write(header)
	fmt.Fprintf(&b, "\n%d\x00%d\x00", t.Unix(), t.Nanosecond())
	b.Write(fields[2])
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// Apply extracts archives into dir, in order: an empty directory (a
// subvolume on btrfs: ops/storage makes it) for the first of a tree.
// Incremental ones (GNU tar's listed-incremental format) also delete what
// was gone from the tree when they were made.
func Apply(dir string, incremental bool, archives ...string) error {
	for _, archive := range archives {
		args := append([]string{"--extract", "--same-permissions", "--file", archive, "--directory", dir}, Flags...)
		if incremental {
			args = append(args, "--listed-incremental=/dev/null")
		}
		if err := runTar(args...); err != nil {
			return err
		}
	}
	return nil
}

// tarFilesChanged says whether tar failed only because files changed or
// went away while it read them (its exit status 1). A whole-tree archive
// with a fresh listed-incremental state is made while the container runs,
// and files changing under it are expected: the archive made from that
// state while the container is frozen takes every file modified since the
// first began (see backdateTarState) and records which are gone, so the
// two together are the tree as the frozen processes saw it.
func tarFilesChanged(err error) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.ExitCode() == 1
}

func runTar(args ...string) error {
	out, err := exec.Command("tar", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("tar: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ArchiveMain is `ctrfs archive-rootfs ROOTFS ARCHIVE [STATE]`, which
// CRIU's post-dump hook runs during a stateful snapshot. With the
// listed-incremental STATE of an earlier archive it archives what changed
// since, leaving STATE as it is (ArchiveChanges).
func ArchiveMain(args []string) int {
	if len(args) != 2 && len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs archive-rootfs ROOTFS ARCHIVE [STATE]")
		return 2
	}
	var err error
	if len(args) == 3 {
		err = ArchiveChanges(args[0], args[1], args[2])
	} else {
		err = Archive(args[0], args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
