package moves

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"ctrfs/images"
	"ctrfs/images/critview"
	"ctrfs/ops/configfile"
	"ctrfs/ops/errkind"
	"ctrfs/ops/lazypages"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/opctx"
	"ctrfs/ops/rootfstar"
	"ctrfs/ops/savedstate"
	"ctrfs/ops/storage"
	"ctrfs/ops/stored"
	"ctrfs/ops/testhooks"
)

// Migration is driven by cluster/, which speaks to the other host; these
// are the steps on this host's side. The outgoing side works under the
// container's lock as one operation ("move"); the incoming side holds the
// lock of the name it receives until the migration is committed or undone.

// Outgoing is a container leaving this host.
type Outgoing struct {
	m    *Moves
	name string
	oc   *opctx.Op

	// After the first PackRootfs: tar's listed-incremental state, and the
	// whole-tree archive, so that later packs archive only the changes.
	tarState string
	base     images.File
	// targetStreams: the target receives btrfs send streams; streaming:
	// this move sends them (rootfsstream.go), decided at the first pack.
	targetStreams, streaming, packed bool

	// PrecopyFrozen adds up how long the precopy dumps kept the processes
	// frozen (CRIU's own figure): short stalls, but the service does not
	// answer during them.
	PrecopyFrozen time.Duration

	// The last precopy dump, kept (files and held manifest) until Forget
	// as the reference for the final one.
	precopyDir string
	precopy    *images.Manifest

	// The pre-dump rounds (predump.go), kept until Forget: CRIU reads
	// the whole chain of parents at every later dump.
	preDumps []preDumpRound

	// RoundPages is the pages the last precopy dump wrote (CRIU's
	// stats-dump), for the move's report.
	RoundPages int64
}

// Move runs fn as operation `what` under the container's lock; the
// operation's record, event and `error` are the migration's. fn runs with
// ctx.
func (m *Moves) Move(ctx context.Context, name, what string, fn func(context.Context, *Outgoing) error) error {
	if !m.containers.Exists(name) {
		return errkind.New(errkind.ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	return m.mgr.Run(ctx, name, what, func(ctx context.Context, oc *opctx.Op) error {
		return fn(ctx, &Outgoing{m: m, name: name, oc: oc})
	})
}

func (o *Outgoing) Name() string         { return o.name }
func (o *Outgoing) Store() *images.Store { return o.m.images }
func (o *Outgoing) Report(key, val string) {
	o.oc.Extra = append(o.oc.Extra, opctx.KeyValue{Key: key, Value: val})
}

// Reported is the last value reported under key (by the move, or by the
// checkpoint it made), or "".
func (o *Outgoing) Reported(key string) string {
	for i := len(o.oc.Extra) - 1; i >= 0; i-- {
		if o.oc.Extra[i].Key == key {
			return o.oc.Extra[i].Value
		}
	}
	return ""
}
func (o *Outgoing) Status() (string, error) {
	return o.m.containers.Status(o.name)
}

// Phase starts a phase of the move: `info` shows it as the phase, with
// the steps of this host under it.
func (o *Outgoing) Phase(phase string) { o.oc.Progress.SetStage(phase) }

// Sending starts a transfer of expected bytes; Sent counts what went.
func (o *Outgoing) Sending(expected int64) {
	o.oc.Progress.SetStep("send", expected)
}
func (o *Outgoing) Sent(n int64) { o.oc.Progress.Add(n) }

// QuickCheck is savedstate.Keeper.QuickCheck for a move, before anything is sent.
func (o *Outgoing) QuickCheck() error { return o.m.saved.QuickCheck(o.name, "move") }

// PackRootfs archives the rootfs and config into the store. The first call
// archives the whole tree; later ones only what changed since, so that the
// pack made while the container is down takes time in proportion to the
// changes, not to the tree.
func (o *Outgoing) PackRootfs(ctx context.Context) (*images.Manifest, error) {
	c, err := o.m.containers.Open(o.name)
	if err != nil {
		return nil, err
	}
	rootfs, err := lxcpath.RootfsOf(c)
	c.Release()
	if err != nil {
		return nil, err
	}
	dir, err := o.m.staging.Dir(o.name, "pack", 64<<20)
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "prepare move of "+o.name, err)
	}
	defer os.RemoveAll(dir)
	o.oc.Progress.Sample("pack", 0, func() int64 { return opctx.DirSize(dir) })
	first := !o.packed
	if first {
		o.streaming = o.targetStreams && storage.KindOf(rootfs) == storage.Btrfs
	}
	if o.streaming {
		err = o.packStream(rootfs, dir, first)
	} else if first {
		stateDir, derr := os.MkdirTemp(o.m.cfg.ScratchDir, "tar-state-")
		if derr != nil {
			return nil, errkind.New(errkind.ErrFailed, "prepare move of "+o.name, derr)
		}
		o.tarState = filepath.Join(stateDir, "level0")
		err = rootfstar.ArchiveSince(rootfs, filepath.Join(dir, stored.SnapshotRootfs), o.tarState)
	} else {
		// Every later pack has the changes since the first.
		err = rootfstar.ArchiveChanges(rootfs, filepath.Join(dir, stored.RootfsChanges), o.tarState)
	}
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "archive rootfs of "+o.name, err)
	}
	if err := configfile.Copy(o.m.containers.ConfigPath(o.name), filepath.Join(dir, stored.SnapshotConfig), 0o600); err != nil {
		return nil, errkind.New(errkind.ErrFailed, "copy config of "+o.name, err)
	}
	if err := configfile.Copy(lxchelper.CriuOptionsPath(o.m.lxcPath, o.name), filepath.Join(dir, lxchelper.CriuOptionsFile), 0o600); err != nil && !os.IsNotExist(err) {
		return nil, errkind.New(errkind.ErrFailed, "copy CRIU options of "+o.name, err)
	}
	mf, _, err := o.m.images.ImportDir(ctx, dir)
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "store rootfs of "+o.name, err)
	}
	if first {
		o.base, _ = mf.File(baseName(mf))
		o.packed = true
	} else {
		// The saved manifest of the first pack holds the base's chunks
		// until this one replaces it.
		mf.Files = append([]images.File{o.base}, mf.Files...)
	}
	if err := o.m.images.Save(stored.MovingKey(o.name), mf); err != nil {
		o.m.images.Release(mf)
		return nil, errkind.New(errkind.ErrFailed, "store rootfs of "+o.name, err)
	}
	return mf, nil
}

// Items are the saved state and snapshots that travel with the container,
// by their names relative to it: "state" and "snapshots/SNAP", each
// snapshot with its rootfs as an archive.
func (o *Outgoing) Items(ctx context.Context) (map[string]*images.Manifest, error) {
	out := map[string]*images.Manifest{}
	snaps, err := o.m.stored.Snapshots(o.name)
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		if err := lxcpath.ValidateName(s); err != nil {
			return nil, err
		}
		mf, err := o.m.mgr.PortableSnapshot(ctx, o.name, s)
		if err != nil {
			return nil, err
		}
		out["snapshots/"+s] = mf
	}
	mf, err := o.m.images.Load(stored.StateKey(o.name))
	if err == nil {
		out["state"] = mf
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, errkind.New(errkind.ErrFailed, "load saved state of "+o.name, err)
	}
	return out, nil
}

// PrecopyMemory dumps the running container's processes without stopping
// it and puts the images in the store, so that their chunks can be sent
// ahead of the final dump: chunks that are still the same then need not be
// sent while the container is down. CRIU's own pre-dump would send only
// dirtied pages, but it needs the kernel's soft-dirty tracking, which is
// not everywhere; content addressing finds what changed without it. The
// dump stays on disk until Forget, or the next precopy, as the reference
// of the final dump (see images.Reference).
func (o *Outgoing) PrecopyMemory(ctx context.Context) (*images.Manifest, error) {
	dir, mf, err := o.precopyDump(ctx, "precopy", lxchelper.CheckpointRunning, o.reference())
	if err != nil {
		return nil, err
	}
	o.dropPrecopy()
	o.precopyDir, o.precopy = dir, mf
	return mf, nil
}

// precopyDump dumps the running container with verb (args after the
// images directory) into a new staging directory for purpose, the images
// going into the store as CRIU writes them (ref as for dumpStored); CRIU's
// frozen time adds to PrecopyFrozen, and RoundPages is what it wrote. The
// manifest is held: Release it.
func (o *Outgoing) precopyDump(ctx context.Context, purpose string, verb lxchelper.Verb, ref *images.Reference, args ...string) (string, *images.Manifest, error) {
	dir, err := o.m.staging.Dir(o.name, purpose, o.m.containers.ImagesSizeHint(o.name))
	if err != nil {
		return "", nil, errkind.New(errkind.ErrFailed, "prepare precopy of "+o.name, err)
	}
	oc := &opctx.Op{Progress: o.oc.Progress}
	d, err := o.m.saved.DumpStored(ctx, oc, ref, verb, o.name, dir, args...)
	if err == nil && d.StoreErr != nil {
		err = errkind.New(errkind.ErrFailed, "store precopy of "+o.name, d.StoreErr)
	} else if err != nil {
		err = o.m.saved.DumpFailed(o.name, err, oc.Log)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	o.RoundPages = 0
	if st, err := critview.Stats(os.DirFS(dir), "stats-dump"); err == nil && st.GetDump() != nil {
		o.PrecopyFrozen += time.Duration(st.GetDump().GetFrozenTime()) * time.Microsecond
		o.RoundPages = int64(st.GetDump().GetPagesWritten())
	}
	return dir, d.Manifest, nil
}

// reference is the last precopy dump, or nil.
func (o *Outgoing) reference() *images.Reference {
	if o.precopy == nil {
		return nil
	}
	return images.NewReference(o.precopyDir, o.precopy)
}

func (o *Outgoing) dropPrecopy() {
	if o.precopy != nil {
		o.m.images.Release(o.precopy)
		os.RemoveAll(o.precopyDir)
		o.precopy, o.precopyDir = nil, ""
	}
}

// Checkpoint dumps the container into its saved state, which travels
// like any other, and holds it (savedstate/hold.go): from here it is down, its
// processes frozen and off the wire here until the target runs the copy
// (Remove kills them) or the move fails (Resume lets them run on).
func (o *Outgoing) Checkpoint(ctx context.Context) error {
	testhooks.PausePoint("move-freeze")
	var parent *savedstate.Parent
	if p := o.lastPreDump(); p != nil {
		parent = &savedstate.Parent{Dir: p.dir, Chain: p.chain}
	}
	return o.m.saved.CheckpointHeld(ctx, o.oc, o.name, o.reference(), parent, "move")
}

// Resume brings the container back here after a migration that failed
// after Checkpoint: see resumeHere.
func (o *Outgoing) Resume(ctx context.Context) error {
	return o.m.resumeHere(ctx, o.name)
}

// resumeHere brings back a container whose move failed after its
// checkpoint: its held processes run on, and the checkpoint goes. Only a
// container whose processes were lost meanwhile (its host restarted) is
// restored from the checkpoint.
func (m *Moves) resumeHere(ctx context.Context, name string) error {
	if m.saved.Held(name) != nil {
		if st, err := m.containers.Status(name); err == nil && st != "STOPPED" {
			if err := m.saved.Release(name); err != nil {
				return err
			}
			return m.stored.DropState(name)
		}
		os.Remove(m.saved.HoldPath(name))
	}
	if !m.stored.HasState(name) {
		return nil
	}
	roc := &opctx.Op{}
	if err := m.saved.StartFromState(ctx, roc, name); err != nil {
		return err
	}
	m.Announce(name)
	return nil
}

// Forget drops what was made for the move: the last precopy dump and the
// rootfs archive.
func (o *Outgoing) Forget() {
	o.dropPrecopy()
	o.DropPreDumps()
	if o.tarState != "" {
		os.RemoveAll(filepath.Dir(o.tarState))
	}
	if o.streaming {
		o.dropStreamSnapshots()
	}
	if err := o.m.images.Delete(stored.MovingKey(o.name)); err == nil {
		o.m.stored.CollectGarbage()
	}
}

// Remove deletes the container here once the other host owns it: at
// once as far as anyone sees, its files after (RemoveMovedAway).
func (o *Outgoing) Remove() error { return o.m.RemoveMovedAway(o.name) }

// Incoming is a container arriving on this host. It holds the name's lock
// until Close.
type Incoming struct {
	m       *Moves
	name    string
	release func()
	chunks  *images.Incoming
	keys    []string // manifests saved so far, removed by Discard
	created bool
	frozen  bool               // restored, and frozen until Commit
	lazy    *lazypages.Watcher // restored lazily (StartLazy), until Commit
	// The rootfs archive that Prepare unpacked where Install creates the
	// container, or none.
	prepared *images.File
	// The memory images of a precopy dump that PrepareState unpacked into
	// stateDir, or none; Start brings them up to date with the final dump.
	stateDir   string
	stateFiles []images.File
	// What Start and Commit report (the update, the wait for the pages).
	Phases []opctx.KeyValue
}

// Receive reserves name for a container arriving from another host.
func (m *Moves) Receive(name string) (*Incoming, error) {
	if err := m.mgr.ValidateNewName(name); err != nil {
		return nil, err
	}
	release, err := m.mgr.Lock(name, "receive")
	if err != nil {
		return nil, err
	}
	if m.containers.Exists(name) {
		release()
		return nil, errkind.New(errkind.ErrExists, fmt.Sprintf("%s has a container %q", m.cfg.Host, name), nil)
	}
	if err := m.mgr.SetAsideLeftovers(name); err != nil {
		release()
		return nil, err
	}
	return &Incoming{m: m, name: name, release: release, chunks: m.images.Incoming()}, nil
}

// Chunks is where the container's chunks arrive.
func (in *Incoming) Chunks() *images.Incoming { return in.chunks }

// creatingDir is where the container is made until Install renames it into
// place (LXC and List skip the name).
func (in *Incoming) creatingDir() string {
	return filepath.Join(in.m.lxcPath, "."+in.name+".creating")
}

// Prepare unpacks the whole-tree rootfs archive of rootfs (the first
// Outgoing.PackRootfs, whose chunks have arrived) where Install creates the
// container, while the container still runs on the source: Install then
// applies only the changes made since, and the container is down for less.
// Discard, a failed Install and a restarted daemon remove what it unpacked.
func (in *Incoming) Prepare(ctx context.Context, rootfs *images.Manifest) error {
	in.prepared = nil
	base := baseName(rootfs)
	f, ok := rootfs.File(base)
	if !ok {
		return errkind.New(errkind.ErrInvalid, "a migration's precopy without a rootfs archive", nil)
	}
	dir, err := in.m.staging.Dir(in.name, "receive", f.Size)
	if err != nil {
		return errkind.New(errkind.ErrFailed, "prepare "+in.name, err)
	}
	defer os.RemoveAll(dir)
	only := rootfs.Only(func(g images.File) bool { return g.Name == base })
	if err := in.m.images.Export(ctx, only, dir); err != nil {
		return errkind.New(errkind.ErrFailed, "unpack rootfs of "+in.name, err)
	}
	if err := in.unpackBase(rootfs, dir); err != nil {
		storage.RemoveTree(in.creatingDir())
		return errkind.New(errkind.ErrFailed, "unpack rootfs of "+in.name, err)
	}
	in.prepared = &f
	return nil
}

// PrepareState unpacks a precopy dump of the container's processes (its
// chunks have arrived) into a staging directory while the container still
// runs on the source: Start then writes there only what the final dump
// changed, and restores from there lazily. Each call replaces the last.
func (in *Incoming) PrepareState(ctx context.Context, state *images.Manifest) error {
	in.dropStateDir()
	dir, err := in.m.staging.Dir(in.name, "state", state.Size())
	if err != nil {
		return errkind.New(errkind.ErrFailed, "prepare "+in.name, err)
	}
	if err := in.m.images.Export(ctx, state, dir); err != nil {
		os.RemoveAll(dir)
		return errkind.New(errkind.ErrFailed, "unpack the precopy of "+in.name, err)
	}
	in.stateDir, in.stateFiles = dir, state.Files
	return nil
}

func (in *Incoming) dropStateDir() {
	if in.stateDir != "" {
		os.RemoveAll(in.stateDir)
		in.stateDir, in.stateFiles = "", nil
	}
}

// Install saves the items (see Outgoing.Items) and creates the container
// from the rootfs archive and config of rootfs.
func (in *Incoming) Install(ctx context.Context, rootfs *images.Manifest, items map[string]*images.Manifest) error {
	if err := in.chunks.Sync(); err != nil {
		return errkind.New(errkind.ErrFailed, "store received chunks", err)
	}
	for item, mf := range items {
		key, err := ItemKey(in.name, item)
		if err != nil {
			return err
		}
		if err := in.m.images.Save(key, mf); err != nil {
			return errkind.New(errkind.ErrFailed, "save "+key, err)
		}
		in.keys = append(in.keys, key)
	}
	// With the archive Prepare unpacked, only the rest comes out of the
	// store: the changes since, the config and the CRIU options.
	base, _ := rootfs.File(baseName(rootfs))
	prepared := in.prepared != nil && sameFile(*in.prepared, base)
	in.prepared = nil
	export := rootfs
	if prepared {
		export = rootfs.Only(func(f images.File) bool { return f.Name != base.Name })
	}
	dir, err := in.m.staging.Dir(in.name, "receive", export.Size())
	if err != nil {
		return errkind.New(errkind.ErrFailed, "prepare "+in.name, err)
	}
	defer os.RemoveAll(dir)
	if err := in.m.images.Export(ctx, export, dir); err != nil {
		return errkind.New(errkind.ErrFailed, "unpack rootfs of "+in.name, err)
	}
	final := filepath.Join(in.m.lxcPath, in.name)
	tmp := in.creatingDir()
	if !prepared {
		err = in.unpackBase(rootfs, dir)
	}
	if err == nil {
		err = in.unpackChanges(rootfs, dir)
	}
	if err != nil {
		storage.RemoveTree(tmp)
		return errkind.New(errkind.ErrFailed, "unpack rootfs of "+in.name, err)
	}
	config, err := os.ReadFile(filepath.Join(dir, stored.SnapshotConfig))
	if err == nil {
		config = configfile.SetLine(config, "lxc.rootfs.path", "dir:"+filepath.Join(final, "rootfs"))
		err = os.WriteFile(filepath.Join(tmp, "config"), config, 0o600)
	}
	if err == nil {
		err = configfile.Copy(filepath.Join(dir, lxchelper.CriuOptionsFile), filepath.Join(tmp, lxchelper.CriuOptionsFile), 0o600)
		if os.IsNotExist(err) {
			err = nil
		}
	}
	if err == nil {
		err = closeUnprivilegedDir(tmp, config)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		storage.RemoveTree(tmp)
		return errkind.New(errkind.ErrFailed, "create "+in.name, err)
	}
	in.created = true
	return nil
}

// unpackBase makes the container's rootfs anew in its creating
// directory from the whole-rootfs file of rootfs, exported into dir: a
// tar archive unpacked into a rootfs of this host's backend, whatever the
// source's, or a btrfs send stream received (rootfsstream.go).
func (in *Incoming) unpackBase(rootfs *images.Manifest, dir string) error {
	tmp := in.creatingDir()
	if isStream(rootfs) {
		return receiveBase(dir, tmp)
	}
	if err := storage.RemoveTree(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := in.m.containers.Storage().MakeRootfs(filepath.Join(tmp, "rootfs")); err != nil {
		return err
	}
	return rootfstar.Apply(filepath.Join(tmp, "rootfs"), true, filepath.Join(dir, stored.SnapshotRootfs))
}

// unpackChanges applies what changed since the base, exported into dir,
// to what unpackBase made: the freeze's archive or stream, if rootfs has
// one.
func (in *Incoming) unpackChanges(rootfs *images.Manifest, dir string) error {
	if isStream(rootfs) {
		return installStream(rootfs, dir, in.creatingDir())
	}
	if _, ok := rootfs.File(stored.RootfsChanges); !ok {
		return nil
	}
	return rootfstar.Apply(filepath.Join(in.creatingDir(), "rootfs"), true, filepath.Join(dir, stored.RootfsChanges))
}

// ItemKey is the key in the store of a container's item (see
// Outgoing.Items): "state" or "snapshots/SNAP".
func ItemKey(name, item string) (string, error) {
	if item == "state" {
		return stored.StateKey(name), nil
	}
	if snap, ok := strings.CutPrefix(item, "snapshots/"); ok && lxcpath.ValidateName(snap) == nil {
		return stored.SnapshotKey(name, snap), nil
	}
	return "", errkind.New(errkind.ErrInvalid, fmt.Sprintf("unknown item %q in a migration", item), nil)
}

// Start restores the container from the saved state it arrived with.
//
// The container is then frozen until Commit: until the source commits, its
// copy is the container, and if this daemon dies before the commit the copy
// here must not run beside it (it is removed when the daemon starts).
// Freezing costs the move milliseconds; the source commits at once.
//
// With the precopy unpacked (PrepareState), only what the final dump
// changed is written there, and the restore is lazy: CRIU's lazy-pages
// daemon, started before the restore, copies the memory in from there
// while the container waits frozen, and Start returns once every page is
// in (if not, the container is killed and Start fails: the source keeps
// its copy). Otherwise CRIU reads the images from the store.
func (in *Incoming) Start(ctx context.Context) (restoreLog []byte, err error) {
	oc := &opctx.Op{}
	if err := in.m.cfg.Network.EnsureBridge(); err != nil {
		return nil, errkind.New(errkind.ErrFailed, "start "+in.name, err)
	}
	if in.stateDir != "" {
		if err := in.startLazily(ctx, oc); err != nil {
			return oc.Log, err
		}
		in.frozen = true
		return oc.Log, nil
	}
	if err = in.m.saved.RestoreState(ctx, oc, in.name, lxchelper.RestoreFrozen); err != nil {
		return oc.Log, err
	}
	in.frozen = true
	return oc.Log, nil
}

// startLazily is Start from the directory PrepareState unpacked.
func (in *Incoming) startLazily(ctx context.Context, oc *opctx.Op) error {
	set, err := in.m.stored.SavedState(in.name)
	if err != nil {
		return err
	}
	t0 := time.Now()
	written, err := in.m.images.Update(ctx, in.stateDir, in.stateFiles, set.Manifest())
	in.stateFiles = nil // part old, part new if it failed
	if err != nil {
		in.dropStateDir()
		if errors.Is(err, images.ErrCorrupt) {
			return errkind.New(errkind.ErrFailed, fmt.Sprintf("saved state of %s is damaged: %v", in.name, err), nil)
		}
		return errkind.New(errkind.ErrFailed, "unpack the saved state of "+in.name, err)
	}
	in.Phases = append(in.Phases, opctx.Seconds("target-update-seconds", time.Since(t0)),
		opctx.KeyValue{Key: "target-update-bytes", Value: fmt.Sprint(written)})
	if err := in.letRootRead(in.stateDir); err != nil {
		in.dropStateDir()
		return err
	}
	testhooks.PausePoint("target-restore", in.stateDir)
	t1 := time.Now()
	lazy, _, err := in.m.saved.CriuRestore(ctx, oc, lxchelper.RestoreFrozen, in.name, in.stateDir, in.localRestoreFrom())
	if err != nil {
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("restore of %s failed %v", in.name, err), nil)
	}
	in.Phases = append(in.Phases, opctx.Seconds("target-criu-restore-seconds", time.Since(t1)))
	if lazy != nil {
		t2 := time.Now()
		err := in.m.saved.AwaitLazyPages(ctx, oc, in.name, lazy)
		in.Phases = append(in.Phases, opctx.Seconds("target-lazy-wait-seconds", time.Since(t2)))
		if err != nil {
			return err
		}
	}
	in.dropStateDir()
	return in.m.stored.DropState(in.name)
}

// Commit makes the container this host's: a frozen one runs, a lazily
// restored one, whole by now, is kept by its watcher.
func (in *Incoming) Commit() error {
	if in.lazy != nil {
		if err := in.commitLazy(); err != nil {
			return err
		}
		in.m.Announce(in.name)
		return nil
	}
	if !in.frozen {
		return nil
	}
	in.frozen = false
	if err := in.m.mgr.Unfreeze(in.name); err != nil {
		return err
	}
	in.m.Announce(in.name)
	return nil
}

// Discard removes whatever arrived: the container (stopped first) and the
// manifests saved for it.
func (in *Incoming) Discard() error {
	in.dropStateDir()
	var firstErr error
	in.discardLazy()
	if in.created {
		if err := in.m.Remove(in.name); err != nil {
			firstErr = err
		}
	} else if err := storage.RemoveTree(in.creatingDir()); err != nil {
		firstErr = err // what Prepare unpacked
	}
	for _, k := range in.keys {
		in.m.images.Delete(k)
	}
	in.m.stored.CollectGarbage()
	return firstErr
}

// Close releases the name and the chunks' protection from GC.
func (in *Incoming) Close() {
	in.chunks.Close()
	in.release()
}

// Remove kills and destroys a container with everything the store keeps of
// it, without taking its lock: for cleaning up after a migration, whose
// caller holds the lock or knows nobody else can.
func (m *Moves) Remove(name string) error {
	if m.containers.Exists(name) {
		if err := m.containers.Kill(name); err != nil {
			return err
		}
		c, err := m.containers.Open(name)
		if err != nil {
			return err
		}
		err = c.Destroy()
		c.Release()
		if err != nil {
			return errkind.New(errkind.ErrFailed, "destroy "+name, err)
		}
	}
	m.images.Delete(stored.MovingKey(name))
	return m.stored.DropStoreData(name)
}

// StartLocked brings back a container whose lock the caller holds after a
// move that did not finish: a held one runs on (resumeHere), a stopped
// one is restored or started.
func (m *Moves) StartLocked(ctx context.Context, name string) error {
	if m.saved.Held(name) != nil {
		return m.resumeHere(ctx, name)
	}
	if st, err := m.containers.Status(name); err != nil || st != "STOPPED" {
		return err
	}
	if err := m.mgr.Start(ctx, &opctx.Op{}, name); err != nil {
		return err
	}
	m.Announce(name)
	return nil
}

// sameFile says whether two manifest entries are the same content.
func sameFile(a, b images.File) bool {
	return a.Name == b.Name && a.Size == b.Size && slices.Equal(a.Chunks, b.Chunks)
}
