package ops

import (
	"context"
	"time"

	"ctrfs/images"
	"ctrfs/ops/moves"
	"ctrfs/ops/opctx"
)

// Moves is this host's side of moves between hosts (ops/moves), which
// cluster/ drives.
func (m *Manager) Moves() *moves.Moves { return m.moves }

// moveManager is what ops/moves asks of the Manager (moves.Manager): the
// containers' locks and records, and the operations only it runs.
type moveManager struct{ m *Manager }

func (h moveManager) Run(ctx context.Context, name, what string, fn func(context.Context, *opctx.Op) error) error {
	return h.m.ledger.run(ctx, operation{name: name, what: what, fn: fn})
}

func (h moveManager) Lock(name, what string) (release func(), err error) {
	return h.m.ledger.acquire(name, what)
}

func (h moveManager) Record(name, what string, oc *opctx.Op, d time.Duration, err error) {
	h.m.ledger.finish(operation{name: name, what: what}, oc, d, err)
}

func (h moveManager) PublishEvent(name, what, result string, d time.Duration) {
	h.m.ledger.publish(name, what, result, d)
}

func (h moveManager) Start(ctx context.Context, oc *opctx.Op, name string) error {
	return h.m.start(ctx, oc, name)
}

func (h moveManager) Unfreeze(name string) error        { return h.m.unfreeze(name) }
func (h moveManager) ValidateNewName(name string) error { return h.m.validateNewName(name) }
func (h moveManager) PortableSnapshot(ctx context.Context, name, snap string) (*images.Manifest, error) {
	return h.m.snapshots.Portable(ctx, name, snap)
}
func (h moveManager) SetAsideLeftovers(name string) error { return h.m.renames.setAsideLeftovers(name) }
