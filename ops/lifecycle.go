package ops

import (
	"context"
	"fmt"

	"ctrfs/ops/lxchelper"
	"ctrfs/ops/lxcpath"
)

// Run carries out one ctl command on a container: any but move, which
// cluster.Dispatch, the router of ctl lines, sends to the cluster.
func (m *Manager) Run(name string, cmd Command) error {
	var fn func(context.Context, *opContext) error
	switch cmd.Verb {
	case "start":
		fn = func(ctx context.Context, oc *opContext) error { return m.start(ctx, oc, name) }
	case "stop":
		fn = func(ctx context.Context, oc *opContext) error {
			if err := m.containers.Stop(name); err != nil {
				return err
			}
			return m.stored.DropState(name)
		}
	case "stop-stateful":
		fn = func(ctx context.Context, oc *opContext) error { return m.saved.StopStateful(ctx, oc, name, nil) }
	case "restart":
		fn = func(ctx context.Context, oc *opContext) error {
			if err := m.containers.Stop(name); err != nil {
				return err
			}
			if err := m.stored.DropState(name); err != nil {
				return err
			}
			return m.start(ctx, oc, name)
		}
	case "freeze":
		fn = func(ctx context.Context, oc *opContext) error { return m.freeze(ctx, name) }
	case "unfreeze":
		fn = func(ctx context.Context, oc *opContext) error { return m.unfreeze(name) }
	case "snapshot":
		fn = func(ctx context.Context, oc *opContext) error {
			return m.snapshots.Take(ctx, oc, name, cmd.Arg, cmd.Stateful)
		}
	case "restore":
		fn = func(ctx context.Context, oc *opContext) error { return m.snapshots.Restore(ctx, oc, name, cmd.Arg) }
	case "check":
		fn = func(ctx context.Context, oc *opContext) error { return m.saved.Check(ctx, oc, name) }
	case "convert":
		fn = m.runConvert(name)
	default:
		// No ctl line gets here: cluster.Dispatch parses every one and
		// sends move to the cluster. A caller that skips the router does.
		return newError(ErrInvalid, fmt.Sprintf("unknown command %q; read ctl for the list", cmd.Verb), nil)
	}
	if !m.Exists(name) {
		return newError(ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	return m.ledger.run(m.opCtx(), operation{name: name, what: cmd.Verb, fn: fn})
}

func (m *Manager) start(ctx context.Context, oc *opContext, name string) error {
	c, err := m.containers.Open(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := lxcpath.RequireStatus(c, "start", "STOPPED"); err != nil {
		return err
	}
	if err := m.cfg.Network.EnsureBridge(); err != nil {
		return newError(ErrFailed, "start "+name, err)
	}
	if m.HasState(name) {
		return m.saved.StartFromState(ctx, oc, name)
	}
	return m.containers.RunHelper(ctx, oc, lxchelper.Start, name)
}

func (m *Manager) freeze(ctx context.Context, name string) error {
	c, err := m.containers.Open(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := lxcpath.RequireStatus(c, "freeze", "RUNNING"); err != nil {
		return err
	}
	if err := lxchelper.FreezeWithin(ctx, c, lxchelper.FreezeLimit); err != nil {
		return newError(ErrFailed, "freeze "+name, err)
	}
	return nil
}

func (m *Manager) unfreeze(name string) error {
	c, err := m.containers.Open(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := lxcpath.RequireStatus(c, "unfreeze", "FROZEN"); err != nil {
		return err
	}
	if err := c.Unfreeze(); err != nil {
		return newError(ErrFailed, "unfreeze "+name, err)
	}
	return nil
}
