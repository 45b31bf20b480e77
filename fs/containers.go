package fs

import (
	"context"
	"fmt"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

// containersDir lists this host's containers: it is both containers/ and
// hosts/THIS-HOST/ (the latter without the hosts link).
type containersDir struct {
	gofs.Inode
	staticDir
	m         Manager
	f         Files
	cl        Cluster
	guard     *removalGuard
	hostsLink bool
	kept      *keptNames    // what containers/ keeps of snapshots (keptnames.go)
	host      *hostCommands // whose `error` says why a mkdir failed
}

// keeps is whether this is containers/, which lets the kernel keep the
// names of snapshots; hosts/THIS-HOST/ does not, and drops what containers/
// kept when it changes them.
func (d *containersDir) keeps() bool { return d.hostsLink }

// keepName is how long the kernel may keep a container's name: LXC can
// destroy or make one behind the tree's back, so only for a burst of
// walks, in containers/ (keptnames.go).
func (d *containersDir) keepName() time.Duration {
	if d.keeps() {
		return cacheBurst
	}
	return 0
}

var (
	_ gofs.NodeLookuper  = (*containersDir)(nil)
	_ gofs.NodeReaddirer = (*containersDir)(nil)
	_ gofs.NodeMkdirer   = (*containersDir)(nil)
	_ gofs.NodeRmdirer   = (*containersDir)(nil)
	_ gofs.NodeRenamer   = (*containersDir)(nil)
	_ gofs.NodeUnlinker  = (*containersDir)(nil)
	_ gofs.NodeGetattrer = (*containersDir)(nil)
	_ gofs.NodeSetattrer = (*containersDir)(nil)
)

const hostsLinkName = "hosts"

// renameNoReplace is RENAME_NOREPLACE of renameat2(2): fine, the target is
// checked anyway; RENAME_EXCHANGE and RENAME_WHITEOUT are refused.
const renameNoReplace = 1

func (d *containersDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	names, err := d.m.List()
	if err != nil {
		return nil, errno(err)
	}
	var entries []fuse.DirEntry
	if d.hostsLink {
		entries = append(entries, fuse.DirEntry{Name: hostsLinkName, Mode: syscall.S_IFLNK})
	}
	for _, n := range names {
		// A container named like the link (made before such names
		// were refused, or by LXC's tools) is listed under
		// hosts/THIS-HOST/ alone, where it can be renamed.
		if d.hostsLink && n == hostsLinkName {
			continue
		}
		entries = append(entries, fuse.DirEntry{Name: n, Mode: syscall.S_IFDIR})
	}
	return gofs.NewListDirStream(entries), 0
}

func (d *containersDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if d.hostsLink && name == hostsLinkName {
		if ch := d.GetChild(name); ch != nil {
			return ch, 0
		}
		link := &gofs.MemSymlink{Data: []byte("../hosts")}
		link.Attr.SetTimes(&d.mounted, &d.mounted, &d.mounted)
		return d.NewInode(ctx, link, gofs.StableAttr{Mode: syscall.S_IFLNK}), 0
	}
	// The container's Getattr, which entry asks, says if it exists.
	return entry(ctx, d.containerInode(ctx, name), out, d.keepName())
}

// containerInode reuses the inode the tree already has for the name, so
// that open files and the kernel's view stay attached to one node.
func (d *containersDir) containerInode(ctx context.Context, name string) *gofs.Inode {
	if ch := d.GetChild(name); ch != nil {
		if c, ok := ch.Operations().(*containerDir); ok && c.Name() == name {
			return ch
		}
	}
	c := &containerDir{m: d.m, f: d.f, cl: d.cl, guard: d.guard, name: name, view: d}
	return d.NewInode(ctx, c, gofs.StableAttr{Mode: syscall.S_IFDIR})
}

func (d *containersDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if d.hostsLink && name == hostsLinkName {
		return nil, syscall.EEXIST
	}
	// mkdir is `create NAME`: the top-level `error` says why it failed.
	if err := d.host.record(d.m.Create(name)); err != nil {
		return nil, errno(err)
	}
	return entry(ctx, d.containerInode(ctx, name), out, d.keepName())
}

// Rmdir destroys the container, unless the caller is a recursive removal
// that its control files refused (removalGuard).
func (d *containersDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if d.hostsLink && name == hostsLinkName {
		return syscall.ENOTDIR
	}
	if e := d.guard.allowRmdir(ctx, name); e != 0 {
		return e
	}
	err := d.m.Destroy(name)
	if err == nil && !d.keeps() {
		d.kept.forget(name, "")
	}
	return errno(err)
}

// Rename within this host renames the container; into hosts/PEER/ it
// migrates it. Other moves are refused with EINVAL, never EXDEV, so that mv
// does not fall back to copying a container's files. Every refusal is
// recorded like a failed operation, so that the container's `error` says why.
func (d *containersDir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if d.hostsLink && name == hostsLinkName {
		return syscall.EPERM
	}
	what, err := d.rename(name, newParent, newName, flags)
	if err != nil && what != "" {
		d.m.RecordFailure(name, what, err)
	}
	if err == nil && !d.keeps() {
		d.kept.forget(name, "")
	}
	return errno(err)
}

// rename does Rename. It names the operation ("rename" or "move") of a
// refusal that it makes itself; the errors of ops' and cluster's own
// operations are recorded already.
func (d *containersDir) rename(name string, newParent gofs.InodeEmbedder, newName string, flags uint32) (refused string, err error) {
	if flags&^uint32(renameNoReplace) != 0 {
		return "rename", ops.NewError(ops.ErrInvalid, "a container cannot be exchanged with another or whited out (RENAME_EXCHANGE, RENAME_WHITEOUT)")
	}
	if peer, ok := newParent.(*peerDir); ok {
		// Into hosts/PEER/: migrate, under the same name.
		if newName != name {
			return "move", ops.NewError(ops.ErrInvalid, fmt.Sprintf("a container keeps its name when it moves: mv %s hosts/%s/ (rename it before or after)", name, peer.host))
		}
		return "", d.cl.Migrate(name, peer.host)
	}
	if _, ok := newParent.(*hostsDir); ok {
		// hosts/NAME that does not exist (mv c1 hosts/nohost/).
		return "move", ops.NewError(ops.ErrNotFound, fmt.Sprintf("no host %q in the cluster", newName))
	}
	target, ok := newParent.(*containersDir)
	if !ok || target.m != d.m {
		return "rename", ops.NewError(ops.ErrInvalid, fmt.Sprintf("%s can only be renamed in containers/ or moved into hosts/HOST/", name))
	}
	if target.hostsLink && newName == hostsLinkName {
		return "rename", ops.NewError(ops.ErrExists, fmt.Sprintf("%q is the link to hosts/, not a name for a container", hostsLinkName))
	}
	if err := d.m.Rename(name, newName); err != nil {
		return "", err
	}
	if ch := d.GetChild(name); ch != nil {
		if c, ok := ch.Operations().(*containerDir); ok {
			c.moved(newName, target)
		}
	}
	return "", nil
}
