package lxcpath

import (
	"fmt"

	lxc "github.com/lxc/go-lxc"

	"ctrfs/ops/errkind"
	"ctrfs/ops/lxchelper"
)

// Stop stops a container cleanly: its init is asked to halt, and killed
// past ShutdownTimeout. A stopped one is left as it is.
func (cs *Containers) Stop(name string) error { return cs.halt(name, true) }

// Kill stops a container without a clean shutdown, for when its processes
// and files are about to be replaced anyway (restore of a snapshot).
func (cs *Containers) Kill(name string) error { return cs.halt(name, false) }

func (cs *Containers) halt(name string, clean bool) error {
	c, err := cs.Open(name)
	if err != nil {
		return err
	}
	defer c.Release()
	st := StatusOf(c)
	if st == "STOPPED" {
		return nil
	}
	if st == "FROZEN" && !clean {
		// Killed frozen, its tasks do not run again (a held container's
		// checkpoint lives on elsewhere: hold.go).
		if err := lxchelper.KillFrozen(c, ShutdownTimeout); err != nil {
			return errkind.New(errkind.ErrFailed, "stop "+name, err)
		}
		return nil
	}
	if st == "FROZEN" {
		// A frozen init cannot take the halt signal.
		if err := c.Unfreeze(); err != nil {
			return errkind.New(errkind.ErrFailed, "unfreeze "+name+" before stopping", err)
		}
	}
	if !clean {
		if err := c.Stop(); err != nil {
			return errkind.New(errkind.ErrFailed, "stop "+name, err)
		}
	} else if err := c.Shutdown(ShutdownTimeout); err != nil && c.Running() {
		if err := c.Stop(); err != nil {
			return errkind.New(errkind.ErrFailed, "stop "+name, err)
		}
	}
	if !c.Wait(lxc.STOPPED, ShutdownTimeout) {
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("stop %s: still %s after %s", name, StatusOf(c), ShutdownTimeout), nil)
	}
	return nil
}
