package ops

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	lxc "github.com/lxc/go-lxc"

	"ctrfs/ops/lxchelper"
)

// shutdownTimeout is how long a clean stop waits for init before killing.
const shutdownTimeout = 10 * time.Second

// Run carries out one ctl command on a container: any but move, which
// cluster.Dispatch, the router of ctl lines, sends to the cluster.
func (m *Manager) Run(name string, cmd Command) error {
	var fn func(context.Context, *opContext) error
	switch cmd.Verb {
	case "start":
		fn = func(ctx context.Context, oc *opContext) error { return m.start(ctx, oc, name) }
	case "stop":
		fn = func(ctx context.Context, oc *opContext) error {
			if err := m.stop(name); err != nil {
				return err
			}
			return m.dropState(name)
		}
	case "stop-stateful":
		fn = func(ctx context.Context, oc *opContext) error { return m.stopStateful(ctx, oc, name, nil) }
	case "restart":
		fn = func(ctx context.Context, oc *opContext) error {
			if err := m.stop(name); err != nil {
				return err
			}
			if err := m.dropState(name); err != nil {
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
			return m.snapshot(ctx, oc, name, cmd.Arg, cmd.Stateful)
		}
	case "restore":
		fn = func(ctx context.Context, oc *opContext) error { return m.restoreSnapshot(ctx, oc, name, cmd.Arg) }
	case "check":
		fn = func(ctx context.Context, oc *opContext) error { return m.check(ctx, oc, name) }
	default:
		// No ctl line gets here: cluster.Dispatch parses every one and
		// sends move to the cluster. A caller that skips the router does.
		return newError(ErrInvalid, fmt.Sprintf("unknown command %q; read ctl for the list", cmd.Verb), nil)
	}
	if !m.Exists(name) {
		return newError(ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	return m.run(m.opCtx(), operation{name: name, what: cmd.Verb, fn: fn})
}

// requireStatus fails with ErrBusy unless the container is in one of want.
func (m *Manager) requireStatus(c *lxc.Container, verb string, want ...string) (string, error) {
	st := statusOf(c)
	for _, w := range want {
		if st == w {
			return st, nil
		}
	}
	return st, newError(ErrBusy, fmt.Sprintf("cannot %s %s: it is %s", verb, c.Name(), st), nil)
}

// requireStatusOf is requireStatus for a container by name.
func (m *Manager) requireStatusOf(name, verb string, want ...string) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	_, err = m.requireStatus(c, verb, want...)
	return err
}

func (m *Manager) start(ctx context.Context, oc *opContext, name string) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := m.requireStatus(c, "start", "STOPPED"); err != nil {
		return err
	}
	if err := m.cfg.Network.EnsureBridge(); err != nil {
		return newError(ErrFailed, "start "+name, err)
	}
	if m.HasState(name) {
		return m.startFromState(ctx, oc, name)
	}
	return m.runHelper(ctx, oc, lxchelper.Start, name)
}

func (m *Manager) stop(name string) error { return m.halt(name, true) }

// kill stops a container without a clean shutdown, for when its processes
// and files are about to be replaced anyway (restore of a snapshot).
func (m *Manager) kill(name string) error { return m.halt(name, false) }

func (m *Manager) halt(name string, clean bool) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	st := statusOf(c)
	if st == "STOPPED" {
		return nil
	}
	if st == "FROZEN" && !clean {
		// Killed frozen, its tasks do not run again (a held container's
		// checkpoint lives on elsewhere: hold.go).
		if err := lxchelper.KillFrozen(c, shutdownTimeout); err != nil {
			return newError(ErrFailed, "stop "+name, err)
		}
		return nil
	}
	if st == "FROZEN" {
		// A frozen init cannot take the halt signal.
		if err := c.Unfreeze(); err != nil {
			return newError(ErrFailed, "unfreeze "+name+" before stopping", err)
		}
	}
	if !clean {
		if err := c.Stop(); err != nil {
			return newError(ErrFailed, "stop "+name, err)
		}
	} else if err := c.Shutdown(shutdownTimeout); err != nil && c.Running() {
		if err := c.Stop(); err != nil {
			return newError(ErrFailed, "stop "+name, err)
		}
	}
	if !c.Wait(lxc.STOPPED, shutdownTimeout) {
		return newError(ErrFailed, fmt.Sprintf("stop %s: still %s after %s", name, statusOf(c), shutdownTimeout), nil)
	}
	return nil
}

func (m *Manager) freeze(ctx context.Context, name string) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := m.requireStatus(c, "freeze", "RUNNING"); err != nil {
		return err
	}
	if err := lxchelper.FreezeWithin(ctx, c, lxchelper.FreezeLimit); err != nil {
		return newError(ErrFailed, "freeze "+name, err)
	}
	return nil
}

func (m *Manager) unfreeze(name string) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := m.requireStatus(c, "unfreeze", "FROZEN"); err != nil {
		return err
	}
	if err := c.Unfreeze(); err != nil {
		return newError(ErrFailed, "unfreeze "+name, err)
	}
	return nil
}

// helpers starts the helper processes (lxchelper) of this manager's
// containers.
func (m *Manager) helpers() lxchelper.Runner {
	return lxchelper.Runner{Path: m.cfg.HelperPath, LXCPath: m.cfg.LXCPath,
		LogDir: filepath.Join(m.cfg.StoreDir, "logs"), TempDir: m.scratchDir()}
}

// runHelper runs a helper verb for an operation (lxchelper.Runner.Run): the
// LXC log it wrote becomes the operation's `log`, and ctx's end stops it
// (everything it runs, LXC and CRIU, and exits: lxchelper/lifeline.go).
func (m *Manager) runHelper(ctx context.Context, oc *opContext, verb lxchelper.Verb, name string, args ...string) error {
	log, ran, err := m.helpers().Run(ctx, verb, name, args...)
	if ran {
		oc.SetLog(log)
	}
	return err
}

// runCRIUHelper is runHelper for a verb whose CRIU works over work bytes
// of images: past lxchelper.CRIULimit(work) the helper is stopped, and the
// error is an *lxchelper.OverdueError.
func (m *Manager) runCRIUHelper(ctx context.Context, oc *opContext, work int64, verb lxchelper.Verb, name string, args ...string) error {
	log, ran, err := m.helpers().RunCRIU(ctx, work, verb, name, args...)
	if ran {
		oc.SetLog(log)
	}
	return err
}
