// Package storage keeps containers' root filesystems where the host can
// keep them best: plain directories (the default, and the only choice
// on most filesystems), or btrfs subvolumes, whose snapshots are made in
// milliseconds and whose restore is a rename. Which backend a host uses
// for new containers is its Backend; which one a container uses is
// whether its rootfs is a subvolume (KindOf), so containers made before a
// host changed backend, or moved here from a directory host, keep
// working. It runs btrfs-progs' `btrfs` as Incus does (the ioctls'
// libraries need cgo and headers the host lacks, and `btrfs receive` is
// a program anyway). It knows nothing of LXC, the store or snapshots'
// names: it is given paths.
package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// Kind names a backend, as `info` shows it and `serve --storage` takes it.
type Kind string

const (
	Dir   Kind = "dir"   // a plain directory tree; snapshots are tar archives in the store
	Btrfs Kind = "btrfs" // a btrfs subvolume; snapshots are read-only snapshot subvolumes
)

// Auto is `serve --storage auto`: btrfs where the LXC path is on btrfs
// and btrfs-progs is installed, dir elsewhere.
const Auto = "auto"

// Backend makes the rootfs of new containers on one host.
type Backend struct {
	kind Kind
}

// ValidKind says what is wrong with want as a --storage value, if
// anything.
func ValidKind(want string) error {
	switch want {
	case Auto, string(Dir), string(Btrfs):
		return nil
	}
	return fmt.Errorf("unknown storage %q: want auto, dir or btrfs", want)
}

// Choose picks the backend for the containers of lxcPath: want is
// "auto", "dir" or "btrfs". Asking for btrfs where it cannot work is an
// error, so that a host does not quietly run without what its operator
// chose.
func Choose(lxcPath, want string) (Backend, error) {
	switch want {
	case string(Dir):
		return Backend{Dir}, nil
	case string(Btrfs):
		if err := usable(lxcPath); err != nil {
			return Backend{}, err
		}
		return Backend{Btrfs}, nil
	case Auto, "":
		if usable(lxcPath) == nil {
			return Backend{Btrfs}, nil
		}
		return Backend{Dir}, nil
	}
	return Backend{}, ValidKind(want)
}

// usable says why btrfs cannot hold the containers of lxcPath, if it
// cannot.
func usable(lxcPath string) error {
	if !onBtrfs(lxcPath) {
		return fmt.Errorf("storage btrfs: %s is not on a btrfs filesystem", lxcPath)
	}
	if _, err := exec.LookPath("btrfs"); err != nil {
		return fmt.Errorf("storage btrfs: the btrfs program (btrfs-progs) is not installed")
	}
	return nil
}

// Kind is the backend's kind.
func (b Backend) Kind() Kind {
	if b.kind == "" {
		return Dir
	}
	return b.kind
}

// MakeRootfs creates an empty rootfs at path (which must not exist): a
// subvolume on btrfs, a directory otherwise; root's, mode 0755.
func (b Backend) MakeRootfs(path string) error {
	if b.Kind() == Btrfs {
		if err := run("subvolume", "create", path); err != nil {
			return err
		}
		return os.Chmod(path, 0o755)
	}
	return os.Mkdir(path, 0o755)
}

// KindOf is the backend a rootfs is kept in: btrfs if it is a subvolume.
func KindOf(rootfs string) Kind {
	if IsSubvolume(rootfs) {
		return Btrfs
	}
	return Dir
}

// BackendOf is the backend that keeps rootfs: the one to make another
// rootfs in for it (a snapshot's, unpacked beside it for a restore).
func BackendOf(rootfs string) Backend { return Backend{KindOf(rootfs)} }

// IsSubvolume says whether path is the root of a btrfs subvolume: on
// btrfs, a subvolume's root directory is always inode 256.
func IsSubvolume(path string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	return st.Ino == 256 && onBtrfs(path)
}

func onBtrfs(path string) bool {
	var sf unix.Statfs_t
	return unix.Statfs(path, &sf) == nil && sf.Type == unix.BTRFS_SUPER_MAGIC
}

// Snapshot makes dst a snapshot of the subvolume src, read-only or not.
// dst must not exist; its parent must be on the same btrfs filesystem.
func Snapshot(src, dst string, readOnly bool) error {
	args := []string{"subvolume", "snapshot"}
	if readOnly {
		args = append(args, "-r")
	}
	return run(append(args, src, dst)...)
}

// RemoveTree removes path and what is beneath it: a subvolume (even a
// read-only one) at once, a directory file by file; nothing there is no
// error. Subvolumes nested in a directory are removed as subvolumes.
func RemoveTree(path string) error {
	if IsSubvolume(path) {
		err := run("subvolume", "delete", path)
		if err == nil {
			return nil
		}
		// A subvolume with subvolumes nested in it (a container's
		// systemd makes /var/lib/machines one) cannot go at once.
		if rerr := RemoveSubvolumes(path, math.MaxInt); rerr != nil {
			return errors.Join(err, rerr)
		}
		return run("subvolume", "delete", path)
	}
	err := os.RemoveAll(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if rerr := RemoveSubvolumes(path, math.MaxInt); rerr != nil {
		return errors.Join(err, rerr)
	}
	return os.RemoveAll(path)
}

// RemoveSubvolumes removes the subvolumes in dir down to depth levels
// below it (a container's directory: its rootfs, 1, and its snapshots'
// subvolumes, 2), and leaves the rest: for a remover that stays on one
// filesystem (rm --one-file-system), to which a subvolume is another,
// or cannot remove a read-only one.
func RemoveSubvolumes(dir string, depth int) error {
	if depth <= 0 || !onBtrfs(dir) {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := dir + "/" + e.Name()
		if IsSubvolume(p) {
			err = RemoveTree(p)
		} else {
			err = RemoveSubvolumes(p, depth-1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Send writes to file a send stream of the read-only subvolume snap:
// the whole of it, or with parent (a read-only snapshot of the same
// subvolume, which the receiver has received before) only what
// differs from parent.
func Send(snap, parent, file string) error {
	args := []string{"send", "-q", "-f", file}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	return run(append(args, snap)...)
}

// Receive makes in dir the read-only subvolume whose send stream is in
// file, named as it was where it was sent from; the parent of an
// incremental stream must have been received on this filesystem. The
// receiver is confined to dir (chroot): a stream is another host's
// data, and none of its paths may reach out of dir.
func Receive(file, dir string) error {
	return run("receive", "-q", "-C", "-f", file, dir)
}

func run(args ...string) error {
	out, err := exec.Command("btrfs", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("btrfs %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// SnapshotMain is `ctrfs snapshot-rootfs ROOTFS DEST`, which CRIU's
// post-dump hook runs during a stateful snapshot of a container whose
// rootfs is a subvolume: DEST becomes a read-only snapshot of it, of the
// instant the tasks are frozen in. A DEST there already is of an
// earlier attempt of the same dump (tried again, ops/savedstate), and
// goes.
func SnapshotMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs snapshot-rootfs ROOTFS DEST")
		return 2
	}
	err := RemoveTree(args[1])
	if err == nil {
		err = Snapshot(args[0], args[1], true)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
