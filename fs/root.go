// Package fs is the FUSE tree of SPEC.md. It turns file operations into
// calls on ops/ (and, for other hosts, cluster/) and maps their errors to
// errno; it knows nothing of LXC or CRIU.
package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

// Root is the mount's top directory.
type Root struct {
	gofs.Inode
	m *ops.Manager
}

var _ gofs.NodeOnAdder = (*Root)(nil)

func NewRoot(m *ops.Manager) *Root { return &Root{m: m} }

func (r *Root) OnAdd(ctx context.Context) {
	add := func(name string, node gofs.InodeEmbedder, mode uint32) {
		r.AddChild(name, r.NewPersistentInode(ctx, node, gofs.StableAttr{Mode: mode}), false)
	}
	add("README", staticFile(readme), syscall.S_IFREG)
	add("host", staticFile(r.m.Host()+"\n"), syscall.S_IFREG)
	add("events", &eventsFile{bus: r.m.Events()}, syscall.S_IFREG)
	add("containers", &containersDir{m: r.m, hostsLink: true}, syscall.S_IFDIR)
	add("hosts", &hostsDir{m: r.m}, syscall.S_IFDIR)
}

// Options are the mount options: nothing is cached by the kernel, because
// every name and attribute can change through LXC behind the tree's back.
func Options() *gofs.Options {
	zero := time.Duration(0)
	return &gofs.Options{
		MountOptions: fuse.MountOptions{
			DirectMount: true,
			FsName:      "ctrfs",
			Name:        "ctrfs",
			AllowOther:  true,
		},
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
	}
}
