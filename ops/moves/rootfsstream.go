package moves

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"ctrfs/images"
	"ctrfs/ops/storage"
	"ctrfs/ops/stored"
)

// Between btrfs hosts a move sends the rootfs as btrfs send streams
// instead of tar archives: during the precopy, while the container runs,
// the whole of a read-only snapshot of its rootfs subvolume ("base");
// while it is frozen or stopped, a second snapshot ("final") as its
// differences from base, which take time in proportion to what changed,
// without tar's walk of the whole tree. The streams go into the store
// and travel as chunks like an archive. The target receives base ahead
// (Prepare), final at the install, and makes the container's rootfs a
// writable snapshot of the last; its rootfs is a subvolume as the
// source's was. A target that keeps directories, or a rootfs that is no
// subvolume, moves by archive as before.

// moveSnapshots is the directory, in the container's, of the snapshots
// that a move sends (root's alone: they are the container's files).
const moveSnapshots = ".ctrfs-move"

// Names of the snapshots a move sends, as the target receives them.
const (
	streamBase  = "base"
	streamFinal = "final"
)

// TargetReceivesStreams says that the target keeps rootfs in btrfs
// subvolumes and can receive send streams (members.Facts.Storage), so
// that a rootfs that is a subvolume here goes as streams. Set before the
// first PackRootfs.
func (o *Outgoing) TargetReceivesStreams(yes bool) { o.targetStreams = yes }

// RootfsTransfer is how the move sends the rootfs, for its report:
// btrfs-send (streams) or archive.
func (o *Outgoing) RootfsTransfer() string {
	if o.streaming {
		return "btrfs-send"
	}
	return "archive"
}

func (o *Outgoing) streamDir() string { return filepath.Join(o.m.lxcPath, o.name, moveSnapshots) }

// packStream writes the rootfs into dir as a send stream: the first
// call the whole of a snapshot made now, later ones the differences of a
// snapshot made now from it.
func (o *Outgoing) packStream(rootfs, dir string, first bool) error {
	sd := o.streamDir()
	base, final := filepath.Join(sd, streamBase), filepath.Join(sd, streamFinal)
	if first {
		if err := storage.RemoveTree(sd); err != nil {
			return err
		}
		if err := os.Mkdir(sd, 0o700); err != nil {
			return err
		}
		if err := storage.Snapshot(rootfs, base, true); err != nil {
			return err
		}
		return storage.Send(base, "", filepath.Join(dir, stored.RootfsStream))
	}
	if err := storage.RemoveTree(final); err != nil {
		return err
	}
	if err := storage.Snapshot(rootfs, final, true); err != nil {
		return err
	}
	return storage.Send(final, base, filepath.Join(dir, stored.RootfsStreamChanges))
}

// dropStreamSnapshots removes the snapshots a move sent (Forget).
func (o *Outgoing) dropStreamSnapshots() {
	if err := storage.RemoveTree(o.streamDir()); err != nil {
		o.m.log.Error("cannot remove the snapshots a move sent", "container", o.name, "err", err)
	}
}

// RemoveMoveSnapshotsLeft removes the snapshots of moves that a daemon
// stopped or killed before it had removed them: no move is under way
// at start, and none goes on from where it was.
func (m *Moves) RemoveMoveSnapshotsLeft() {
	dirs, _ := filepath.Glob(filepath.Join(m.lxcPath, "*", moveSnapshots))
	for _, dir := range dirs {
		if err := storage.RemoveTree(dir); err != nil {
			m.log.Error("cannot remove the snapshots of a move that did not finish", "dir", dir, "err", err)
		}
	}
}

// isStream says whether a move's rootfs manifest holds send streams.
func isStream(rootfs *images.Manifest) bool {
	_, ok := rootfs.File(stored.RootfsStream)
	return ok
}

// baseName is the name of the whole-rootfs file in a move's rootfs
// manifest: its archive, or its base stream.
func baseName(rootfs *images.Manifest) string {
	if isStream(rootfs) {
		return stored.RootfsStream
	}
	return stored.SnapshotRootfs
}

// receiveBase receives the base stream, exported into dir, into tmp
// (the container being made), which it creates anew.
func receiveBase(dir, tmp string) error {
	if err := storage.RemoveTree(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	return storage.Receive(filepath.Join(dir, stored.RootfsStream), tmp)
}

// installStream makes tmp/rootfs from the streams: base, received into
// tmp already, and the final differences if the manifest has them
// (exported into dir). The received snapshots go; the rootfs is a
// writable snapshot of the last.
func installStream(rootfs *images.Manifest, dir, tmp string) error {
	top := filepath.Join(tmp, streamBase)
	if _, ok := rootfs.File(stored.RootfsStreamChanges); ok {
		if err := storage.Receive(filepath.Join(dir, stored.RootfsStreamChanges), tmp); err != nil {
			return err
		}
		top = filepath.Join(tmp, streamFinal)
	}
	if !storage.IsSubvolume(top) {
		return fmt.Errorf("the rootfs stream made no subvolume %s", filepath.Base(top))
	}
	if err := storage.Snapshot(top, filepath.Join(tmp, "rootfs"), false); err != nil {
		return err
	}
	for _, name := range []string{streamBase, streamFinal} {
		if err := storage.RemoveTree(filepath.Join(tmp, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
