package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

// snapshotsDir is containers/NAME/snapshots: one directory per snapshot;
// mkdir takes a stateless snapshot and rmdir deletes one.
type snapshotsDir struct {
	gofs.Inode
	c *containerDir
}

var (
	_ gofs.NodeLookuper  = (*snapshotsDir)(nil)
	_ gofs.NodeReaddirer = (*snapshotsDir)(nil)
	_ gofs.NodeGetattrer = (*snapshotsDir)(nil)
	_ gofs.NodeMkdirer   = (*snapshotsDir)(nil)
	_ gofs.NodeRmdirer   = (*snapshotsDir)(nil)
	_ gofs.NodeUnlinker  = (*snapshotsDir)(nil)
	_ gofs.NodeSetattrer = (*snapshotsDir)(nil)
)

func (d *snapshotsDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	changed, ok := d.c.f.Changed(d.c.Name())
	if !ok {
		return syscall.ENOENT
	}
	out.Mode = syscall.S_IFDIR | modeDir
	setTimes(out, changed)
	out.SetTimeout(d.attrTimeout())
	return 0
}

// attrTimeout: its times are the container's, which the config's changes
// (LXC's too) move, so containers/ keeps them for a burst of walks only
// (keptnames.go), and hosts/THIS-HOST/ not at all.
func (d *snapshotsDir) attrTimeout() time.Duration {
	if d.c.inView().keeps() {
		return cacheBurst
	}
	return 0
}

func (d *snapshotsDir) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return refuseSetattr(ctx, d, fh, in, out)
}

func (d *snapshotsDir) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.c.refuseRemoval(ctx)
}

func (d *snapshotsDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	names, err := d.c.m.Snapshots(d.c.Name())
	if err != nil {
		return nil, errno(err)
	}
	entries := make([]fuse.DirEntry, 0, len(names))
	for _, n := range names {
		entries = append(entries, fuse.DirEntry{Name: n, Mode: syscall.S_IFDIR})
	}
	return gofs.NewListDirStream(entries), 0
}

func (d *snapshotsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	// The snapshot's Getattr, which entry asks, says if it exists (a
	// damaged one does, for rmdir to discard).
	return entry(ctx, d.snapshotInode(ctx, name), out, d.keepName())
}

// keepName is how long the kernel may keep a snapshot's name: in
// containers/ until a change tells it to drop it (keptnames.go).
func (d *snapshotsDir) keepName() time.Duration {
	if d.c.inView().keeps() {
		return cacheFixed
	}
	return 0
}

func (d *snapshotsDir) snapshotInode(ctx context.Context, name string) *gofs.Inode {
	if ch := d.GetChild(name); ch != nil {
		return ch
	}
	return d.NewInode(ctx, &snapshotDir{c: d.c, name: name}, gofs.StableAttr{Mode: syscall.S_IFDIR})
}

func (d *snapshotsDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if err := ops.ValidateName(name); err != nil {
		return nil, errno(err)
	}
	if err := d.c.m.TakeSnapshot(d.c.Name(), name, false); err != nil {
		return nil, errno(err)
	}
	return entry(ctx, d.snapshotInode(ctx, name), out, d.keepName())
}

// Rmdir deletes the snapshot, unless the caller is a recursive removal
// that the container's files refused (removalGuard).
func (d *snapshotsDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := d.c.guard.allowRmdir(ctx, d.c.Name()); e != 0 {
		return e
	}
	err := d.c.m.DeleteSnapshot(d.c.Name(), name)
	if err == nil && !d.c.inView().keeps() {
		d.c.inView().kept.forget(d.c.Name(), name)
	}
	return errno(err)
}

// snapshotDir is snapshots/SNAP: `info`, and `state/` if it is stateful.
type snapshotDir struct {
	gofs.Inode
	c    *containerDir
	name string
}

var (
	_ gofs.NodeLookuper  = (*snapshotDir)(nil)
	_ gofs.NodeReaddirer = (*snapshotDir)(nil)
	_ gofs.NodeGetattrer = (*snapshotDir)(nil)
	_ gofs.NodeSetattrer = (*snapshotDir)(nil)
	_ gofs.NodeUnlinker  = (*snapshotDir)(nil)
	_ gofs.NodeRmdirer   = (*snapshotDir)(nil)

	_ gofs.NodeOpendirHandler = (*snapshotDir)(nil)
)

func (d *snapshotDir) snapshot() (*ops.Snapshot, error) {
	return d.c.m.Snapshot(d.c.Name(), d.name)
}

func (d *snapshotDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	s, err := d.snapshot()
	if err != nil && !ops.IsDamaged(err) {
		return errno(err)
	}
	out.Mode = syscall.S_IFDIR | modeFixed
	if s != nil { // nil when its manifest is damaged: it still lists
		setTimes(out, s.Taken)
	}
	out.SetTimeout(d.attrTimeout())
	return 0
}

// attrTimeout: the attributes of a snapshot never change, but deleted and
// taken again it is another snapshot by the same name. containers/ keeps
// them with its name, which goes when that happens (keptnames.go); under
// hosts/THIS-HOST/ every walk looks the name up again (cache.go).
func (d *snapshotDir) attrTimeout() time.Duration {
	if d.c.inView().keeps() {
		return cacheFixed
	}
	return cacheRevalidated
}

func (d *snapshotDir) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return refuseSetattr(ctx, d, fh, in, out)
}

// Unlink of info and rmdir of state/ are refused, and pin the snapshot
// against the caller's rmdir (removalGuard).
func (d *snapshotDir) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.c.refuseRemoval(ctx)
}

func (d *snapshotDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	return d.c.refuseRemoval(ctx)
}

// taken is when the snapshot was taken, for the times of what is in it.
func (d *snapshotDir) taken() time.Time {
	if s, err := d.snapshot(); err == nil {
		return s.Taken
	}
	return time.Time{}
}

func (d *snapshotDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	s, err := d.snapshot()
	if err != nil {
		return nil, errno(err)
	}
	entries := []fuse.DirEntry{{Name: "info", Mode: syscall.S_IFREG}}
	if s.Stateful {
		entries = append(entries, fuse.DirEntry{Name: "state", Mode: syscall.S_IFDIR})
	}
	return gofs.NewListDirStream(entries), 0
}

// OpendirHandle lets the kernel keep the listing: a snapshot's entries
// never change. It drops what it kept when the directory's mtime (when the
// snapshot was taken, fresh from every walk's lookup) is no longer the
// one it kept it with: another snapshot taken by the same name.
func (d *snapshotDir) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	ds, e := d.Readdir(ctx)
	if e != 0 {
		return nil, 0, e
	}
	return ds, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

func (d *snapshotDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	s, err := d.snapshot()
	if err != nil {
		return nil, errno(err)
	}
	if name == "state" && !s.Stateful || name != "state" && name != "info" {
		return nil, syscall.ENOENT
	}
	if ch := d.GetChild(name); ch != nil {
		return entry(ctx, ch, out, keepSnapshotEntry(name))
	}
	if name == "info" {
		info := newGenFile(func() ([]byte, error) {
			s, err := d.snapshot()
			if err != nil {
				return nil, err
			}
			return ops.FormatInfo(s.Info()), nil
		}).changed(d.taken)
		return entry(ctx, d.NewInode(ctx, info, gofs.StableAttr{Mode: syscall.S_IFREG}), out, cacheFixed)
	}
	state := &imageDir{c: d.c, source: func() (*ops.ImageSet, error) { return d.c.m.SnapshotState(d.c.Name(), d.name) }}
	return d.NewInode(ctx, state, gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// keepSnapshotEntry is how long the kernel may keep a name in a snapshot:
// info is there as long as the snapshot is; state/ only if it is stateful,
// which another snapshot taken by the same name may not be.
func keepSnapshotEntry(name string) time.Duration {
	if name == "info" {
		return cacheFixed
	}
	return 0
}
