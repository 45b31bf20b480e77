// Package ops carries out operations on this host's LXC containers: create,
// destroy, rename, the ctl commands, and (with images/) checkpoints. It knows
// nothing of FUSE; every error it returns wraps one of the kinds in errors.go
// (ops/errkind's). The Manager's methods are the operations: it takes each
// container's lock and records what each did (`error`, `log`, `info`,
// events) in its ledger (ledger.go). What they use is in packages below it
// that know nothing of the Manager: this host's side of moves between
// hosts (ops/moves, which asks the Manager for locks and records through
// the interface moves.Manager), snapshots (ops/snapshots), saved state,
// its dump, hold, proof and restore (ops/savedstate), what is kept in the
// image store (ops/stored), the containers of the LXC path and their
// helper runs (ops/lxcpath), what an operation reports (ops/opctx), the
// helper process that runs LXC and CRIU (ops/lxchelper), CRIU's lazy pages
// (ops/lazypages), the templates (ops/templates), staging directories
// (ops/staging), rootfs archives (ops/rootfstar), the network
// (ops/network), CRIU's logs (ops/criulog), config files (ops/configfile)
// and the test hooks (ops/testhooks).
package ops

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	lxc "github.com/lxc/go-lxc"

	"ctrfs/images"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/moves"
	"ctrfs/ops/network"
	"ctrfs/ops/opctx"
	"ctrfs/ops/savedstate"
	"ctrfs/ops/snapshots"
	"ctrfs/ops/staging"
	"ctrfs/ops/storage"
	"ctrfs/ops/stored"
)

// Config says where this host keeps its containers and how it runs them.
type Config struct {
	Host     string          // this host's name, as shown in events and hosts/
	LXCPath  string          // the LXC path whose containers ctrfs shows
	StoreDir string          // checkpoint images, logs and other ctrfs state
	Network  network.Network // bridge and subnet of the default template
	// HelperPath is the ctrfs binary, run as `HelperPath lxc-helper …` for
	// LXC calls that leave a monitor process behind (start, restore): the
	// monitor must not be a fork of the daemon (it would inherit its threads'
	// state, its fds and its process group, and die with a Ctrl-C to it).
	HelperPath string
	// RecentLog keeps the daemon's last log lines for bug reports; nil
	// keeps none.
	RecentLog *LogRing
	// TemplateCache is where templates keep what they build once (the
	// debian template's rootfs archive); STORE/templates if empty.
	TemplateCache string
	// DefaultTemplate is the template of `mkdir containers/NAME`;
	// templates.DefaultName if empty.
	DefaultTemplate string
	// ReservedNames are the names of the tree's own entries
	// (fs.ReservedNames), which no container made or arriving here may
	// take.
	ReservedNames []string
	// Storage is `serve --storage`: how new containers' rootfs are kept
	// (ops/storage: auto, dir or btrfs); "" is auto.
	Storage string
	// Context is the daemon's root context, cancelled at shutdown; nil
	// is context.Background(). Operations take theirs from it
	// (Manager.opCtx).
	Context context.Context
}

// Manager carries out operations on the containers of one LXC path. It
// allows one operation per container at a time; operations on different
// containers run in parallel.
type Manager struct {
	cfg        Config
	containers *lxcpath.Containers
	ctx        context.Context // cfg.Context, never nil
	events     *EventBus
	log        *slog.Logger
	images     *images.Store // saved state and stateful snapshots
	staging    *staging.Area
	stored     *stored.Store // what images keeps of the containers
	saved      *savedstate.Keeper
	moves      *moves.Moves
	snapshots  *snapshots.Snapshots

	// createMu makes creates take addresses one at a time: an address
	// counts as taken once the new config is written.
	createMu sync.Mutex
	claims   *addressClaims // addresses.go

	createdTimes createdCache // created.go
	renames      *renames     // rename.go
	files        *Files       // files.go

	ledger *ledger // ledger.go: locks, progress and records
}

// KeyValue is one `key: value` line of an `info` file (opctx.KeyValue).
type KeyValue = opctx.KeyValue

func NewManager(cfg Config, events *EventBus, log *slog.Logger) (*Manager, error) {
	if err := prepareRoots(cfg); err != nil {
		return nil, err
	}
	// Root's id range for unprivileged containers, added if missing as
	// LXD does at setup; without one only unprivileged creates fail.
	subIDFiles().EnsureRoot(log)
	// Scratch files of a daemon that was killed are of no use now.
	os.RemoveAll(scratchDir(cfg))
	for _, d := range []string{filepath.Join(cfg.StoreDir, "logs"), scratchDir(cfg)} {
		if err := prepareStoreDir(d); err != nil {
			return nil, err
		}
	}
	if err := cfg.Network.EnsureBridge(); err != nil {
		return nil, err
	}
	backend, err := storage.Choose(cfg.LXCPath, cfg.Storage)
	if err != nil {
		return nil, err
	}
	store, err := images.Open(filepath.Join(cfg.StoreDir, "images"))
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", notOursFix(err))
	}
	ctx := cfg.Context
	if ctx == nil {
		ctx = context.Background()
	}
	m := newManager(cfg, ctx, events, log, store)
	m.containers.UseStorage(backend)
	// Before anything reads the store: recovery may find damaged manifests.
	store.OnDamaged(m.manifestDamaged)
	killLeftovers(m.staging, m.containers, m.log) // before recovery reads what they worked on
	m.renames.recover()
	// Recovery runs before the tree is mounted, to its end: a daemon
	// told to stop meanwhile stops once it has mounted (cmd/ctrfs).
	m.saved.RecoverStaging(m.opCtx())
	m.saved.ReleaseLeftHolds() // before their saved state is found stale
	m.saved.DropStaleState()
	m.snapshots.RecoverRootfsSwaps()
	m.snapshots.RemoveOrphanSubvolumes()
	removeUnfinishedCreates(cfg.LXCPath, log)
	m.moves.RemoveMovedAwayLeft()
	m.moves.RemoveMoveSnapshotsLeft()
	m.stored.CollectGarbage() // chunks of imports that a crash cut short
	return m, nil
}

// newManager is a Manager of cfg with nothing recovered yet: NewManager's,
// and the unit tests' (whose store may be nil).
func newManager(cfg Config, ctx context.Context, events *EventBus, log *slog.Logger, store *images.Store) *Manager {
	m := &Manager{cfg: cfg, ctx: ctx, events: events, log: log, images: store, stored: stored.New(store, ctx, log), staging: staging.New(cfg.StoreDir, log),
		containers: lxcpath.New(cfg.LXCPath, cfg.HelperPath, filepath.Join(cfg.StoreDir, "logs"), scratchDir(cfg))}
	m.claims = &addressClaims{host: cfg.Host, lxcPath: cfg.LXCPath, network: cfg.Network}
	m.ledger = newLedger(cfg.Host, m.containers, events, log)
	m.files = &Files{lxcPath: cfg.LXCPath, containers: m.containers, ledger: m.ledger, created: &m.createdTimes, opCtx: m.opCtx}
	m.renames = &renames{lxcPath: cfg.LXCPath, journalDir: filepath.Join(cfg.StoreDir, "renames"), images: store, stored: m.stored, ledger: m.ledger, log: log}
	m.saved = savedstate.New(m.containers, m.stored, m.staging, log, func(name string) { m.moves.Announce(name) })
	m.moves = moves.New(moveManager{m}, moves.Config{Host: cfg.Host, Network: cfg.Network, HelperPath: cfg.HelperPath, ScratchDir: scratchDir(cfg)},
		m.containers, m.stored, m.saved, m.staging, ctx, log)
	m.snapshots = snapshots.New(m.containers, m.stored, m.saved, m.staging, scratchDir(cfg), log, m.start)
	return m
}

// opCtx is the context of an operation started here. It carries the
// root context's values but not its cancellation: an operation under way
// when the daemon is told to stop runs to its end first (ctrfs(8),
// SIGNALS), since one cut short at shutdown would leave a container half
// dumped or half restored for the next daemon to mend.
func (m *Manager) opCtx() context.Context { return context.WithoutCancel(m.ctx) }

// removeUnfinishedCreates removes the ".NAME.creating" directories that a
// killed daemon left: a create, or a container arriving from another host
// (whose rootfs is unpacked there during the precopy), that it did not
// finish. No create is under way yet.
func removeUnfinishedCreates(lxcPath string, log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(lxcPath, ".*.creating"))
	for _, dir := range dirs {
		if err := storage.RemoveTree(dir); err != nil { // received subvolumes too
			log.Error("cannot remove an unfinished container", "dir", dir, "err", err)
		}
	}
}

// Close releases what the manager holds outside the store: its staging
// directory on /dev/shm, which is removed only if empty (a dump left there
// is recovered at the next start).
func (m *Manager) Close() { m.staging.Close() }

// scratchDir holds the daemon's temporary files (helpers' output, tar's
// incremental state): under the store, so that what a killed daemon left
// is removed when it starts again.
func scratchDir(cfg Config) string { return filepath.Join(cfg.StoreDir, "tmp") }

func (m *Manager) Host() string      { return m.cfg.Host }
func (m *Manager) Events() *EventBus { return m.events }

// List returns the containers of the LXC path, made by ctrfs or not.
func (m *Manager) List() ([]string, error) { return m.containers.List() }

// Exists says whether the container is defined.
func (m *Manager) Exists(name string) bool { return m.containers.Exists(name) }

// Status is RUNNING, STOPPED or FROZEN (lxcpath.Containers.Status).
func (m *Manager) Status(name string) (string, error) { return m.containers.Status(name) }

// MemoryUsage is the memory a container uses (0 if it does not exist).
func (m *Manager) MemoryUsage(name string) (int64, error) { return m.containers.MemoryUsage(name) }

// HasState says whether the container has saved state, sound or not
// (stored.Store.HasState).
func (m *Manager) HasState(name string) bool { return m.stored.HasState(name) }

// SavedState returns the container's saved state; ErrNotFound if it has
// none.
func (m *Manager) SavedState(name string) (*ImageSet, error) { return m.stored.SavedState(name) }

// GCStats are how many garbage collection passes have finished and how
// long the last one took.
func (m *Manager) GCStats() (runs int64, last time.Duration) { return m.stored.GCStats() }

// StoreUsage is what the image store holds, for metrics: kept from the
// last GC pass or scrape while the store has not changed.
func (m *Manager) StoreUsage() (images.Usage, error) { return m.images.Usage() }

// ImageSet is one stored set of CRIU images (stored.ImageSet), as fs/
// browses it.
type ImageSet = stored.ImageSet

// ImageFile is one CRIU image file of an ImageSet.
type ImageFile = stored.ImageFile

// CheckIdle fails with ErrBusy, recorded like a refused command, while an
// operation on the container is under way. fs/ asks it when ctl is opened
// for writing: the kernel serialises `>`'s truncation behind the write
// under way, so a second command would otherwise wait for the first
// instead of failing.
func (m *Manager) CheckIdle(name string) error { return m.ledger.checkIdle(name) }

// LastError is the `error` file: the last failure's message, or empty.
func (m *Manager) LastError(name string) string {
	r, _ := m.ledger.get(name)
	return r.lastErr
}

// Log is the `log` file: the LXC/CRIU log of the last operation that had one.
func (m *Manager) Log(name string) []byte {
	r, _ := m.ledger.get(name)
	return r.log
}

// RecordFailure reports a command that failed before it could run (a line
// that does not parse), so that `error` and `events` show it like any other.
func (m *Manager) RecordFailure(name, line string, err error) {
	// Only a known verb names the event: whatever else was written stays
	// in `error`, not in every reader's events or in metrics' labels.
	what := "unknown-command"
	if f := strings.Fields(line); len(f) > 0 && KnownVerb(f[0]) {
		what = f[0]
	}
	m.ledger.finish(operation{name: name, what: what}, &opContext{}, 0, err)
}

// Storage is how this host keeps new containers' rootfs (ops/storage).
func (m *Manager) Storage() storage.Kind { return m.containers.Storage().Kind() }

// LXCVersion is the version of liblxc.
func (m *Manager) LXCVersion() string { return LXCVersion() }

// LXCVersion is the version of liblxc, for `ctrfs version` too.
func LXCVersion() string { return lxc.Version() }
