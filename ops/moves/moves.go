// Package moves is this host's side of moving containers between hosts,
// which cluster/ drives (it speaks to the other host): the container on
// its way out (Outgoing: its rootfs packed, the precopy and pre-dump
// rounds, the final checkpoint, the post-copy's lazy dump), the container
// arriving (Incoming: its rootfs and state unpacked ahead, installed,
// restored frozen or lazily, committed or discarded), the copy a move
// leaves behind (movedaway.go) and the settling of a move that a crash
// cut short. It uses the containers (ops/lxcpath), the store
// (ops/stored) and saved state (ops/savedstate) directly; what only
// ops.Manager has (the containers' locks and records, starting and
// unfreezing one, the names it may take) it asks through Manager. It
// knows nothing of the other host, of the wire or of FUSE.
package moves

import (
	"context"
	"log/slog"
	"time"

	"ctrfs/images"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/network"
	"ctrfs/ops/opctx"
	"ctrfs/ops/savedstate"
	"ctrfs/ops/staging"
	"ctrfs/ops/stored"
)

// Manager is what moves need of ops.Manager, which alone has it.
type Manager interface {
	// Run runs fn as operation what under name's lock, and records it
	// like any other (`error`, `log`, `info`, an event, a log line).
	Run(ctx context.Context, name, what string, fn func(context.Context, *opctx.Op) error) error
	// Lock takes name's lock outside an operation; errkind.ErrBusy names the
	// operation under way.
	Lock(name, what string) (release func(), err error)
	// Record records an operation that ran outside Run (a receive) as
	// Run would.
	Record(name, what string, oc *opctx.Op, d time.Duration, err error)
	// PublishEvent adds a line to `events` about a container.
	PublishEvent(name, what, result string, d time.Duration)
	// Start starts a stopped container, from its saved state if it has
	// some; Unfreeze lets a frozen one run. The caller holds the lock.
	Start(ctx context.Context, oc *opctx.Op, name string) error
	Unfreeze(name string) error
	// ValidateNewName checks the name of a container about to be made
	// here; SetAsideLeftovers moves what the store keeps under a name
	// with no container out of the way (the caller holds its lock).
	ValidateNewName(name string) error
	SetAsideLeftovers(name string) error
	// PortableSnapshot is a snapshot's manifest with its rootfs as an
	// archive, which any host can restore (one kept in a btrfs
	// subvolume is archived into it first).
	PortableSnapshot(ctx context.Context, name, snap string) (*images.Manifest, error)
}

// Config is what moves need of the host's configuration.
type Config struct {
	Host       string          // this host's name, for errors
	Network    network.Network // the bridge an arriving container needs
	HelperPath string          // the ctrfs binary, for CRIU's lazy-pages watcher
	ScratchDir string          // tar's incremental state of a move's packs
}

// Moves carries out this host's side of moves on the containers of one
// LXC path.
type Moves struct {
	mgr        Manager
	cfg        Config
	lxcPath    string
	containers *lxcpath.Containers
	stored     *stored.Store
	images     *images.Store // stored's
	saved      *savedstate.Keeper
	staging    *staging.Area
	ctx        context.Context // the daemon's root context, never nil
	log        *slog.Logger
}

// New is the moves of containers, their saved state kept by saved in st;
// ctx is the daemon's root context, whose values (not its cancellation)
// background work takes.
func New(mgr Manager, cfg Config, containers *lxcpath.Containers, st *stored.Store, saved *savedstate.Keeper, area *staging.Area, ctx context.Context, log *slog.Logger) *Moves {
	return &Moves{mgr: mgr, cfg: cfg, lxcPath: containers.Path(), containers: containers, stored: st, images: st.Images(),
		saved: saved, staging: area, ctx: ctx, log: log}
}

// Announce has a running container tell the network where it is now (a
// gratuitous ARP), in the background: best effort, and the container
// already runs.
func (m *Moves) Announce(name string) {
	ctx := context.WithoutCancel(m.ctx)
	go func() {
		if err := m.containers.RunHelper(ctx, &opctx.Op{}, lxchelper.Announce, name); err != nil {
			m.log.Debug("announce failed", "container", name, "err", err)
		}
	}()
}

// PublishEvent adds a line to `events` about a container, besides the one
// every operation writes.
func (m *Moves) PublishEvent(name, what, result string, d time.Duration) {
	m.mgr.PublishEvent(name, what, result, d)
}

// Lock takes the container's lock for work outside an operation (settling
// a migration that a crash interrupted).
func (m *Moves) Lock(name, what string) (release func(), err error) {
	return m.mgr.Lock(name, what)
}

// RecordReceived reports a container that arrived from another host: its
// `info` shows the move (last-op receive, with the source's figures) and
// `events` gets a line.
func (m *Moves) RecordReceived(name string, d time.Duration, report []opctx.KeyValue) {
	m.mgr.Record(name, "receive", &opctx.Op{Extra: report}, d, nil)
}

// RecordReceiveFailed reports a container that could not be installed or
// restored here on its way from another host: its `error`, `log` (the
// restore's) and bug report keep what happened after it is gone, and
// `events` gets a `receive failed` line.
func (m *Moves) RecordReceiveFailed(name string, d time.Duration, log []byte, err error) {
	m.mgr.Record(name, "receive", &opctx.Op{Log: log, HasLog: log != nil}, d, err)
}
