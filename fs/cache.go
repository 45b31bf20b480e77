package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// What the kernel may keep. By default nothing (Options): LXC and other
// tools create, destroy and change containers behind the tree's back. But
// then every path walk asks the daemon about each name on the way again,
// and every permission check on the way (default_permissions) about each
// directory's attributes: `ls -R containers/*/snapshots` over 1000
// snapshots was 17,000 requests, most about what cannot have changed.
// Nodes that know better say so, reply by reply:
//
//   - cacheFixed: names that exist exactly as long as their directory does
//     (containers/ in the root, status in containers/NAME, info in a
//     snapshot): a walk looks the directory itself up again, and if it is
//     gone so is what the kernel kept under it. And the attributes of the
//     directories that never change while the mount lasts (the root,
//     containers/, hosts/, templates/). Files' attributes are never kept:
//     a stat of any file of a killed daemon's mount fails (ENOTCONN).
//   - cacheRevalidated: the attributes of a directory whose own name is
//     looked up again by every walk through it (a container, a snapshot,
//     under hosts/THIS-HOST/; see keptnames.go for containers/): that
//     reply carries its attributes, fresh, and the kernel keeps them for
//     the permission checks and stat of the same walk rather than asking
//     again at once. Only fstat of an open directory, or stat of "."
//     inside it, can show them up to that long late.
//
// Names that appear and vanish (a container, a snapshot, state/, a peer)
// are looked up on every walk, and absent names are never kept
// (NegativeTimeout), so a change made by LXC or through the tree shows at
// once. containers/ keeps more (keptnames.go): snapshots' names until a
// change drops them, containers' names for a burst of walks.
const (
	cacheFixed       = time.Hour
	cacheRevalidated = time.Second
	// cacheBurst is for what LXC can change behind the tree's back but a
	// burst of walks asks again and again: in containers/, a container's
	// name and its snapshots/'s attributes (keptnames.go). A change made
	// by LXC shows after at most that long; one made through the tree
	// shows at once.
	cacheBurst = 10 * time.Millisecond
)

// attrCacher is a node whose attributes the kernel may keep for a while.
type attrCacher interface{ attrTimeout() time.Duration }

// entry completes a LOOKUP (or READDIRPLUS, or MKDIR) reply for child:
// how long the kernel may keep the name and, for a node whose attributes
// it may keep, those attributes, so that no GETATTR follows.
func entry(ctx context.Context, child *gofs.Inode, out *fuse.EntryOut, keepName time.Duration) (*gofs.Inode, syscall.Errno) {
	out.SetEntryTimeout(keepName)
	ops := child.Operations()
	c, ok := ops.(attrCacher)
	ga, ok2 := ops.(gofs.NodeGetattrer)
	if !ok || !ok2 || c.attrTimeout() <= 0 {
		return child, 0
	}
	var a fuse.AttrOut
	if e := ga.Getattr(ctx, nil, &a); e != 0 {
		return nil, e
	}
	out.Attr = a.Attr
	out.SetAttrTimeout(c.attrTimeout())
	return child, 0
}
