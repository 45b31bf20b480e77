package ops

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	lxc "github.com/lxc/go-lxc"

	"ctrfs/ops/configfile"
)

// A rootfs is rolled back by unpacking the snapshot beside it and swapping
// the two with renames; these suffixes name the directories on the way, so
// that a daemon that died during a swap can finish or undo it.
const (
	rootfsIncoming = ".ctrfs-incoming"
	rootfsOutgoing = ".ctrfs-outgoing"
)

// rootfsOf is the directory of a container's rootfs. Snapshots archive
// directories; other storage backends are not supported.
func rootfsOf(c *lxc.Container) (string, error) {
	items := c.ConfigItem("lxc.rootfs.path")
	path := ""
	if len(items) > 0 {
		path = strings.TrimSpace(items[0])
	}
	path = strings.TrimPrefix(path, "dir:")
	if path == "" || !filepath.IsAbs(path) {
		return "", newError(ErrUnsupported, fmt.Sprintf("%s: rootfs %q is not a directory that ctrfs can snapshot", c.Name(), path), nil)
	}
	return path, nil
}

// tarFlags keep owners as numbers (the container's ids mean nothing on the
// host) and extended attributes (file capabilities).
var tarFlags = []string{"--numeric-owner", "--xattrs", "--xattrs-include=*", "--one-file-system"}

// archiveRootfs writes the rootfs as a tar archive. Names are sorted so that
// two archives of much the same tree are much the same bytes, which the
// store's content-defined chunks then share.
func archiveRootfs(rootfs, archive string) error {
	return archiveRootfsSince(rootfs, archive, "")
}

// archiveRootfsSince is archiveRootfs in GNU tar's listed-incremental
// format if state is not "": with a new state file the archive holds the
// whole tree, with the state of an earlier archive only what changed since
// (and which files are gone), and tar updates the state.
func archiveRootfsSince(rootfs, archive, state string) error {
	args := append([]string{"--create", "--sort=name", "--file", archive, "--directory", rootfs}, tarFlags...)
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

// archiveRootfsChanges archives what changed in rootfs since the archive
// whose listed-incremental state is given. The state is left as it is
// (tar works on a copy), so that every later call, or a dump tried again,
// archives the changes since that same archive.
func archiveRootfsChanges(rootfs, archive, state string) error {
	since := state + ".next"
	if err := copyFile(state, since, 0o600); err != nil {
		return err
	}
	defer os.Remove(since)
	return archiveRootfsSince(rootfs, archive, since)
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

// unpackRootfs makes dir from one archive, or from a listed-incremental
// archive and the incremental ones after it, in order.
func unpackRootfs(dir string, archives ...string) error {
	return unpackRootfsAs(dir, len(archives) > 1, archives...)
}

// unpackRootfsIncremental makes dir from a listed-incremental archive, to
// which applyRootfs can later apply the incremental ones after it.
func unpackRootfsIncremental(dir, archive string) error {
	return unpackRootfsAs(dir, true, archive)
}

func unpackRootfsAs(dir string, incremental bool, archives ...string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	return applyRootfs(dir, incremental, archives...)
}

// applyRootfs extracts archives into dir, in order. Incremental ones (GNU
// tar's listed-incremental format) also delete what was gone from the tree
// when they were made.
func applyRootfs(dir string, incremental bool, archives ...string) error {
	for _, archive := range archives {
		args := append([]string{"--extract", "--same-permissions", "--file", archive, "--directory", dir}, tarFlags...)
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

// swapRootfs puts rootfs+rootfsIncoming in the place of rootfs and removes
// the old tree.
func swapRootfs(rootfs string) error {
	out := rootfs + rootfsOutgoing
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.Rename(rootfs, out); err != nil {
		return err
	}
	if err := os.Rename(rootfs+rootfsIncoming, rootfs); err != nil {
		os.Rename(out, rootfs)
		return err
	}
	return os.RemoveAll(out)
}

// recoverRootfsSwaps runs recoverRootfs for every container.
func (m *Manager) recoverRootfsSwaps() {
	names, err := m.List()
	if err != nil {
		return
	}
	for _, name := range names {
		c, err := m.container(name)
		if err != nil {
			continue
		}
		rootfs, err := rootfsOf(c)
		c.Release()
		if err != nil {
			continue
		}
		if err := recoverRootfs(rootfs); err != nil {
			m.log.Error("cannot recover the rootfs of an interrupted restore", "container", name, "err", err)
		}
	}
}

// recoverRootfs finishes what a swap interrupted by a crash left: with no
// rootfs in place the old one is put back (the restore did not happen),
// and leftovers of either side are removed.
func recoverRootfs(rootfs string) error {
	out := rootfs + rootfsOutgoing
	if _, err := os.Lstat(out); err == nil {
		if _, err := os.Lstat(rootfs); errors.Is(err, fs.ErrNotExist) {
			if err := os.Rename(out, rootfs); err != nil {
				return err
			}
		} else if err := os.RemoveAll(out); err != nil {
			return err
		}
	}
	return os.RemoveAll(rootfs + rootfsIncoming)
}

// snapshotConfigFor is the snapshot's config made fit for the container as
// it is now: its name and rootfs path may have changed since (rename), so
// those lines are taken from the current config.
func snapshotConfigFor(snapshotPath, currentPath string) ([]byte, error) {
	snap, err := os.ReadFile(snapshotPath)
	if err != nil {
		return nil, err
	}
	cur, err := os.ReadFile(currentPath)
	if err != nil {
		return nil, err
	}
	keep := map[string]string{}
	for _, key := range []string{"lxc.rootfs.path", "lxc.uts.name"} {
		if line, ok := configfile.Line(cur, key); ok {
			keep[key] = line
		}
	}
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(snap))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if key := configfile.Key(line); keep[key] != "" {
			line = keep[key]
			delete(keep, key)
		}
		b.WriteString(line + "\n")
	}
	for _, line := range keep { // keys the snapshot's config lacked
		b.WriteString(line + "\n")
	}
	return b.Bytes(), sc.Err()
}
