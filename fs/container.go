package fs

import (
	"context"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

// containerDir is containers/NAME. Its name changes when the container is
// renamed, so the files under it ask it for the name on every operation.
type containerDir struct {
	gofs.Inode
	m     Manager
	f     Files
	cl    Cluster
	guard *removalGuard
	view  *containersDir // containers/ or hosts/THIS-HOST/

	mu   sync.Mutex
	name string
}

var (
	_ gofs.NodeLookuper  = (*containerDir)(nil)
	_ gofs.NodeReaddirer = (*containerDir)(nil)
	_ gofs.NodeGetattrer = (*containerDir)(nil)
	_ gofs.NodeSetattrer = (*containerDir)(nil)
	_ gofs.NodeUnlinker  = (*containerDir)(nil)
	_ gofs.NodeRmdirer   = (*containerDir)(nil)
)

func (c *containerDir) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

// moved follows a rename: its new name, and the view it is now in (a
// rename can go from containers/ to hosts/THIS-HOST/ and back).
func (c *containerDir) moved(name string, view *containersDir) {
	c.mu.Lock()
	c.name, c.view = name, view
	c.mu.Unlock()
}

// inView is the directory the container is listed in.
func (c *containerDir) inView() *containersDir {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.view
}

// run forwards one ctl line to the router (cluster.Dispatch), which parses
// it and records a line that does not parse as the container's failure.
func (c *containerDir) run(line string) error {
	return c.cl.Dispatch(c.Name(), line)
}

var containerEntries = []fuse.DirEntry{
	{Name: "ctl", Mode: syscall.S_IFREG},
	{Name: "status", Mode: syscall.S_IFREG},
	{Name: "info", Mode: syscall.S_IFREG},
	{Name: "config", Mode: syscall.S_IFREG},
	{Name: "criu", Mode: syscall.S_IFREG},
	{Name: "error", Mode: syscall.S_IFREG},
	{Name: "log", Mode: syscall.S_IFREG},
	{Name: "bugreport", Mode: syscall.S_IFREG},
	{Name: "snapshots", Mode: syscall.S_IFDIR},
}

// containerStateEntry is listed only while there is saved state.
var containerStateEntry = fuse.DirEntry{Name: "state", Mode: syscall.S_IFDIR}

func (c *containerDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	changed, ok := c.f.Changed(c.Name())
	if !ok {
		return syscall.ENOENT
	}
	out.Mode = syscall.S_IFDIR | modeDir
	setTimes(out, changed)
	out.SetTimeout(c.attrTimeout())
	return 0
}

// attrTimeout: a container's name is looked up on every walk (cache.go).
func (c *containerDir) attrTimeout() time.Duration { return cacheRevalidated }

func (c *containerDir) times() ops.Times { return c.f.Times(c.Name()) }

// changed is times().Changed for less: a stat of the config.
func (c *containerDir) changed() time.Time {
	t, _ := c.f.Changed(c.Name())
	return t
}

func (c *containerDir) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return refuseSetattr(ctx, c, fh, in, out)
}

// Unlink is refused for every file of the container, and so is rmdir of
// snapshots/ and state/; the refusal is remembered (removalGuard).
func (c *containerDir) Unlink(ctx context.Context, name string) syscall.Errno {
	return c.refuseRemoval(ctx)
}

func (c *containerDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	return c.refuseRemoval(ctx)
}

// refuseRemoval is the EPERM of a removal inside the container, which
// pins it and its snapshots against the caller's rmdir.
func (c *containerDir) refuseRemoval(ctx context.Context) syscall.Errno {
	return c.guard.refuse(ctx, c.Name())
}

func (c *containerDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	if !c.m.Exists(c.Name()) {
		return nil, syscall.ENOENT
	}
	entries := containerEntries
	if c.m.HasState(c.Name()) {
		entries = append(entries[:len(entries):len(entries)], containerStateEntry)
	}
	return gofs.NewListDirStream(entries), 0
}

func (c *containerDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if !c.m.Exists(c.Name()) {
		return nil, syscall.ENOENT
	}
	if name == "state" {
		return c.lookupState(ctx)
	}
	// Every name but state/ is there as long as the container is.
	if ch := c.GetChild(name); ch != nil {
		return entry(ctx, ch, out, cacheFixed)
	}
	if name == "snapshots" {
		return entry(ctx, c.NewInode(ctx, &snapshotsDir{c: c}, gofs.StableAttr{Mode: syscall.S_IFDIR}), out, cacheFixed)
	}
	node := c.file(name)
	if node == nil {
		return nil, syscall.ENOENT
	}
	return entry(ctx, c.NewInode(ctx, node, gofs.StableAttr{Mode: syscall.S_IFREG}), out, cacheFixed)
}

// file is the node of the container's file name, nil if it has none.
func (c *containerDir) file(name string) gofs.InodeEmbedder {
	switch name {
	case "ctl":
		return containerCtl(c)
	case "config":
		return newConfigFile(c)
	case "criu":
		return newCriuFile(c)
	case "status":
		return newGenFile(func() ([]byte, error) {
			st, err := c.m.Status(c.Name())
			return []byte(st + "\n"), err
		}).changed(c.changed)
	case "info":
		// Made at open only: info asks LXC, the store and the cgroup, and
		// a stat (ls -l, every tool's open) must not pay for it.
		return newGenFile(func() ([]byte, error) {
			kv, err := c.m.Info(c.Name())
			return ops.FormatInfo(kv), err
		}).changed(c.changed).madeAtOpen()
	case "error":
		return newGenFile(func() ([]byte, error) {
			if e := c.m.LastError(c.Name()); e != "" {
				return []byte(e + "\n"), nil
			}
			return nil, nil
		}).changed(func() time.Time { return c.times().Error })
	case "log":
		return newGenFile(func() ([]byte, error) { return c.m.Log(c.Name()), nil }).
			changed(func() time.Time { return c.times().Log }).private()
	case "bugreport":
		// Private: it holds the config, logs and mount tables.
		return newGenFile(func() ([]byte, error) { return c.cl.BugReport(c.Name()) }).private().madeAtOpen()
	}
	return nil
}

// lookupState finds state/, which exists only while there is saved state.
func (c *containerDir) lookupState(ctx context.Context) (*gofs.Inode, syscall.Errno) {
	if !c.m.HasState(c.Name()) {
		return nil, syscall.ENOENT
	}
	if ch := c.GetChild("state"); ch != nil {
		return ch, 0
	}
	dir := &imageDir{c: c, source: func() (*ops.ImageSet, error) { return c.m.SavedState(c.Name()) }}
	return c.NewInode(ctx, dir, gofs.StableAttr{Mode: syscall.S_IFDIR}), 0
}
