package snapshots

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"ctrfs/images"
	"ctrfs/ops/configfile"
	"ctrfs/ops/errkind"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/opctx"
	"ctrfs/ops/rootfstar"
	"ctrfs/ops/savedstate"
	"ctrfs/ops/storage"
	"ctrfs/ops/stored"
	"ctrfs/ops/testhooks"
)

// Meta keys of a snapshot's manifest.
const (
	metaKind   = "kind"   // stateful | stateless
	metaStored = "stored" // compressed bytes the snapshot added to the store
)

// Snapshot describes one snapshot, as its `info` file shows it.
type Snapshot struct {
	Name     string
	Taken    time.Time
	Stateful bool
	Storage  storage.Kind // btrfs: its rootfs is a snapshot subvolume; dir: an archive
	Size     int64        // logical bytes in the store: rootfs archive, config and images
	Stored   int64        // compressed bytes that were new to the store when taken
}

// Info is the snapshot's `info` file, in docs/ctrfs.5.md's order.
func (s *Snapshot) Info() []opctx.KeyValue {
	kind := "stateless"
	if s.Stateful {
		kind = "stateful"
	}
	return []opctx.KeyValue{
		{Key: "taken", Value: s.Taken.UTC().Format(time.RFC3339)},
		{Key: "kind", Value: kind},
		{Key: "storage", Value: string(s.Storage)},
		{Key: "size", Value: fmt.Sprint(s.Size)},
		{Key: "stored", Value: fmt.Sprint(s.Stored)},
	}
}

func snapshotOf(snap string, mf *images.Manifest, inSubvolume bool) *Snapshot {
	stored, _ := strconv.ParseInt(mf.Meta[metaStored], 10, 64)
	kind := storage.Dir
	if inSubvolume {
		kind = storage.Btrfs
	}
	return &Snapshot{Name: snap, Taken: mf.Created, Stateful: mf.Meta[metaKind] == "stateful",
		Storage: kind, Size: mf.Size(), Stored: stored}
}

// Snapshot returns one snapshot; ErrNotFound if there is none by that name.
func (m *Snapshots) Snapshot(name, snap string) (*Snapshot, error) {
	mf, err := m.load(name, snap)
	if err != nil {
		return nil, err
	}
	return snapshotOf(snap, mf, m.heldInSubvolume(name, snap, mf)), nil
}

// SnapshotState is the CRIU images of a stateful snapshot, browsable like
// saved state; ErrNotFound for a stateless one.
func (m *Snapshots) SnapshotState(name, snap string) (*stored.ImageSet, error) {
	mf, err := m.load(name, snap)
	if err != nil {
		return nil, err
	}
	if mf.Meta[metaKind] != "stateful" {
		return nil, errkind.New(errkind.ErrNotFound, fmt.Sprintf("snapshot %s of %s is stateless", snap, name), nil)
	}
	state := mf.Only(func(f images.File) bool { return !isRootfsArchive(f) && f.Name != stored.SnapshotConfig })
	return stored.NewImageSet(m.images, state), nil
}

func (m *Snapshots) load(name, snap string) (*images.Manifest, error) {
	if err := lxcpath.ValidateName(snap); err != nil {
		return nil, err
	}
	return m.stored.LoadSnapshot(name, snap)
}

// Delete is rmdir of snapshots/SNAP: the manifest goes, then its
// rootfs subvolume if it has one, and GC frees the chunks no other
// snapshot or saved state uses. The caller holds the container's lock.
func (m *Snapshots) Delete(name, snap string) error {
	err := m.images.Delete(stored.SnapshotKey(name, snap))
	if errors.Is(err, fs.ErrNotExist) {
		return errkind.New(errkind.ErrNotFound, fmt.Sprintf("%s has no snapshot %q", name, snap), nil)
	}
	if err != nil {
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("delete snapshot %s of %s", snap, name), err)
	}
	// With no manifest naming it, a subvolume left by a failure here
	// goes at the next start (RemoveOrphanSubvolumes).
	if err := storage.RemoveTree(m.subvolume(name, snap)); err != nil {
		m.log.Error("cannot remove the rootfs subvolume of a deleted snapshot", "container", name, "snapshot", snap, "err", err)
	}
	m.stored.CollectGarbage()
	return nil
}

// Take takes a snapshot into a staging directory and then into the
// store. A stateful one is a CRIU dump that leaves the container running;
// the rootfs is archived while it runs, and what changed since by CRIU's
// post-dump hook while the processes are still frozen, so that files and
// memory are of the same instant and the freeze lasts as long as the
// changes take to archive, not the whole tree.
func (m *Snapshots) Take(ctx context.Context, oc *opctx.Op, name, snap string, stateful bool) (err error) {
	if _, err := m.images.Load(stored.SnapshotKey(name, snap)); err == nil || stored.IsDamaged(err) {
		return errkind.New(errkind.ErrExists, fmt.Sprintf("%s has a snapshot %q", name, snap), err)
	}
	c, err := m.containers.Open(name)
	if err != nil {
		return err
	}
	rootfs, err := lxcpath.RootfsOf(c)
	if err == nil && stateful {
		_, err = lxcpath.RequireStatus(c, "take a stateful snapshot of", "RUNNING")
	}
	c.Release()
	if err == nil && stateful {
		err = m.saved.QuickCheck(name, "take a stateful snapshot of")
	}
	if err != nil {
		return err
	}
	hint := int64(64 << 20)
	if stateful {
		hint = m.containers.ImagesSizeHint(name)
	}
	dir, err := m.staging.Dir(name, "snapshot", hint)
	if err != nil {
		return errkind.New(errkind.ErrFailed, "prepare snapshot of "+name, err)
	}
	defer m.staging.RemoveLater(dir)

	t0 := time.Now()
	if err := configfile.Copy(m.containers.ConfigPath(name), filepath.Join(dir, stored.SnapshotConfig), 0o600); err != nil {
		return errkind.New(errkind.ErrFailed, "copy config of "+name, err)
	}
	// A rootfs that is a subvolume is snapshotted, not archived
	// (subvolumes.go): the subvolume goes again unless the manifest
	// that names it is saved.
	sub := ""
	if storage.KindOf(rootfs) == storage.Btrfs {
		if sub, err = m.prepareSubvolume(name, snap); err != nil {
			return errkind.New(errkind.ErrFailed, "prepare snapshot of "+name, err)
		}
		defer func() {
			if err != nil {
				storage.RemoveTree(sub)
			}
		}()
	}
	archive := filepath.Join(dir, stored.SnapshotRootfs)
	var d savedstate.StoredDump
	var base *rootfsBase
	if stateful && sub != "" {
		testhooks.PausePoint("snapshot-freeze")
		// CRIU's post-dump hook snapshots the subvolume while the
		// tasks are frozen: files and memory of one instant.
		d, err = m.saved.DumpStoredAfter(ctx, oc, nil, lxchelper.CheckpointRunning, name, dir, rootfs, lxchelper.SubvolumeFlag, sub)
		if err != nil {
			return m.saved.DumpFailed(name, err, oc.Log)
		}
		oc.Extra = append(oc.Extra, savedstate.DumpStats(dir)...)
	} else if stateful {
		if base, err = m.archiveBase(ctx, oc, name, rootfs); err != nil {
			return err
		}
		defer base.drop()
		testhooks.PausePoint("snapshot-freeze")
		// The images, the changes to the rootfs and the config are
		// stored once CRIU is done and the container runs again.
		d, err = m.saved.DumpStoredAfter(ctx, oc, nil, lxchelper.CheckpointRunning, name, dir, rootfs, filepath.Join(dir, stored.RootfsChanges), base.state)
		if err != nil {
			return m.saved.DumpFailed(name, err, oc.Log)
		}
		oc.Extra = append(oc.Extra, savedstate.DumpStats(dir)...)
		if d.StoreErr == nil {
			d.Manifest.Files = append(d.Manifest.Files, base.file)
		}
	} else if sub != "" {
		if err := storage.Snapshot(rootfs, sub, true); err != nil {
			return errkind.New(errkind.ErrFailed, "snapshot rootfs of "+name, err)
		}
		d.Dumped = time.Now()
		oc.Progress.SetStep("store", 0)
		d.Manifest, d.Stats, d.StoreErr = m.images.ImportDir(ctx, dir)
	} else {
		oc.Progress.Sample("archive", 0, func() int64 { return opctx.DirSize(dir) })
		// A running container's files may change under tar (journald's
		// journal, as systemd boots): taken as tar found them.
		if err := rootfstar.ArchiveRunning(rootfs, archive); err != nil {
			return errkind.New(errkind.ErrFailed, "archive rootfs of "+name, err)
		}
		d.Dumped = time.Now()
		oc.Progress.SetStep("store", 0)
		d.Manifest, d.Stats, d.StoreErr = m.images.ImportDir(ctx, dir)
	}
	if d.StoreErr != nil {
		m.stored.FreeFailedImport(ctx)
		return errkind.New(errkind.ErrFailed, "store snapshot of "+name, d.StoreErr)
	}
	mf, st := d.Manifest, d.Stats
	if base != nil {
		st.StoredBytes += base.stored
	}
	kind := "stateless"
	if stateful {
		kind = "stateful"
	}
	mf.Meta = map[string]string{metaKind: kind, metaStored: fmt.Sprint(st.StoredBytes)}
	if sub != "" {
		mf.Meta[metaRootfs] = rootfsSubvolume
	}
	if err := m.images.Save(stored.SnapshotKey(name, snap), mf); err != nil {
		m.images.Release(mf)
		m.stored.FreeFailedImport(ctx)
		return errkind.New(errkind.ErrFailed, "store snapshot of "+name, err)
	}
	oc.Extra = append(oc.Extra, opctx.Seconds("dump-seconds", d.Dumped.Sub(t0)), opctx.Seconds("store-seconds", time.Since(d.Dumped)))
	return nil
}

// splitRootfsArchives parts a snapshot's files into its rootfs archives
// and the rest.
func splitRootfsArchives(mf *images.Manifest) (archives, rest *images.Manifest) {
	return mf.Only(isRootfsArchive), mf.Only(func(f images.File) bool { return !isRootfsArchive(f) })
}

// isRootfsArchive says whether f is a snapshot's rootfs archive: the
// whole tree, or the changes since the base of a move.
func isRootfsArchive(f images.File) bool {
	return f.Name == stored.SnapshotRootfs || f.Name == stored.RootfsChanges
}

// Restore rolls the rootfs and config back to a snapshot. Every
// step that can fail on a bad snapshot (reading and checking its chunks,
// unpacking the rootfs) happens before the container is touched; then the
// container is stopped, its rootfs swapped by two renames, its config
// replaced, and it is restored from the snapshot's images (stateful) or
// started again if it was running (stateless).
func (m *Snapshots) Restore(ctx context.Context, oc *opctx.Op, name, snap string) error {
	mf, err := m.load(name, snap)
	if err != nil {
		return err
	}
	c, err := m.containers.Open(name)
	if err != nil {
		return err
	}
	rootfs, err := lxcpath.RootfsOf(c)
	wasRunning := lxcpath.StatusOf(c) != "STOPPED"
	c.Release()
	if err != nil {
		return err
	}

	t0 := time.Now()
	dir, err := m.staging.Dir(name, "restore", mf.Size())
	if err != nil {
		return errkind.New(errkind.ErrFailed, "prepare restore of "+name, err)
	}
	defer os.RemoveAll(dir)
	oc.Progress.Sample("unpack", mf.Size(), func() int64 { return opctx.DirSize(dir) })
	exportFailed := func(err error) error {
		if errors.Is(err, images.ErrCorrupt) {
			return errkind.New(errkind.ErrFailed, fmt.Sprintf("snapshot %s of %s is damaged: %v; %s is unchanged", snap, name, err, name), nil)
		}
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("unpack snapshot %s of %s", snap, name), err)
	}
	// The rootfs archives first; tar unpacks them while the CRIU
	// images are exported. A rootfs kept in a subvolume is snapshotted
	// instead, in no time.
	archiveFiles, imageFiles := splitRootfsArchives(mf)
	incoming := rootfs + rootfsIncoming
	unpacked := make(chan error, 1)
	if m.heldInSubvolume(name, snap, mf) {
		unpacked <- m.rollBackFromSubvolume(name, snap, rootfs)
	} else if _, ok := mf.File(stored.SnapshotRootfs); !ok {
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("snapshot %s of %s is damaged: its rootfs subvolume %s is missing; %s is unchanged",
			snap, name, m.subvolume(name, snap), name), nil)
	} else {
		if err := m.images.Export(ctx, archiveFiles, dir); err != nil {
			return exportFailed(err)
		}
		archives := []string{filepath.Join(dir, stored.SnapshotRootfs)}
		if _, ok := mf.File(stored.RootfsChanges); ok {
			archives = append(archives, filepath.Join(dir, stored.RootfsChanges))
		}
		go func() { unpacked <- unpackIncoming(rootfs, archives) }()
	}
	exportErr := m.images.Export(ctx, imageFiles, dir)
	if err := <-unpacked; err != nil || exportErr != nil {
		storage.RemoveTree(incoming)
		if exportErr != nil {
			return exportFailed(exportErr)
		}
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("unpack rootfs of snapshot %s of %s", snap, name), err)
	}
	config, err := snapshotConfigFor(filepath.Join(dir, stored.SnapshotConfig), m.containers.ConfigPath(name))
	if err != nil {
		storage.RemoveTree(incoming)
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("read config of snapshot %s of %s", snap, name), err)
	}
	unpackTime := time.Since(t0)

	t1 := time.Now()
	if err := m.containers.Kill(name); err != nil {
		storage.RemoveTree(incoming)
		return err
	}
	if err := m.stored.DropState(name); err != nil {
		storage.RemoveTree(incoming)
		return err
	}
	if err := swapRootfs(rootfs); err != nil {
		return errkind.New(errkind.ErrFailed, "roll back rootfs of "+name, err)
	}
	// The old tree goes once the container runs again, out of its downtime.
	defer func() {
		t := time.Now()
		if err := removeOldRootfs(rootfs); err != nil {
			m.log.Warn("cannot remove the rootfs a restore replaced; it goes at the next start", "container", name, "err", err)
		}
		oc.Extra = append(oc.Extra, opctx.Seconds("remove-old-rootfs-seconds", time.Since(t)))
	}()
	if err := configfile.WriteAtomic(m.containers.ConfigPath(name), config); err != nil {
		return errkind.New(errkind.ErrFailed, "roll back config of "+name, err)
	}
	oc.Extra = append(oc.Extra, opctx.Seconds("unpack-seconds", unpackTime), opctx.Seconds("stop-seconds", time.Since(t1)))

	oc.Progress.SetStep("restore", 0)
	if mf.Meta[metaKind] == "stateful" {
		t1 := time.Now()
		if _, _, err := m.saved.CriuRestore(ctx, oc, lxchelper.Restore, name, dir, savedstate.RestoreFrom{}); err != nil {
			return errkind.New(errkind.ErrFailed, fmt.Sprintf("restore of snapshot %s of %s failed %v; its rootfs and config are rolled back and it is STOPPED",
				snap, name, err), nil)
		}
		oc.Extra = append(oc.Extra, savedstate.RestoreStats(dir)...)
		oc.Extra = append(oc.Extra, opctx.Seconds("criu-restore-seconds", time.Since(t1)))
		return nil
	}
	if wasRunning {
		return m.start(ctx, oc, name)
	}
	return nil
}
