package ops

import (
	"context"
	"fmt"

	"ctrfs/ops/snapshots"
)

// Snapshot describes one snapshot, as its `info` file shows it
// (snapshots.Snapshot).
type Snapshot = snapshots.Snapshot

// Snapshots lists the container's snapshots by name, damaged ones too
// (they stay until rmdir).
func (m *Manager) Snapshots(name string) ([]string, error) { return m.stored.Snapshots(name) }

// Snapshot returns one snapshot; ErrNotFound if there is none by that name.
func (m *Manager) Snapshot(name, snap string) (*Snapshot, error) {
	return m.snapshots.Snapshot(name, snap)
}

// SnapshotState is the CRIU images of a stateful snapshot, browsable like
// saved state; ErrNotFound for a stateless one.
func (m *Manager) SnapshotState(name, snap string) (*ImageSet, error) {
	return m.snapshots.SnapshotState(name, snap)
}

// TakeSnapshot is `snapshot SNAP [--stateful]` (and, stateless, mkdir in
// snapshots/).
func (m *Manager) TakeSnapshot(name, snap string, stateful bool) error {
	return m.Run(name, Command{Verb: "snapshot", Arg: snap, Stateful: stateful})
}

// DeleteSnapshot is rmdir of snapshots/SNAP: the manifest goes, and GC frees
// the chunks no other snapshot or saved state uses.
func (m *Manager) DeleteSnapshot(name, snap string) error {
	if err := ValidateName(snap); err != nil {
		return err
	}
	if !m.Exists(name) {
		return newError(ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	return m.ledger.run(m.opCtx(), operation{name: name, what: "delete-snapshot", fn: func(context.Context, *opContext) error {
		return m.snapshots.Delete(name, snap)
	}})
}
