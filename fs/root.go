// Package fs is the FUSE tree of docs/ctrfs.5.md. It turns file operations into
// calls on ops/ (and, for other hosts, cluster/) and maps their errors to
// errno; it knows nothing of LXC or CRIU.
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

// Root is the mount's top directory.
type Root struct {
	gofs.Inode
	m  *ops.Manager
	cl Cluster
}

// Cluster is what the tree needs of cluster/: the peers, their
// containers, and moving containers between hosts.
type Cluster interface {
	Peers() []cluster.Peer
	Peer(name string) (cluster.Peer, bool)
	PeerInfo(name string) ([]ops.KeyValue, error)
	PeerContainers(host string) ([]cluster.ContainerSummary, error)
	Migrate(name, host string) error
	Pull(name, from string) error
}

var _ gofs.NodeOnAdder = (*Root)(nil)

func NewRoot(m *ops.Manager, cl Cluster) *Root { return &Root{m: m, cl: cl} }

func (r *Root) OnAdd(ctx context.Context) {
	add := func(name string, node gofs.InodeEmbedder, mode uint32) {
		r.AddChild(name, r.NewPersistentInode(ctx, node, gofs.StableAttr{Mode: mode}), false)
	}
	add("README", staticFile(readme), syscall.S_IFREG)
	add("host", staticFile(r.m.Host()+"\n"), syscall.S_IFREG)
	add("events", &eventsFile{bus: r.m.Events()}, syscall.S_IFREG)
	add("ctl", hostCtl(r.m), syscall.S_IFREG)
	add("templates", &templatesDir{m: r.m}, syscall.S_IFDIR)
	add("containers", &containersDir{m: r.m, cl: r.cl, hostsLink: true}, syscall.S_IFDIR)
	add("hosts", &hostsDir{m: r.m, cl: r.cl}, syscall.S_IFDIR)
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
			// Other users may look (files are 0444, directories
			// 0755) but only root may act: the kernel checks the
			// modes, so a write to ctl or a mkdir is EACCES for them.
			Options: []string{"default_permissions"},
		},
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
	}
}
