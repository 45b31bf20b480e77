package fs

import (
	"context"
	"time"

	"ctrfs/ops"
)

// keptNames is what containers/ lets the kernel keep of snapshots: their
// names and attributes (cache.go), so that a walk through a thousand
// snapshot directories asks nothing about them. hosts/THIS-HOST/, the
// other view of the same containers, keeps none. A change through
// containers/NAME/snapshots/ itself the kernel sees; any other change to
// a container's snapshots must make it drop what it kept there: a
// snapshot deleted through hosts/THIS-HOST/, a container destroyed or
// renamed through it, and (from the events) one moved away, arriving, or
// changed by a peer or an evacuation.
type keptNames struct {
	main *containersDir // containers/
}

// forgetWait bounds how long a change waits for the kernel to drop what
// it kept: the kernel takes the directory's lock for that, and an
// operation under way in containers/ may hold it. Past it the drop still
// happens, just after the change has returned.
const forgetWait = time.Second

// forget makes the kernel drop the snapshot snap of the container kept
// under containers/NAME/snapshots/, or all of them if snap is "".
func (k *keptNames) forget(name, snap string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := k.main.GetChild(name)
		if c == nil {
			return
		}
		s := c.GetChild("snapshots")
		if s == nil {
			return
		}
		if snap != "" {
			s.NotifyEntry(snap)
			return
		}
		for n := range s.Children() {
			s.NotifyEntry(n)
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
}

// forgetOnEvents drops what containers/ kept of a container's snapshots
// after every operation that may have changed them, however it was asked
// for (a peer's pull, an evacuation, a move), until the bus closes.
func (k *keptNames) forgetOnEvents(sub *ops.Subscription) {
	for {
		e, ok := sub.Next(context.Background())
		if !ok {
			return
		}
		if e.Container != "" && !keepsSnapshots[e.What] {
			k.forget(e.Container, "")
		}
	}
}
