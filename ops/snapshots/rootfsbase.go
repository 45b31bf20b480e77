package snapshots

import (
	"context"
	"os"
	"path/filepath"

	"ctrfs/images"
	"ctrfs/ops/errkind"
	"ctrfs/ops/opctx"
	"ctrfs/ops/rootfstar"
	"ctrfs/ops/stored"
)

// rootfsBase is a whole-tree archive of a container's rootfs, made and
// stored while it runs, with GNU tar's listed-incremental state: an archive
// made later from the state, while the container is frozen, holds only
// what changed since (and which files are gone).
type rootfsBase struct {
	m      *Snapshots
	mf     *images.Manifest // unsaved: its chunks are held until drop
	file   images.File      // the archive, as stored.SnapshotRootfs
	stored int64            // compressed bytes it added to the store
	state  string           // tar's state, in a scratch directory of its own
}

// archiveBase archives and stores the rootfs of a running container.
func (m *Snapshots) archiveBase(ctx context.Context, oc *opctx.Op, name, rootfs string) (*rootfsBase, error) {
	dir, err := m.staging.Dir(name, "rootfs", 64<<20)
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "prepare archive of the rootfs of "+name, err)
	}
	defer os.RemoveAll(dir)
	stateDir, err := os.MkdirTemp(m.scratchDir, "tar-state-")
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "prepare archive of the rootfs of "+name, err)
	}
	b := &rootfsBase{m: m, state: filepath.Join(stateDir, "level0")}
	oc.Progress.Sample("archive", 0, func() int64 { return opctx.DirSize(dir) })
	if err := rootfstar.ArchiveSince(rootfs, filepath.Join(dir, stored.SnapshotRootfs), b.state); err != nil {
		os.RemoveAll(stateDir)
		return nil, errkind.New(errkind.ErrFailed, "archive rootfs of "+name, err)
	}
	oc.Progress.SetStep("store", 0)
	mf, st, err := m.images.ImportDir(ctx, dir)
	if err != nil {
		os.RemoveAll(stateDir)
		m.stored.FreeFailedImport(ctx)
		return nil, errkind.New(errkind.ErrFailed, "store rootfs of "+name, err)
	}
	b.mf, b.stored = mf, st.StoredBytes
	b.file, _ = mf.File(stored.SnapshotRootfs)
	return b, nil
}

// drop releases the archive's chunks (a manifest saved with its file
// holds them now) and removes tar's state.
func (b *rootfsBase) drop() {
	b.m.images.Release(b.mf)
	os.RemoveAll(filepath.Dir(b.state))
}
