package savedstate

import (
	"context"
	"fmt"
	"time"

	"ctrfs/ops/errkind"
	"ctrfs/ops/lazypages"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/opctx"
)

// startLazyPages starts the lazy-pages daemon of one restore attempt in
// dir; another starter (with a page server's address) can take its place.
type startLazyPages func(dir string) (*lazypages.Daemon, error)

func LocalLazyPages(dir string) (*lazypages.Daemon, error) { return lazypages.Start(dir) }

// AwaitLazyPages waits until the lazy-pages daemon of a container restored
// lazily (and frozen) has copied in every page. If it has not, the
// container is killed before it can run on zero-filled memory; the caller
// keeps what it was restored from. The daemon's log goes into the `log`.
func (k *Keeper) AwaitLazyPages(ctx context.Context, oc *opctx.Op, name string, d *lazypages.Daemon) error {
	// Like every CRIU run, it has a deadline (see lxchelper/criulimit.go).
	limit := lxchelper.CRIULimit(opctx.DirSize(d.Dir()))
	limited, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	kill := context.AfterFunc(limited, d.Kill)
	err := d.Wait()
	if !kill() && err != nil {
		err = fmt.Errorf("criu lazy-pages did not finish within %s, so it was killed", limit.Round(time.Second))
	}
	oc.SetLog(append(oc.Log, d.Log()...))
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("the lazy restore of %s did not get all its memory (%v)", name, err)
	if kerr := k.containers.Kill(name); kerr != nil {
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("%s, and stopping it failed: %v", msg, kerr), nil)
	}
	return errkind.New(errkind.ErrFailed, msg+"; it was stopped", nil)
}
