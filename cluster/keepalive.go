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
func (mg *migration) keepAlive() (stop func()) {
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
			if err := mg.call("Host.Renew", mg.token, new(bool)); err != nil {
				mg.c.cfg.Log.Debug("cluster: cannot renew the migration session", "container", mg.o.Name(), "err", err)
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}
