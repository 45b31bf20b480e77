package cluster

import (
	"sync"
	"time"
)

// renewEvery is how often a move's source renews the target's session
// while it works between calls: a third of sessionIdle, so that a renewal
// or two may be slow or lost under load without the session expiring.
var renewEvery = sessionIdle / 3

// keepAlive renews the target's session (Host.Renew) until the returned
// stop is called. Between two calls the source may work for longer than
// sessionIdle (packing a big rootfs, a precopy dump, the freeze of a big
// container): without renewals the target dropped the session while the
// source was still at it, and every move of a big container failed. A
// source that dies or is cut off stops renewing, so the target still
// drops its session within sessionIdle. stop may be called more than once.
//
// Each renewal goes on a connection of its own, not on the move's (mg.call):
// net/rpc writes a connection's requests whole, one after another, so there
// a renewal waited behind up to inFlight batches of Host.Put (send.go), and
// on a link slower than about a MiB/s (an emulated host under load) no
// call reached the target within sessionIdle while the source was sending:
// the target expired the session of a live move (a 1 GiB container's move
// failed after ten minutes of precopy on the test bed). A connection per
// renewal (callEndpoint) is the simplest that cannot queue behind the move
// and needs no state; a dial every sessionIdle/3 costs little beside a
// move. A source cut off from the target cannot dial either, so the
// target still drops the session within sessionIdle.
func (mg *migration) keepAlive() (stop func()) {
	endpoint := mg.peer.Meta.Endpoint
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(renewEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			// A target without Host.Renew (an older ctrfs) answers an
			// error, and so does one whose session is gone: the next
			// call of the move then fails with the cause.
			if err := mg.c.callEndpoint(endpoint, "Host.Renew", mg.token, new(bool)); err != nil {
				mg.c.cfg.Log.Debug("cluster: cannot renew the migration session", "container", mg.o.Name(), "err", err)
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}
