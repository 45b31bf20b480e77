package ops

import (
	"ctrfs/ops/stored"

	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"ctrfs/images"
	"ctrfs/ops/criulog"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/opctx"
	"ctrfs/ops/staging"
)

// stopStateful checkpoints a running container with CRIU and keeps the
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
func (m *Manager) stopStateful(ctx context.Context, oc *opContext, name string, ref *images.Reference) error {
	if err := m.checkpointHeld(ctx, oc, name, ref, nil, "stop-stateful"); err != nil {
		return err
	}
	t := time.Now()
	if err := m.rehearse(ctx, oc, name); err != nil {
		msg := fmt.Sprintf("stop-stateful of %s refused: this host could not restore its checkpoint (%v)", name, err)
		if derr := m.stored.DropState(name); derr != nil {
			msg += fmt.Sprintf("; dropping the checkpoint failed (%v)", derr)
		}
		return m.releaseWith(name, msg+"; the checkpoint was discarded")
	}
	oc.Extra = append(oc.Extra, opctx.Seconds("rehearsal-seconds", time.Since(t)))
	return m.killHeld(name)
}

// checkpointHeld holds the running container (hold.go) for purpose and
// dumps it, leaving it held, and saves the images as its state; with
// parent, over a migration's last pre-dump: CRIU writes only the pages
// dirtied since, and the saved state holds the pre-dumps' images as its
// parents (images.Chain).
//
// The images go into the image store while CRIU writes them (images.
// GrowingImport). The container's own processes are its copy until the
// caller ends the hold: a failed dump or store releases them, and the
// container is RUNNING as before.
func (m *Manager) checkpointHeld(ctx context.Context, oc *opContext, name string, ref *images.Reference, parent *preDumpRound, purpose string) error {
	if err := m.containers.RequireStatus(name, purpose, "RUNNING"); err != nil {
		return err
	}
	dir, err := m.staging.Dir(name, "dump", m.containers.ImagesSizeHint(name))
	if err != nil {
		return newError(ErrFailed, "prepare checkpoint of "+name, err)
	}
	t0 := time.Now()
	var args []string
	if parent != nil {
		args = append(args, parent.dir)
	}
	var d storedDump
	dumpErr, err := m.dumpUnderHold(ctx, oc, name, purpose, dir, func() error {
		var err error
		d, err = m.dumpStored(ctx, oc, ref, lxchelper.CheckpointHeld, name, dir, args...)
		return err
	})
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	if dumpErr != nil {
		os.RemoveAll(dir)
		if err := m.release(name); err != nil {
			return err
		}
		return m.dumpFailed(name, dumpErr, oc.Log)
	}
	oc.Extra = append(oc.Extra, dumpStats(dir)...)

	storeErr := d.storeErr
	if storeErr == nil {
		state := d.manifest
		if parent != nil {
			state = images.Chain(d.manifest, parent.chain)
		}
		storeErr = m.images.Save(stored.StateKey(name), state)
		if storeErr != nil || state != d.manifest {
			m.images.Release(d.manifest) // saved as part of the chain, or not at all
		}
	}
	if storeErr != nil {
		os.RemoveAll(dir)
		// The container runs again first: freeing the failed import's
		// chunks is a whole collection.
		err := m.releaseWith(name, fmt.Sprintf("checkpoint of %s could not be stored (%v)", name, storeErr))
		m.stored.FreeFailedImport(ctx)
		return err
	}
	m.staging.RemoveLater(dir)
	oc.Extra = append(oc.Extra, opctx.Seconds("dump-seconds", d.dumped.Sub(t0)), opctx.Seconds("store-seconds", time.Since(d.dumped)))
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
func (m *Manager) dumpUnderHold(ctx context.Context, oc *opContext, name, purpose, dir string, dump func() error) (dumpErr, err error) {
	for attempt := 1; ; attempt++ {
		if err := m.hold(ctx, name, purpose); err != nil {
			return nil, err
		}
		dumpErr = dump()
		if dumpErr == nil || attempt == dumpAttempts || !freezeTimedOut(oc.Log) {
			return dumpErr, nil
		}
		if err := m.release(name); err != nil {
			return dumpErr, err
		}
		m.log.Warn("CRIU could not seize a task of the held container; trying again",
			"container", name, "attempt", attempt, "reason", criulog.Explain(oc.Log))
		if err := emptyDir(dir, nil); err != nil {
			return dumpErr, newError(ErrFailed, "clear the images of a failed dump", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// releaseWith releases a held container after a failure that msg
// describes, and returns the failure, saying where the container is.
func (m *Manager) releaseWith(name, msg string) error {
	if err := m.release(name); err != nil {
		return newError(ErrFailed, fmt.Sprintf("%s; resuming %s failed too (%v): it is FROZEN", msg, name, err), nil)
	}
	return newError(ErrFailed, fmt.Sprintf("%s; %s is RUNNING as before, its processes untouched", msg, name), nil)
}

// rehearse restores the held container's saved state as a throwaway copy
// (lxchelper.RestoreRehearsal): nil if it restored. Its log follows the
// dump's in `log`.
func (m *Manager) rehearse(ctx context.Context, oc *opContext, name string) error {
	roc := &opContext{Progress: oc.Progress}
	damaged, err := m.restoreSaved(ctx, roc, name, lxchelper.RestoreRehearsal)
	oc.SetLog(append(append(oc.Log, "=== restore rehearsal ===\n"...), roc.Log...))
	for _, kv := range roc.Extra { // the copy's figures, not a restore's
		oc.Extra = append(oc.Extra, KeyValue{Key: "rehearsal-" + kv.Key, Value: kv.Value})
	}
	if damaged != nil {
		return fmt.Errorf("its images are damaged: %v", damaged)
	}
	return err
}

// dumpAttempts bounds the tries of a dump that failed because CRIU could
// not seize a task in time. That is transient: BusyBox's `nc -e`, for one,
// waits uninterruptibly in vfork() until its child execs, and a child that
// CRIU stopped first never does; a moment later the same dump succeeds.
const dumpAttempts = 8

// storedDump is a dump whose images went into the store as CRIU wrote
// them (see images.GrowingImport).
type storedDump struct {
	manifest *images.Manifest // unsaved: Save or Release it
	stats    images.ImportStats
	storeErr error     // the dump succeeded but storing it did not
	dumped   time.Time // when CRIU had finished
}

// dumpStored runs a checkpoint helper verb into dir, trying again while
// CRIU fails to freeze a container that is still running, and stores the
// images while CRIU writes them; ref is passed to images.GrowingImport.
// The error is the dump's (the `log` is the last attempt's); a failure to
// store is storedDump.storeErr.
func (m *Manager) dumpStored(ctx context.Context, oc *opContext, ref *images.Reference, verb lxchelper.Verb, name, dir string, args ...string) (storedDump, error) {
	return m.dumpStoredBy(ctx, m.images.StartGrowingImport, oc, ref, verb, name, dir, args...)
}

// dumpStoredAfter is dumpStored storing only once CRIU has exited
// (images.StartDeferredImport), for a dump that leaves the container
// running: its tasks are frozen for as long as CRIU runs, and storing
// beside CRIU competes with it for the cores.
func (m *Manager) dumpStoredAfter(ctx context.Context, oc *opContext, ref *images.Reference, verb lxchelper.Verb, name, dir string, args ...string) (storedDump, error) {
	return m.dumpStoredBy(ctx, m.images.StartDeferredImport, oc, ref, verb, name, dir, args...)
}

func (m *Manager) dumpStoredBy(ctx context.Context, start func(string, *images.Reference) *images.GrowingImport,
	oc *opContext, ref *images.Reference, verb lxchelper.Verb, name, dir string, args ...string) (storedDump, error) {
	hint := m.containers.ImagesSizeHint(name)
	// What the caller put in dir before the dump (a snapshot's or a move's
	// copy of the config) is not the dump's, and survives a retry.
	before, err := os.ReadDir(dir)
	if err != nil {
		return storedDump{}, newError(ErrFailed, "read the staging directory of "+name, err)
	}
	for attempt := 1; ; attempt++ {
		growing := start(dir, ref)
		oc.Progress.Sample("dump", hint, func() int64 { return opctx.DirSize(dir) })
		err := m.containers.RunCRIUHelper(ctx, oc, hint, verb, name, append([]string{dir}, args...)...)
		d := storedDump{dumped: time.Now()}
		oc.Progress.SetStep("store", 0)
		oc.SetLog(criulog.Combined(filepath.Join(dir, lxchelper.DumpLog(verb)), oc.Log))
		if err == nil {
			d.manifest, d.stats, d.storeErr = growing.Finish()
		} else {
			growing.Cancel()
		}
		if err == nil || attempt == dumpAttempts || !freezeTimedOut(oc.Log) {
			return d, err
		}
		if st, serr := m.Status(name); serr != nil || st != "RUNNING" {
			return d, err
		}
		m.log.Warn("CRIU could not freeze the container in time; trying again",
			"container", name, "attempt", attempt, "reason", criulog.Explain(oc.Log))
		if err := emptyDir(dir, before); err != nil {
			return d, newError(ErrFailed, "clear the images of a failed dump", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freezeTimedOut says whether a dump log shows CRIU giving up on a task
// that stayed in uninterruptible sleep (state D) while it seized the tree:
// transient, unlike a task it may not seize at all (traced by another
// process, say), which fails the same way in another state.
func freezeTimedOut(log []byte) bool {
	return unseizableInD.Match(log)
}

var unseizableInD = regexp.MustCompile(`Unseizable non-zombie \d+ found, state D`)

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
func (m *Manager) saveDumpChain(ctx context.Context, key, dir string) error {
	mf, held, err := importDumpChain(ctx, m.images, m.staging.Trusted, dir)
	if err != nil {
		return err
	}
	err = m.images.Save(key, mf)
	for _, h := range held {
		m.images.Release(h)
	}
	return err
}

// dumpFailed words a failed dump: the cause of CRIU's error, if known.
func (m *Manager) dumpFailed(name string, err error, log []byte) error {
	msg := fmt.Sprintf("checkpoint of %s failed", name)
	var overdue *lxchelper.OverdueError
	if errors.As(err, &overdue) {
		msg += ": " + overdue.Error()
		err = nil
	} else if e := criulog.Explain(log); e != "" {
		msg += ": " + e
		err = nil // LXC's own words add nothing
	}
	if st, serr := m.Status(name); serr == nil {
		msg += "; " + name + " is " + st
	}
	return newError(ErrFailed, msg, err)
}

// startFromState restores a stopped container from its saved state and,
// once it runs, drops the state. A damaged image or a failed restore keeps
// the state and leaves the container STOPPED, so start can be retried.
func (m *Manager) startFromState(ctx context.Context, oc *opContext, name string) error {
	return m.restoreState(ctx, oc, name, lxchelper.Restore)
}

// restoreState is startFromState with the helper verb that restores:
// "restore", or "restore-frozen" for a container that must not run yet.
func (m *Manager) restoreState(ctx context.Context, oc *opContext, name string, verb lxchelper.Verb) error {
	damaged, err := m.restoreSaved(ctx, oc, name, verb)
	var failed *criuFailure
	switch {
	case damaged != nil:
		return newError(ErrFailed, fmt.Sprintf(
			"saved state of %s is damaged: %v; it is kept in state/ for inspection", name, damaged), nil)
	case errors.As(err, &failed) && verb == lxchelper.Restore:
		return newError(ErrFailed, restoreFailed(name, failed.err, oc.Log), nil)
	case errors.As(err, &failed):
		// A move's target: the source keeps the container.
		return newError(ErrFailed, fmt.Sprintf("restore of %s failed %v", name, failed.err), nil)
	case err != nil:
		return err
	}
	return m.stored.DropState(name)
}

// criuFailure is a restore that CRIU failed (criuRestore's error), as
// against one that never got to CRIU.
type criuFailure struct{ err error }

func (f *criuFailure) Error() string { return f.err.Error() }
func (f *criuFailure) Unwrap() error { return f.err }

// restoreSaved restores the container's saved state with the helper verb,
// and keeps the state. A failed restore's error is criuRestore's, and
// damaged says whether an image was damaged.
func (m *Manager) restoreSaved(ctx context.Context, oc *opContext, name string, verb lxchelper.Verb) (damaged, err error) {
	set, err := m.SavedState(name)
	if err != nil {
		return nil, err
	}
	// A state made over pre-dumps (images.Chain) restores from a
	// directory: CRIU finds parent images there only, not in a stream.
	chained := set.Manifest().Chained()
	var dir string
	if chained {
		dir, err = m.staging.Dir(name, "restore", set.Manifest().Size())
	} else {
		dir, err = m.staging.StreamDir()
	}
	if err != nil {
		return nil, newError(ErrFailed, "prepare restore of "+name, err)
	}
	defer os.RemoveAll(dir)
	if chained {
		if err := m.images.Export(ctx, set.Manifest(), dir); errors.Is(err, images.ErrCorrupt) {
			return err, err
		} else if err != nil {
			return nil, newError(ErrFailed, "unpack the saved state of "+name, err)
		}
	}

	// The recorded cgroups are read from the directory by the restore's
	// hook, not by CRIU.
	if data, err := fs.ReadFile(m.images.FS(set.Manifest()), lxchelper.CgroupsFile); err == nil {
		if err := os.WriteFile(filepath.Join(dir, lxchelper.CgroupsFile), data, 0o644); err != nil {
			return nil, newError(ErrFailed, "prepare restore of "+name, err)
		}
	}
	// CRIU reads the images from the store as it restores (see
	// images.ServeImages): every chunk is checked before CRIU gets a
	// byte of it, and a damaged one ends the restore. Each attempt (see
	// criuRestore) is served anew.
	serve := func(dir string) (func() error, error) {
		srv, err := m.images.ServeImages(set.Manifest(), dir)
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
	from := restoreFrom{serve: serve, size: set.Manifest().Size()}
	if chained {
		from = restoreFrom{}
	}
	t1 := time.Now()
	_, damaged, restoreErr := m.criuRestore(ctx, oc, verb, name, dir, from)
	if restoreErr != nil {
		return damaged, &criuFailure{restoreErr}
	}
	oc.Extra = append(oc.Extra, restoreStats(dir)...)
	oc.Extra = append(oc.Extra, opctx.Seconds("criu-restore-seconds", time.Since(t1)))
	return nil, nil
}

// recoverStaging deals with staging directories left by a daemon that
// died mid-operation. A finished dump of a container that is now stopped
// without saved state is that container's only state: it is stored as its
// saved state. Anything else in staging is a copy and is removed.
// Only directories that pass staging.Trusted are read.
func (m *Manager) recoverStaging(ctx context.Context) {
	for _, root := range m.staging.LeftRoots() {
		if m.staging.Trusted(root) {
			m.recoverStagingIn(ctx, root)
			if root != m.staging.DiskRoot() {
				os.Remove(root) // if empty: this run makes its own
			}
		}
	}
}

func (m *Manager) recoverStagingIn(ctx context.Context, root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if !m.staging.Trusted(dir) {
			continue
		}
		if name, ok := stagedDumpOf(e.Name()); ok && m.Exists(name) && !m.HasState(name) && completeDump(dir) {
			if st, err := m.Status(name); err == nil && st == "STOPPED" {
				if err := m.saveDumpChain(ctx, stored.StateKey(name), dir); err != nil {
					m.log.Error("cannot store the checkpoint left in staging; keeping it", "dir", dir, "err", err)
					continue
				}
				m.log.Warn("stored a checkpoint left in staging by an interrupted stop-stateful", "container", name)
			}
		}
		os.RemoveAll(dir)
	}
}

// dropStaleState drops the saved state of containers that run: a daemon
// killed between a restore and the drop of the state it restored, or a
// container started outside ctrfs, leaves state that no longer belongs to
// the processes. Kept, a later start would bring back processes of the past
// over a rootfs that has moved on.
func (m *Manager) dropStaleState() {
	names, err := m.List()
	if err != nil {
		return
	}
	for _, name := range names {
		if !m.HasState(name) {
			continue
		}
		if st, err := m.Status(name); err != nil || st == "STOPPED" {
			continue
		}
		if err := m.stored.DropState(name); err != nil {
			m.log.Error("cannot drop the saved state of a running container", "container", name, "err", err)
			continue
		}
		m.log.Warn("dropped the saved state of a container that runs", "container", name)
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

// dumpStats reads CRIU's stats-dump image: how long the processes were
// frozen and how long dumping and writing their memory took.
func dumpStats(dir string) []KeyValue {
	st, err := images.Stats(os.DirFS(dir), "stats-dump")
	if err != nil || st.GetDump() == nil {
		return nil
	}
	s := st.GetDump()
	return []KeyValue{
		opctx.Micros("criu-frozen-seconds", s.GetFrozenTime()),
		opctx.Micros("criu-memdump-seconds", s.GetMemdumpTime()),
		opctx.Micros("criu-memwrite-seconds", s.GetMemwriteTime()),
		{Key: "criu-pages-written", Value: fmt.Sprint(s.GetPagesWritten())},
	}
}

// restoreStats reads CRIU's stats-restore image.
func restoreStats(dir string) []KeyValue {
	st, err := images.Stats(os.DirFS(dir), "stats-restore")
	if err != nil || st.GetRestore() == nil {
		return nil
	}
	s := st.GetRestore()
	return []KeyValue{
		opctx.Micros("criu-restore-time-seconds", s.GetRestoreTime()),
		opctx.Micros("criu-forking-seconds", s.GetForkingTime()),
		{Key: "criu-pages-restored", Value: fmt.Sprint(s.GetPagesRestored())},
	}
}
