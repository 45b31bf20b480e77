package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

// hostsDir is hosts/: this host, and the peers the cluster found.
type hostsDir struct {
	gofs.Inode
	m *ops.Manager
}

var (
	_ gofs.NodeLookuper  = (*hostsDir)(nil)
	_ gofs.NodeReaddirer = (*hostsDir)(nil)
)

func (d *hostsDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	return gofs.NewListDirStream([]fuse.DirEntry{{Name: d.m.Host(), Mode: syscall.S_IFDIR}}), 0
}

func (d *hostsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if name != d.m.Host() {
		return nil, syscall.ENOENT
	}
	if ch := d.GetChild(name); ch != nil {
		return ch, 0
	}
	return d.NewInode(ctx, &containersDir{m: d.m}, gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
}
