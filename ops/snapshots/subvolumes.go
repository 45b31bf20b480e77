package snapshots

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"ctrfs/images"
	"ctrfs/ops/errkind"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/rootfstar"
	"ctrfs/ops/storage"
	"ctrfs/ops/stored"
)

// A snapshot of a container whose rootfs is a btrfs subvolume keeps its
// rootfs as a read-only snapshot subvolume, LXCPATH/NAME/ctrfs-snapshots/SNAP,
// made in milliseconds, instead of as an archive in the store; its
// manifest holds the rest (the config, a stateful one's images) and says
// so (metaRootfs). The subvolume travels with the container's directory
// (a rename), goes with its manifest (Delete, and RemoveOrphanSubvolumes
// for what a crash left), and is archived into its manifest the first
// time the container moves (Portable), since the target may keep
// directories.
const (
	subvolumesDir   = "ctrfs-snapshots"
	metaRootfs      = "rootfs"    // manifest meta: how the rootfs is kept
	rootfsSubvolume = "subvolume" // … as the snapshot subvolume
)

// subvolume is where the snapshot's rootfs subvolume is.
func (m *Snapshots) subvolume(name, snap string) string {
	return filepath.Join(m.containers.Path(), name, subvolumesDir, snap)
}

// prepareSubvolume makes the directory of the container's snapshot
// subvolumes (root's alone: a snapshot's files are the container's as
// they were, setuid programs and secrets too) and clears the snapshot's
// path of what a take cut short left there (the caller found no
// manifest by that name). It returns the path.
func (m *Snapshots) prepareSubvolume(name, snap string) (string, error) {
	path := m.subvolume(name, snap)
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return path, storage.RemoveTree(path)
}

// heldInSubvolume says whether the snapshot's rootfs is its subvolume
// here: a snapshot taken on btrfs whose subvolume is in place (a moved
// one has its archive instead).
func (m *Snapshots) heldInSubvolume(name, snap string, mf *images.Manifest) bool {
	return mf.Meta[metaRootfs] == rootfsSubvolume && storage.IsSubvolume(m.subvolume(name, snap))
}

// rollBackFromSubvolume makes rootfs+rootfsIncoming a writable snapshot
// of the snapshot's subvolume: no byte is copied.
func (m *Snapshots) rollBackFromSubvolume(name, snap, rootfs string) error {
	incoming := rootfs + rootfsIncoming
	if err := storage.RemoveTree(incoming); err != nil {
		return err
	}
	return storage.Snapshot(m.subvolume(name, snap), incoming, false)
}

// unpackIncoming makes rootfs+rootfsIncoming from archives, in the
// backend the container's rootfs is kept in.
func unpackIncoming(rootfs string, archives []string) error {
	incoming := rootfs + rootfsIncoming
	if err := storage.RemoveTree(incoming); err != nil {
		return err
	}
	if err := storage.BackendOf(rootfs).MakeRootfs(incoming); err != nil {
		return err
	}
	return rootfstar.Apply(incoming, len(archives) > 1, archives...)
}

// Portable is the snapshot's manifest as a move sends it: with its
// rootfs as an archive, which any host can restore. A snapshot kept in a
// subvolume gets its archive here, once: the manifest saved with it
// keeps the subvolume too, which restores here as before.
func (m *Snapshots) Portable(ctx context.Context, name, snap string) (*images.Manifest, error) {
	mf, err := m.load(name, snap)
	if err != nil {
		return nil, err
	}
	if _, ok := mf.File(stored.SnapshotRootfs); ok || mf.Meta[metaRootfs] != rootfsSubvolume {
		return mf, nil
	}
	sub := m.subvolume(name, snap)
	if !storage.IsSubvolume(sub) {
		return nil, errkind.New(errkind.ErrFailed, fmt.Sprintf("snapshot %s of %s is damaged: its rootfs subvolume %s is missing", snap, name, sub), nil)
	}
	dir, err := m.staging.Dir(name, "snapshot", 64<<20)
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "prepare archive of snapshot "+snap+" of "+name, err)
	}
	defer m.staging.RemoveLater(dir)
	// The subvolume is read-only: the archive is of one instant.
	if err := rootfstar.Archive(sub, filepath.Join(dir, stored.SnapshotRootfs)); err != nil {
		return nil, errkind.New(errkind.ErrFailed, fmt.Sprintf("archive snapshot %s of %s", snap, name), err)
	}
	archive, _, err := m.images.ImportDir(ctx, dir)
	if err != nil {
		m.stored.FreeFailedImport(ctx)
		return nil, errkind.New(errkind.ErrFailed, fmt.Sprintf("store snapshot %s of %s", snap, name), err)
	}
	// The new manifest holds the archive's chunks and the old files'
	// (Save takes references of its own; the import's are released).
	out := *mf
	out.Files = append(append([]images.File{}, mf.Files...), archive.Files...)
	err = m.images.Save(stored.SnapshotKey(name, snap), &out)
	m.images.Release(archive)
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, fmt.Sprintf("store snapshot %s of %s", snap, name), err)
	}
	return &out, nil
}

// RemoveOrphanSubvolumes removes the snapshot subvolumes that no
// manifest names: what a take or a delete that a crash cut short left.
// No operation is under way yet.
func (m *Snapshots) RemoveOrphanSubvolumes() {
	names, err := m.containers.List()
	if err != nil {
		return
	}
	for _, name := range names {
		entries, err := os.ReadDir(filepath.Join(m.containers.Path(), name, subvolumesDir))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if lxcpath.ValidateName(e.Name()) == nil {
				if _, err := m.stored.LoadSnapshot(name, e.Name()); err == nil || stored.IsDamaged(err) {
					continue
				}
			}
			path := filepath.Join(m.containers.Path(), name, subvolumesDir, e.Name())
			if err := storage.RemoveTree(path); err != nil {
				m.log.Error("cannot remove a snapshot subvolume that no snapshot names", "path", path, "err", err)
			}
		}
	}
}
