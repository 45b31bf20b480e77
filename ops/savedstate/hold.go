package savedstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"ctrfs/ops/errkind"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/network"
)

// A hold keeps a container's processes, frozen and off the wire, while
// its checkpoint is proven (stop-stateful, check: a restore rehearsal) or
// handed over (a move's target restores it): the checkpoint is never the
// container's only copy until something has restored it. If the proof or
// the handover fails, the same processes run on (release), with the same
// PIDs and TCP connections; once it has succeeded they are killed
// without running again (killHeld).
//
// Off the wire: the host's ends of its veths leave their bridge
// (network.Isolate), so that its kernel, which runs on while its tasks
// are frozen, acknowledges nothing a restored copy would not have.
//
// A hold is recorded in the container's directory (lxchelper.HoldFile):
// a helper whose daemon dies during the dump or the rehearsal releases it,
// and a daemon killed otherwise releases it when it starts again
// (releaseLeftHolds), unless a move's journal settles it (StartLocked,
// Remove).

func (k *Keeper) HoldPath(name string) string {
	return lxchelper.HoldPath(k.containers.Path(), name)
}

// Hold freezes the running container and takes it off the wire. A
// failure leaves it running as before.
func (k *Keeper) Hold(ctx context.Context, name, purpose string) error {
	c, err := k.containers.Open(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := lxcpath.RequireStatus(c, purpose, "RUNNING"); err != nil {
		return err
	}
	if err := lxchelper.FreezeWithin(ctx, c, lxchelper.FreezeLimit); err != nil {
		return errkind.New(errkind.ErrFailed, "freeze "+name+" for its checkpoint", err)
	}
	links, err := network.Isolate(c.InitPid())
	if err == nil {
		data, _ := json.Marshal(lxchelper.Hold{Purpose: purpose, Links: links})
		if err = os.WriteFile(k.HoldPath(name), data, 0o600); err != nil {
			network.Reattach(links)
		}
	}
	if err != nil {
		c.Unfreeze()
		return errkind.New(errkind.ErrFailed, "take "+name+" off the network for its checkpoint", err)
	}
	return nil
}

// Held reads the container's hold, or nil if it has none.
func (k *Keeper) Held(name string) *lxchelper.Hold {
	return lxchelper.ReadHold(k.containers.Path(), name)
}

// Release lets a held container run on: thawed, back on its bridges,
// and after a move, announced. The hold's record goes last, so that a daemon killed
// meanwhile releases it again.
func (k *Keeper) Release(name string) error {
	h := k.Held(name)
	if h == nil {
		return nil
	}
	c, err := k.containers.Open(name)
	if err != nil {
		return err
	}
	defer c.Release()
	var errs []error
	if pid := c.InitPid(); c.Running() && pid > 0 {
		if err := lxchelper.ThawAfterDump(c, pid); err != nil {
			errs = append(errs, fmt.Errorf("thaw: %w", err))
		}
		// LXC keeps the state it froze in its monitor.
		if err := c.Unfreeze(); err != nil && lxcpath.StatusOf(c) == "FROZEN" {
			errs = append(errs, fmt.Errorf("unfreeze: %w", err))
		}
	}
	if err := network.Reattach(h.Links); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errkind.New(errkind.ErrFailed, "resume "+name+" after its checkpoint", errors.Join(errs...))
	}
	os.Remove(k.HoldPath(name))
	if h.Purpose == "move" {
		// The target may have told the network it had the container.
		k.announce(name)
	}
	return nil
}

// KillHeld ends a held container whose checkpoint lives on (proven, or
// restored on a move's target): its tasks die without running again.
func (k *Keeper) KillHeld(name string) error {
	c, err := k.containers.Open(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if err := lxchelper.KillFrozen(c, lxcpath.ShutdownTimeout); err != nil {
		return errkind.New(errkind.ErrFailed, "stop "+name+" after its checkpoint", err)
	}
	os.Remove(k.HoldPath(name))
	return nil
}

// ReleaseLeftHolds releases the holds of operations that a killed daemon
// left (their checkpoints were not proven), and removes the copies of
// restore rehearsals. A move's hold is its journal's to settle.
func (k *Keeper) ReleaseLeftHolds() {
	lxchelper.RemoveRehearsals(k.containers.Path())
	names, err := k.containers.List()
	if err != nil {
		return
	}
	for _, name := range names {
		if h := k.Held(name); h != nil && h.Purpose != "move" {
			if err := k.Release(name); err != nil {
				k.log.Error("cannot resume a container held by an interrupted operation", "container", name, "err", err)
				continue
			}
			k.log.Warn("resumed a container held by an interrupted operation", "container", name, "operation", h.Purpose)
		}
	}
}
