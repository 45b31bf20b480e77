package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/cluster"
	"ctrfs/ops"
)

// hostsDir is hosts/: this host, and the peers the cluster found.
type hostsDir struct {
	gofs.Inode
	staticDir
	m    Manager
	cl   Cluster
	root *Root
}

var (
	_ gofs.NodeLookuper  = (*hostsDir)(nil)
	_ gofs.NodeReaddirer = (*hostsDir)(nil)
	_ gofs.NodeGetattrer = (*hostsDir)(nil)
	_ gofs.NodeSetattrer = (*hostsDir)(nil)
	_ gofs.NodeRmdirer   = (*hostsDir)(nil)
)

func (d *hostsDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	entries := []fuse.DirEntry{{Name: d.m.Host(), Mode: syscall.S_IFDIR}}
	for _, p := range d.cl.Peers() {
		entries = append(entries, fuse.DirEntry{Name: p.Name, Mode: syscall.S_IFDIR})
	}
	return gofs.NewListDirStream(entries), 0
}

func (d *hostsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if name == d.m.Host() {
		if ch := d.GetChild(name); ch != nil {
			return entry(ctx, ch, out, cacheFixed)
		}
		return entry(ctx, d.NewInode(ctx, d.root.containers(false), gofs.StableAttr{Mode: syscall.S_IFDIR}), out, cacheFixed)
	}
	if _, ok := d.cl.Peer(name); !ok {
		return nil, syscall.ENOENT
	}
	if ch := d.GetChild(name); ch != nil {
		return ch, 0
	}
	return d.NewInode(ctx, &peerDir{m: d.m, cl: d.cl, host: name}, gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// peerEntries are hosts/PEER/'s own entries, beside the peer's
// containers: names no container may take (ReservedNames).
var peerEntries = []fuse.DirEntry{{Name: "info", Mode: syscall.S_IFREG}}

// peerDir is hosts/PEER/: the peer's `info` and its containers, read from
// the peer. Moving a container into it migrates the container there;
// moving one out of it into containers/ pulls it here.
type peerDir struct {
	gofs.Inode
	fixedEntries
	m    Manager
	cl   Cluster
	host string
}

var (
	_ gofs.NodeLookuper  = (*peerDir)(nil)
	_ gofs.NodeReaddirer = (*peerDir)(nil)
	_ gofs.NodeGetattrer = (*peerDir)(nil)
	_ gofs.NodeRenamer   = (*peerDir)(nil)
	_ gofs.NodeSetattrer = (*peerDir)(nil)
	_ gofs.NodeUnlinker  = (*peerDir)(nil)
	_ gofs.NodeRmdirer   = (*peerDir)(nil)
)

func (d *peerDir) peer() (cluster.Peer, error) {
	p, ok := d.cl.Peer(d.host)
	if !ok {
		return p, ops.NewError(ops.ErrNotFound, "no host "+d.host)
	}
	return p, nil
}

func (d *peerDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if _, err := d.peer(); err != nil {
		return errno(err)
	}
	out.Mode = syscall.S_IFDIR | modeDir
	setTimes(out, time.Now()) // read from the peer now
	return 0
}

func (d *peerDir) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return refuseSetattr(ctx, d, fh, in, out)
}

func (d *peerDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	if _, err := d.peer(); err != nil {
		return nil, errno(err)
	}
	entries := append([]fuse.DirEntry(nil), peerEntries...)
	// A peer that does not answer still has its info.
	list, _ := d.cl.PeerContainers(d.host)
	for _, c := range list {
		entries = append(entries, fuse.DirEntry{Name: c.Name, Mode: syscall.S_IFDIR})
	}
	return gofs.NewListDirStream(entries), 0
}

func (d *peerDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if _, err := d.peer(); err != nil {
		return nil, errno(err)
	}
	if ch := d.GetChild(name); ch != nil && name == "info" {
		return ch, 0
	}
	if name == "info" {
		info := newGenFile(func() ([]byte, error) {
			kv, err := d.cl.PeerInfo(d.host)
			if err != nil {
				return nil, err
			}
			return ops.FormatInfo(kv), nil
		})
		return d.NewInode(ctx, info, gofs.StableAttr{Mode: syscall.S_IFREG}), 0
	}
	if _, err := d.container(name); err != nil {
		return nil, errno(err)
	}
	// After `mv containers/c1 hosts/PEER/` the kernel has moved this
	// host's node for c1 under here: only a peer container's node is
	// reused.
	if ch := d.GetChild(name); ch != nil {
		if _, ok := ch.Operations().(*peerContainerDir); ok {
			return ch, 0
		}
	}
	return d.NewInode(ctx, &peerContainerDir{peer: d, name: name}, gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// container asks the peer about one of its containers.
func (d *peerDir) container(name string) (cluster.ContainerSummary, error) {
	list, err := d.cl.PeerContainers(d.host)
	if err != nil {
		return cluster.ContainerSummary{}, err
	}
	for _, c := range list {
		if c.Name == name {
			return c, nil
		}
	}
	return cluster.ContainerSummary{}, ops.NewError(ops.ErrNotFound, "no container "+name+" on "+d.host)
}

// Rename out of hosts/PEER/ into containers/ pulls the container here.
func (d *peerDir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags&^uint32(renameNoReplace) != 0 || newName != name {
		return syscall.EINVAL
	}
	switch target := newParent.(type) {
	case *containersDir:
		if target.m != d.m {
			return syscall.EINVAL
		}
		return errno(d.cl.Pull(name, d.host))
	case *peerDir:
		return syscall.EINVAL // between two peers: not from here
	}
	return syscall.EINVAL
}

// peerContainerDir is hosts/PEER/NAME: `status` and `info`, read-only.
type peerContainerDir struct {
	gofs.Inode
	fixedEntries
	peer *peerDir
	name string
}

var (
	_ gofs.NodeLookuper  = (*peerContainerDir)(nil)
	_ gofs.NodeReaddirer = (*peerContainerDir)(nil)
	_ gofs.NodeGetattrer = (*peerContainerDir)(nil)
	_ gofs.NodeSetattrer = (*peerContainerDir)(nil)
	_ gofs.NodeUnlinker  = (*peerContainerDir)(nil)
	_ gofs.NodeRmdirer   = (*peerContainerDir)(nil)
)

func (d *peerContainerDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if _, err := d.peer.container(d.name); err != nil {
		return errno(err)
	}
	out.Mode = syscall.S_IFDIR | modeFixed
	setTimes(out, time.Now()) // read from the peer now
	return 0
}

func (d *peerContainerDir) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return refuseSetattr(ctx, d, fh, in, out)
}

func (d *peerContainerDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	return gofs.NewListDirStream([]fuse.DirEntry{
		{Name: "status", Mode: syscall.S_IFREG}, {Name: "info", Mode: syscall.S_IFREG}}), 0
}

func (d *peerContainerDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if name != "status" && name != "info" {
		return nil, syscall.ENOENT
	}
	if ch := d.GetChild(name); ch != nil {
		return ch, 0
	}
	file := newGenFile(func() ([]byte, error) {
		c, err := d.peer.container(d.name)
		if err != nil {
			return nil, err
		}
		if name == "status" {
			return []byte(c.Status + "\n"), nil
		}
		return c.Info, nil
	})
	return d.NewInode(ctx, file, gofs.StableAttr{Mode: syscall.S_IFREG}), 0
}
