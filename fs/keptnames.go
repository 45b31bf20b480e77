package fs

import (
	"context"
	"strings"
	"time"

	"ctrfs/ops"
)

// keptNames is what containers/ lets the kernel keep beyond what cache.go
// keeps everywhere: the names and attributes of snapshots until told, and
// the names of containers and the attributes of their snapshots/ for a
// burst of walks (cacheBurst), so that `ls -R containers/*/snapshots`,
// which walks from the top to each of a thousand snapshot directories,
// asks nothing about most of the way. hosts/THIS-HOST/, the other view of
// the same containers, keeps none of it. A change through containers/
// itself the kernel sees; a change made any other way must make it drop
// what it kept: a snapshot deleted, a container destroyed or renamed
// through hosts/THIS-HOST/ (dropped before the change returns), and from
// the events whatever else changed a container (its times, or its
// snapshots: a move, an arrival, a peer's pull, an evacuation).
type keptNames struct {
	main *containersDir // containers/
	m    Manager
}

// forgetWait bounds how long a change waits for the kernel to drop what
// it kept: the kernel takes the directory's lock for that, and an
// operation under way in containers/ may hold it. Past it the drop still
// happens, just after the change has returned.
const forgetWait = time.Second

// forget makes the kernel drop what containers/ kept of the container:
// the snapshot snap, or all of them and, if the container is gone, its
// name. It also drops the attributes of the container's directory and
// snapshots/, whose times an operation changes.
func (k *keptNames) forget(name, snap string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := k.main.GetChild(name)
		if c == nil {
			return
		}
		c.NotifyContent(-1, 0) // attributes only, no lock taken
		s := c.GetChild("snapshots")
		if s != nil {
			s.NotifyContent(-1, 0)
		}
		switch {
		case snap != "" && s != nil:
			s.NotifyEntry(snap)
		case snap != "":
		case !k.m.Exists(name):
			k.main.NotifyEntry(name) // and all under it
		case s != nil:
			for n := range s.Children() {
				s.NotifyEntry(n)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(forgetWait):
	}
}

// keepsSnapshots is whether the operation leaves a container's snapshots
// as they were, or only adds one (an absent name is never kept).
var keepsSnapshots = map[string]bool{
	"start": true, "stop": true, "stop-stateful": true, "restart": true,
	"freeze": true, "unfreeze": true, "check": true, "snapshot": true,
	"restore": true, "config": true, "criu": true, "ctl": true,
	// Made only through the tree: the kernel saw a change in containers/
	// itself, and hosts/THIS-HOST/ forgets at once (a forget of every
	// kept snapshot per rmdir would be quadratic over `rm`'s of many).
	"delete-snapshot": true, "destroy": true, "rename": true,
}

// forgetOnEvents drops what containers/ kept of a container after every
// operation on it, however it was asked for, until the bus closes.
func (k *keptNames) forgetOnEvents(sub *ops.Subscription) {
	for {
		e, ok := sub.Next(context.Background())
		if !ok {
			return
		}
		switch {
		case e.Container == "":
		case keepsSnapshots[e.What],
			// A move's phases and its downtime: the move's own event,
			// when it ends, forgets.
			strings.HasPrefix(e.What, "move-") && (e.Result == "started" || e.What == "move-downtime"):
			k.touched(e.Container)
		default:
			k.forget(e.Container, "")
		}
	}
}

// touched drops the attributes of the container's directory and
// snapshots/, which carry the time of its last operation: no lock is
// taken, nothing waits.
func (k *keptNames) touched(name string) {
	if c := k.main.GetChild(name); c != nil {
		c.NotifyContent(-1, 0)
		if s := c.GetChild("snapshots"); s != nil {
			s.NotifyContent(-1, 0)
		}
	}
}
