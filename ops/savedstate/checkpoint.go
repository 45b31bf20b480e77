package savedstate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"ctrfs/images"
	"ctrfs/images/critview"
	"ctrfs/ops/criulog"
	"ctrfs/ops/errkind"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/opctx"
	"ctrfs/ops/staging"
	"ctrfs/ops/stored"
)

// StopStateful checkpoints a running container with CRIU and keeps the
// images in the store as its saved state, but only once this host has
// restored them: a restore rehearsal (lxchelper/rehearse.go) while the
// container is held (hold.go), frozen and off the wire. A checkpoint this
// host cannot restore is refused, and the same processes run on.
//
// The phases, and what a failure in each leaves behind:
//   - hold, dump and store: see checkpointHeld; a failure leaves the
//     container RUNNING as before.
//   - rehearsal: the saved state is restored as a throwaway copy, which is
//     killed at once. If that fails, the state is dropped and the
//     container released: RUNNING as before, and `error` has the
//     restore's cause.
//   - kill: the held tasks die without running again; the container is
//     STOPPED with its saved state.
//
// ref, if not nil, is an earlier dump of the same container still on disk
// (a migration's precopy): chunks unchanged since are not hashed again.
func (k *Keeper) StopStateful(ctx context.Context, oc *opctx.Op, name string, ref *images.Reference) error {
	if err := k.CheckpointHeld(ctx, oc, name, ref, nil, "stop-stateful"); err != nil {
		return err
	}
	t := time.Now()
	if err := k.rehearse(ctx, oc, name); err != nil {
		msg := fmt.Sprintf("stop-stateful of %s refused: this host could not restore its checkpoint (%v)", name, err)
		if derr := k.stored.DropState(name); derr != nil {
			msg += fmt.Sprintf("; dropping the checkpoint failed (%v)", derr)
		}
		return k.releaseWith(name, msg+"; the checkpoint was discarded")
	}
	oc.Extra = append(oc.Extra, opctx.Seconds("rehearsal-seconds", time.Since(t)))
	return k.KillHeld(name)
}

// CheckpointHeld holds the running container (hold.go) for purpose and
// dumps it, leaving it held, and saves the images as its state; with
// parent, over a migration's last pre-dump: CRIU writes only the pages
// dirtied since, and the saved state holds the pre-dumps' images as its
// parents (images.Chain).
//
// The images go into the image store while CRIU writes them (images.
// GrowingImport). The container's own processes are its copy until the
// caller ends the hold: a failed dump or store releases them, and the
// container is RUNNING as before.
func (k *Keeper) CheckpointHeld(ctx context.Context, oc *opctx.Op, name string, ref *images.Reference, parent *Parent, purpose string) error {
	if err := k.containers.RequireStatus(name, purpose, "RUNNING"); err != nil {
		return err
	}
	dir, err := k.staging.Dir(name, "dump", k.containers.ImagesSizeHint(name))
	if err != nil {
		return errkind.New(errkind.ErrFailed, "prepare checkpoint of "+name, err)
	}
	t0 := time.Now()
	var args []string
	if parent != nil {
		args = append(args, parent.Dir)
	}
	var d StoredDump
	dumpErr, err := k.dumpUnderHold(ctx, oc, name, purpose, dir, func() error {
		var err error
		d, err = k.DumpStored(ctx, oc, ref, lxchelper.CheckpointHeld, name, dir, args...)
		return err
	})
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	if dumpErr != nil {
		os.RemoveAll(dir)
		if err := k.Release(name); err != nil {
			return err
		}
		return k.DumpFailed(name, dumpErr, oc.Log)
	}
	oc.Extra = append(oc.Extra, DumpStats(dir)...)

	storeErr := d.StoreErr
	if storeErr == nil {
		state := d.Manifest
		if parent != nil {
			state = images.Chain(d.Manifest, parent.Chain)
		}
		storeErr = k.images.Save(stored.StateKey(name), state)
		if storeErr != nil || state != d.Manifest {
			k.images.Release(d.Manifest) // saved as part of the chain, or not at all
		}
	}
	if storeErr != nil {
		os.RemoveAll(dir)
		// The container runs again first: freeing the failed import's
		// chunks is a whole collection.
		err := k.releaseWith(name, fmt.Sprintf("checkpoint of %s could not be stored (%v)", name, storeErr))
		k.stored.FreeFailedImport(ctx)
		return err
	}
	k.staging.RemoveLater(dir)
	oc.Extra = append(oc.Extra, opctx.Seconds("dump-seconds", d.Dumped.Sub(t0)), opctx.Seconds("store-seconds", time.Since(d.Dumped)))
	return nil
}

// dumpUnderHold holds the container for purpose and runs dump, which
// leaves it held; a dump that failed because CRIU could not seize a task
// in uninterruptible sleep (freezeTimedOut: BusyBox's `nc -e` in vfork(),
// whose child the freezer stopped before it could exec) is tried again,
// dumpAttempts in all, with the container released for a moment in
// between so that the task can leave its sleep: dumpStored's own retry
// needs a container that runs. The container is held on return unless err
// (the hold's failure, or the release's) is not nil; dumpErr is the last
// dump's.
func (k *Keeper) dumpUnderHold(ctx context.Context, oc *opctx.Op, name, purpose, dir string, dump func() error) (dumpErr, err error) {
	for attempt := 1; ; attempt++ {
		if err := k.Hold(ctx, name, purpose); err != nil {
			return nil, err
		}
		dumpErr = dump()
		if dumpErr == nil || attempt == dumpAttempts || !transientDumpFailure(oc.Log) {
			return dumpErr, nil
		}
		if err := k.Release(name); err != nil {
			return dumpErr, err
		}
		k.log.Warn("the dump of the held container failed for a passing cause; trying again",
			"container", name, "attempt", attempt, "reason", criulog.Explain(oc.Log))
		if err := emptyDir(dir, nil); err != nil {
			return dumpErr, errkind.New(errkind.ErrFailed, "clear the images of a failed dump", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// releaseWith releases a held container after a failure that msg
// describes, and returns the failure, saying where the container is.
func (k *Keeper) releaseWith(name, msg string) error {
	if err := k.Release(name); err != nil {
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("%s; resuming %s failed too (%v): it is FROZEN", msg, name, err), nil)
	}
	return errkind.New(errkind.ErrFailed, fmt.Sprintf("%s; %s is RUNNING as before, its processes untouched", msg, name), nil)
}

// rehearse restores the held container's saved state as a throwaway copy
// (lxchelper.RestoreRehearsal): nil if it restored. Its log follows the
// dump's in `log`.
func (k *Keeper) rehearse(ctx context.Context, oc *opctx.Op, name string) error {
	roc := &opctx.Op{Progress: oc.Progress}
	damaged, err := k.restoreSaved(ctx, roc, name, lxchelper.RestoreRehearsal)
	oc.SetLog(append(append(oc.Log, "=== restore rehearsal ===\n"...), roc.Log...))
	for _, kv := range roc.Extra { // the copy's figures, not a restore's
		oc.Extra = append(oc.Extra, opctx.KeyValue{Key: "rehearsal-" + kv.Key, Value: kv.Value})
	}
	if damaged != nil {
		return fmt.Errorf("its images are damaged: %v", damaged)
	}
	return err
}

// dumpAttempts bounds the tries of a dump that failed for a passing cause
// (transientDumpFailure), the container running between them.
const dumpAttempts = 8

// StoredDump is a dump whose images went into the store as CRIU wrote
// them (see images.GrowingImport).
type StoredDump struct {
	Manifest *images.Manifest // unsaved: Save or Release it
	Stats    images.ImportStats
	StoreErr error     // the dump succeeded but storing it did not
	Dumped   time.Time // when CRIU had finished
}

// DumpStored runs a checkpoint helper verb into dir, trying again while
// CRIU fails to freeze a container that is still running, and stores the
// images while CRIU writes them; ref is passed to images.GrowingImport.
// The error is the dump's (the `log` is the last attempt's); a failure to
// store is storedDump.storeErr.
func (k *Keeper) DumpStored(ctx context.Context, oc *opctx.Op, ref *images.Reference, verb lxchelper.Verb, name, dir string, args ...string) (StoredDump, error) {
	return k.dumpStoredBy(ctx, k.images.StartGrowingImport, oc, ref, verb, name, dir, args...)
}

// DumpStoredAfter is dumpStored storing only once CRIU has exited
// (images.StartDeferredImport), for a dump that leaves the container
// running: its tasks are frozen for as long as CRIU runs, and storing
// beside CRIU competes with it for the cores.
func (k *Keeper) DumpStoredAfter(ctx context.Context, oc *opctx.Op, ref *images.Reference, verb lxchelper.Verb, name, dir string, args ...string) (StoredDump, error) {
	return k.dumpStoredBy(ctx, k.images.StartDeferredImport, oc, ref, verb, name, dir, args...)
}

func (k *Keeper) dumpStoredBy(ctx context.Context, start func(string, *images.Reference) *images.GrowingImport,
	oc *opctx.Op, ref *images.Reference, verb lxchelper.Verb, name, dir string, args ...string) (StoredDump, error) {
	hint := k.containers.ImagesSizeHint(name)
	// What the caller put in dir before the dump (a snapshot's or a move's
	// copy of the config) is not the dump's, and survives a retry.
	before, err := os.ReadDir(dir)
	if err != nil {
		return StoredDump{}, errkind.New(errkind.ErrFailed, "read the staging directory of "+name, err)
	}
	for attempt := 1; ; attempt++ {
		growing := start(dir, ref)
		oc.Progress.Sample("dump", hint, func() int64 { return opctx.DirSize(dir) })
		err := k.containers.RunCRIUHelper(ctx, oc, hint, verb, name, append([]string{dir}, args...)...)
		d := StoredDump{Dumped: time.Now()}
		oc.Progress.SetStep("store", 0)
		oc.SetLog(criulog.Combined(filepath.Join(dir, lxchelper.DumpLog(verb)), oc.Log))
		if err == nil {
			d.Manifest, d.Stats, d.StoreErr = growing.Finish()
		} else {
			growing.Cancel()
		}
		if err == nil || attempt == dumpAttempts || !transientDumpFailure(oc.Log) {
			return d, err
		}
		if st, serr := k.containers.Status(name); serr != nil || st != "RUNNING" {
			return d, err
		}
		k.log.Warn("the dump failed for a passing cause; trying again",
			"container", name, "attempt", attempt, "reason", criulog.Explain(oc.Log))
		if err := emptyDir(dir, before); err != nil {
			return d, errkind.New(errkind.ErrFailed, "clear the images of a failed dump", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// transientDumpFailure says whether a dump log shows a failure that a
// moment of running ends, so that the same dump then succeeds:
//   - CRIU gave up on a task that stayed in uninterruptible sleep (state
//     D) while it seized the tree. BusyBox's `nc -e`, for one, waits so in
//     vfork() until its child execs, and a child that CRIU stopped first
//     never does. A task it may not seize at all (traced by another
//     process, say) fails the same way in another state, for good.
//   - A unix socket held messages with control data (credentials,
//     descriptors) that its reader had not taken yet, which CRIU cannot
//     dump: systemd's notify socket just after a unit (re)started, until
//     PID 1 reads the new service's READY=1.
func transientDumpFailure(log []byte) bool {
	return unseizableInD.Match(log) || controlMessagesQueued.Match(log)
}

var (
	unseizableInD         = regexp.MustCompile(`Unseizable non-zombie \d+ found, state D`)
	controlMessagesQueued = regexp.MustCompile(`skqueue: Control messages in queue, not supported`)
)

// emptyDir removes everything in dir but the entries named in keep.
func emptyDir(dir string, keep []os.DirEntry) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, e := range keep {
		kept[e.Name()] = true
	}
	for _, e := range entries {
		if kept[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// saveDumpChain imports a dump left in staging into the store under key,
// with its parent images if it has any (importDumpChain).
func (k *Keeper) saveDumpChain(ctx context.Context, key, dir string) error {
	mf, held, err := importDumpChain(ctx, k.images, k.staging.Trusted, dir)
	if err != nil {
		return err
	}
	err = k.images.Save(key, mf)
	for _, h := range held {
		k.images.Release(h)
	}
	return err
}

// DumpFailed words a failed dump: the cause of CRIU's error, if known.
func (k *Keeper) DumpFailed(name string, err error, log []byte) error {
	msg := fmt.Sprintf("checkpoint of %s failed", name)
	var overdue *lxchelper.OverdueError
	if errors.As(err, &overdue) {
		msg += ": " + overdue.Error()
		err = nil
	} else if e := criulog.Explain(log); e != "" {
		msg += ": " + e
		err = nil // LXC's own words add nothing
	}
	if st, serr := k.containers.Status(name); serr == nil {
		msg += "; " + name + " is " + st
	}
	return errkind.New(errkind.ErrFailed, msg, err)
}

// StartFromState restores a stopped container from its saved state and,
// once it runs, drops the state. A damaged image or a failed restore keeps
// the state and leaves the container STOPPED, so start can be retried.
func (k *Keeper) StartFromState(ctx context.Context, oc *opctx.Op, name string) error {
	return k.RestoreState(ctx, oc, name, lxchelper.Restore)
}

// RestoreState is startFromState with the helper verb that restores:
// "restore", or "restore-frozen" for a container that must not run yet.
func (k *Keeper) RestoreState(ctx context.Context, oc *opctx.Op, name string, verb lxchelper.Verb) error {
	damaged, err := k.restoreSaved(ctx, oc, name, verb)
	var failed *criuFailure
	switch {
	case damaged != nil:
		return errkind.New(errkind.ErrFailed, fmt.Sprintf(
			"saved state of %s is damaged: %v; it is kept in state/ for inspection", name, damaged), nil)
	case errors.As(err, &failed) && verb == lxchelper.Restore:
		return errkind.New(errkind.ErrFailed, restoreFailed(name, failed.err, oc.Log), nil)
	case errors.As(err, &failed):
		// A move's target: the source keeps the container.
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("restore of %s failed %v", name, failed.err), nil)
	case err != nil:
		return err
	}
	return k.stored.DropState(name)
}

// criuFailure is a restore that CRIU failed (criuRestore's error), as
// against one that never got to CRIU.
type criuFailure struct{ err error }

func (f *criuFailure) Error() string { return f.err.Error() }
func (f *criuFailure) Unwrap() error { return f.err }

// restoreSaved restores the container's saved state with the helper verb,
// and keeps the state. A failed restore's error is criuRestore's, and
// damaged says whether an image was damaged.
func (k *Keeper) restoreSaved(ctx context.Context, oc *opctx.Op, name string, verb lxchelper.Verb) (damaged, err error) {
	set, err := k.stored.SavedState(name)
	if err != nil {
		return nil, err
	}
	// A state made over pre-dumps (images.Chain) restores from a
	// directory: CRIU finds parent images there only, not in a stream.
	chained := set.Manifest().Chained()
	var dir string
	if chained {
		dir, err = k.staging.Dir(name, "restore", set.Manifest().Size())
	} else {
		dir, err = k.staging.StreamDir()
	}
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "prepare restore of "+name, err)
	}
	defer os.RemoveAll(dir)
	if chained {
		if err := k.images.Export(ctx, set.Manifest(), dir); errors.Is(err, images.ErrCorrupt) {
			return err, err
		} else if err != nil {
			return nil, errkind.New(errkind.ErrFailed, "unpack the saved state of "+name, err)
		}
	}

	// The recorded cgroups are read from the directory by the restore's
	// hook, not by CRIU.
	if data, err := fs.ReadFile(k.images.FS(set.Manifest()), lxchelper.CgroupsFile); err == nil {
		if err := os.WriteFile(filepath.Join(dir, lxchelper.CgroupsFile), data, 0o644); err != nil {
			return nil, errkind.New(errkind.ErrFailed, "prepare restore of "+name, err)
		}
	}
	// CRIU reads the images from the store as it restores (see
	// images.ServeImages): every chunk is checked before CRIU gets a
	// byte of it, and a damaged one ends the restore. Each attempt (see
	// criuRestore) is served anew.
	serve := func(dir string) (func() error, error) {
		srv, err := k.images.ServeImages(set.Manifest(), dir)
		if err != nil {
			return nil, err
		}
		phase := "restore"
		if verb == lxchelper.RestoreRehearsal {
			phase = "rehearse"
		}
		oc.Progress.Sample(phase, set.Manifest().Size(), srv.Served)
		return srv.Close, nil
	}
	from := RestoreFrom{serve: serve, size: set.Manifest().Size()}
	if chained {
		from = RestoreFrom{}
	}
	t1 := time.Now()
	_, damaged, restoreErr := k.CriuRestore(ctx, oc, verb, name, dir, from)
	if restoreErr != nil {
		return damaged, &criuFailure{restoreErr}
	}
	oc.Extra = append(oc.Extra, RestoreStats(dir)...)
	oc.Extra = append(oc.Extra, opctx.Seconds("criu-restore-seconds", time.Since(t1)))
	return nil, nil
}

// RecoverStaging deals with staging directories left by a daemon that
// died mid-operation. A finished dump of a container that is now stopped
// without saved state is that container's only state: it is stored as its
// saved state. Anything else in staging is a copy and is removed.
// Only directories that pass staging.Trusted are read.
func (k *Keeper) RecoverStaging(ctx context.Context) {
	for _, root := range k.staging.LeftRoots() {
		if k.staging.Trusted(root) {
			k.recoverStagingIn(ctx, root)
			if root != k.staging.DiskRoot() {
				os.Remove(root) // if empty: this run makes its own
			}
		}
	}
}

func (k *Keeper) recoverStagingIn(ctx context.Context, root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if !k.staging.Trusted(dir) {
			continue
		}
		if name, ok := stagedDumpOf(e.Name()); ok && k.containers.Exists(name) && !k.stored.HasState(name) && completeDump(dir) {
			if st, err := k.containers.Status(name); err == nil && st == "STOPPED" {
				if err := k.saveDumpChain(ctx, stored.StateKey(name), dir); err != nil {
					k.log.Error("cannot store the checkpoint left in staging; keeping it", "dir", dir, "err", err)
					continue
				}
				k.log.Warn("stored a checkpoint left in staging by an interrupted stop-stateful", "container", name)
			}
		}
		os.RemoveAll(dir)
	}
}

// DropStaleState drops the saved state of containers that run: a daemon
// killed between a restore and the drop of the state it restored, or a
// container started outside ctrfs, leaves state that no longer belongs to
// the processes. Kept, a later start would bring back processes of the past
// over a rootfs that has moved on.
func (k *Keeper) DropStaleState() {
	names, err := k.containers.List()
	if err != nil {
		return
	}
	for _, name := range names {
		if !k.stored.HasState(name) {
			continue
		}
		if st, err := k.containers.Status(name); err != nil || st == "STOPPED" {
			continue
		}
		if err := k.stored.DropState(name); err != nil {
			k.log.Error("cannot drop the saved state of a running container", "container", name, "err", err)
			continue
		}
		k.log.Warn("dropped the saved state of a container that runs", "container", name)
	}
}

// stagedDumpOf parses "dump-NAME-RANDOM" as made by staging.Dir.
func stagedDumpOf(dirName string) (string, bool) {
	purpose, name, ok := staging.Parse(dirName)
	return name, ok && purpose == "dump"
}

// completeDump: CRIU writes stats-dump last, after a successful dump.
func completeDump(dir string) bool {
	for _, f := range []string{"inventory.img", "pstree.img", "stats-dump"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// DumpStats reads CRIU's stats-dump image: how long the processes were
// frozen and how long dumping and writing their memory took.
func DumpStats(dir string) []opctx.KeyValue {
	st, err := critview.Stats(os.DirFS(dir), "stats-dump")
	if err != nil || st.GetDump() == nil {
		return nil
	}
	s := st.GetDump()
	return []opctx.KeyValue{
		opctx.Micros("criu-frozen-seconds", s.GetFrozenTime()),
		opctx.Micros("criu-memdump-seconds", s.GetMemdumpTime()),
		opctx.Micros("criu-memwrite-seconds", s.GetMemwriteTime()),
		{Key: "criu-pages-written", Value: fmt.Sprint(s.GetPagesWritten())},
	}
}

// RestoreStats reads CRIU's stats-restore image.
func RestoreStats(dir string) []opctx.KeyValue {
	st, err := critview.Stats(os.DirFS(dir), "stats-restore")
	if err != nil || st.GetRestore() == nil {
		return nil
	}
	s := st.GetRestore()
	return []opctx.KeyValue{
		opctx.Micros("criu-restore-time-seconds", s.GetRestoreTime()),
		opctx.Micros("criu-forking-seconds", s.GetForkingTime()),
		{Key: "criu-pages-restored", Value: fmt.Sprint(s.GetPagesRestored())},
	}
}
