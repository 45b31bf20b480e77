package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Modes. Only root acts (the kernel checks them: default_permissions);
// what holds process memory or secrets only root reads.
const (
	modePublic  = 0o444 // status, info, error, events, README, host
	modeControl = 0o644 // ctl: its help is public, its commands root's
	modeSecret  = 0o600 // config: environment, keys, mounts
	modeMemory  = 0o400 // image files, ps, log (CRIU's log names files and sockets)
	modeDir     = 0o755
	modeFixed   = 0o555 // a snapshot: nothing to add in it
	modeMemDir  = 0o500 // state/ directories
)

// Like cgroupfs and configfs, the tree refuses changes it cannot honour
// with EPERM: a control file cannot be chmod'ed, chown'ed, touched,
// truncated or unlinked, so that tools that copy, then remove (rm -r,
// find -delete, mv to another filesystem, rsync --remove-source-files) fail
// instead of believing they removed something (see removalGuard).

// changesAttrs is whether a setattr asks for a change of mode, owner,
// times or size (not, say, only the lock owner).
func changesAttrs(in *fuse.SetAttrIn) bool {
	return in.Valid&(fuse.FATTR_MODE|fuse.FATTR_UID|fuse.FATTR_GID|fuse.FATTR_SIZE|
		fuse.FATTR_ATIME|fuse.FATTR_MTIME|fuse.FATTR_ATIME_NOW|fuse.FATTR_MTIME_NOW) != 0
}

// changesOwnerOrMode is whether a setattr is a chmod or chown.
func changesOwnerOrMode(in *fuse.SetAttrIn) bool {
	return in.Valid&(fuse.FATTR_MODE|fuse.FATTR_UID|fuse.FATTR_GID) != 0
}

// refuseSetattr is the Setattr of a node whose attributes are the
// daemon's: EPERM for any change, else its attributes.
func refuseSetattr(ctx context.Context, n gofs.NodeGetattrer, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if changesAttrs(in) {
		return syscall.EPERM
	}
	return n.Getattr(ctx, fh, out)
}

// setTimes sets atime, mtime and ctime to one time.
func setTimes(out *fuse.AttrOut, t time.Time) {
	out.SetTimes(&t, &t, &t)
}

// fixedEntries is embedded by directories whose entries are the daemon's:
// go-fuse answers unlink and rmdir with success when a node does not
// implement them. A directory that deletes something by rmdir implements
// its own.
type fixedEntries struct{}

func (fixedEntries) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EPERM }
func (fixedEntries) Rmdir(ctx context.Context, name string) syscall.Errno  { return syscall.EPERM }

// staticDir is embedded by the directories that last as long as the mount
// (the root, containers/, hosts/, hosts/THIS-HOST/): their times are the
// mount's, and their attributes and entries are fixed.
type staticDir struct {
	fixedEntries
	mounted time.Time
}

func (d *staticDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | modeDir
	setTimes(out, d.mounted)
	out.SetTimeout(d.attrTimeout())
	return 0
}

func (d *staticDir) attrTimeout() time.Duration { return cacheFixed }

func (d *staticDir) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return refuseSetattr(ctx, d, fh, in, out)
}
