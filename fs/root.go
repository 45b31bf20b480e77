// Package fs is the FUSE tree of docs/ctrfs.5.md. It turns file operations into
// calls on ops/ (and, for other hosts, cluster/) and maps their errors to
// errno; it knows nothing of LXC or CRIU. A line written to a ctl it only
// forwards: cluster/commands.go parses and routes every command.
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
	staticDir // mounted: the times of what never changes
	m         Manager
	f         Files
	cl        Cluster
	guard     *removalGuard
	kept      *keptNames
	host      *hostCommands // ctl and error; a mkdir in containers/ is a create
}

// Cluster is what the tree needs of cluster/: the router of ctl commands,
// the peers, their containers, and moving containers between hosts by mv.
type Cluster interface {
	Peers() []cluster.Peer
	Peer(name string) (cluster.Peer, bool)
	PeerInfo(name string) ([]ops.KeyValue, error)
	PeerContainers(host string) ([]cluster.ContainerSummary, error)
	Migrate(name, host string) error // mv containers/NAME hosts/HOST/
	Pull(name, from string) error    // mv hosts/HOST/NAME containers/
	// Dispatch and DispatchHost carry out a line written to a
	// container's ctl and to the top-level one: the one router of
	// commands, which parses the line (cluster/commands.go).
	Dispatch(container, line string) error
	DispatchHost(line string) error
	BugReport(name string) ([]byte, error)
}

var (
	_ gofs.NodeOnAdder   = (*Root)(nil)
	_ gofs.NodeGetattrer = (*Root)(nil)
	_ gofs.NodeSetattrer = (*Root)(nil)
	_ gofs.NodeUnlinker  = (*Root)(nil)
	_ gofs.NodeLookuper  = (*Root)(nil)
)

func NewRoot(m Manager, f Files, cl Cluster) *Root {
	return &Root{m: m, f: f, cl: cl, guard: newRemovalGuard(), staticDir: staticDir{mounted: time.Now()}, kept: &keptNames{m: m}}
}

// rootEntries are the top entries, in the order they are made. Their
// names are also names no container may take (ReservedNames).
var rootEntries = []fuse.DirEntry{
	{Name: "README", Mode: syscall.S_IFREG},
	{Name: "host", Mode: syscall.S_IFREG},
	{Name: "events", Mode: syscall.S_IFREG},
	{Name: "ctl", Mode: syscall.S_IFREG},
	{Name: "error", Mode: syscall.S_IFREG},
	{Name: "templates", Mode: syscall.S_IFDIR},
	{Name: "containers", Mode: syscall.S_IFDIR},
	{Name: "hosts", Mode: syscall.S_IFDIR},
}

func (r *Root) OnAdd(ctx context.Context) {
	r.host = &hostCommands{cl: r.cl, changed: r.mounted}
	r.kept.main = r.containers(true)
	nodes := map[string]gofs.InodeEmbedder{
		"README":     staticFile(readme, r.mounted),
		"host":       staticFile(r.m.Host()+"\n", r.mounted),
		"events":     &eventsFile{bus: r.m.Events()},
		"ctl":        r.host.ctl(),
		"error":      r.host.errorFile(),
		"templates":  &templatesDir{m: r.m, staticDir: r.staticDir},
		"containers": r.kept.main,
		"hosts":      &hostsDir{m: r.m, cl: r.cl, root: r, staticDir: r.staticDir},
	}
	for _, e := range rootEntries {
		r.AddChild(e.Name, r.NewPersistentInode(ctx, nodes[e.Name], gofs.StableAttr{Mode: e.Mode}), false)
	}
	go r.kept.forgetOnEvents(r.m.Events().Subscribe())
}

// Lookup finds the top entries, which last as long as the mount.
func (r *Root) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ch := r.GetChild(name)
	if ch == nil {
		return nil, syscall.ENOENT
	}
	return entry(ctx, ch, out, cacheFixed)
}

// containers is containers/ (with the hosts link) or hosts/THIS-HOST/.
func (r *Root) containers(hostsLink bool) *containersDir {
	return &containersDir{m: r.m, f: r.f, cl: r.cl, guard: r.guard, staticDir: r.staticDir, hostsLink: hostsLink, kept: r.kept, host: r.host}
}

// Options are the mount options: by default nothing is cached by the
// kernel, because names and attributes can change through LXC behind the
// tree's back; nodes that know better say so reply by reply (cache.go).
func Options() *gofs.Options {
	zero := time.Duration(0)
	return &gofs.Options{
		MountOptions: fuse.MountOptions{
			DirectMount: true,
			FsName:      "ctrfs",
			Name:        "ctrfs",
			AllowOther:  true,
			// Other users may look (at what is 0444 and 0755) but
			// only root may act or read process memory and
			// configs: the kernel checks the modes, so a write to
			// ctl, a mkdir or a read of state/ is EACCES for them.
			Options: []string{"default_permissions"},
			// O_TRUNC comes with the open instead of as a setattr
			// of its own: a truncate(2) or ftruncate(2) is then
			// always meant, and control files can refuse it while
			// `echo start > ctl` opens with O_TRUNC as it must.
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
		},
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
	}
}
