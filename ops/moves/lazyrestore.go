package moves

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ctrfs/ops/criulog"
	"ctrfs/ops/errkind"
	"ctrfs/ops/lazypages"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/opctx"
	"ctrfs/ops/savedstate"
	"ctrfs/ops/testhooks"
)

// Restores whose memory CRIU's lazy-pages daemon copies in (lazypages):
// a move's target restoring from the precopy it unpacked (Incoming.Start),
// and the target of a post-copy move, whose memory is still on the source
// (StartLazy; see cluster/postcopy.go).

// LazyState is what a post-copy copy is at (lazypages.State), as cluster/
// reports it.
type LazyState = lazypages.State

const (
	LazyFilling = lazypages.Filling // running; pages still arrive
	LazyWhole   = lazypages.Whole   // every page arrived; running
	LazyFailed  = lazypages.Failed  // the copy was killed (Why says why)
)

// StartLazy restores the container from the saved state it arrived with,
// its memory left on the source, whose page server listens on addr:port
// and is known by its certificate's chain to creds' CA (lazypages/tls.go).
// It runs from here; LazyState follows the pages.
func (in *Incoming) StartLazy(ctx context.Context, addr string, port int, creds *PageServerTLS) (restoreLog []byte, err error) {
	m := in.m
	if err := m.cfg.Network.EnsureBridge(); err != nil {
		return nil, errkind.New(errkind.ErrFailed, "start "+in.name, err)
	}
	set, err := m.stored.SavedState(in.name)
	if err != nil {
		return nil, err
	}
	dir, err := m.staging.Dir(in.name, "lazyrestore", set.Manifest().Size())
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "prepare restore of "+in.name, err)
	}
	if err := m.images.Export(ctx, set.Manifest(), dir); err != nil {
		os.RemoveAll(dir)
		return nil, errkind.New(errkind.ErrFailed, "unpack the saved state of "+in.name, err)
	}
	if err := in.letRootRead(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var logs []byte
	var failures []string
	// A restore that fails before the lazy-pages daemon connects to the
	// source (CRIU's mount engine, say) can be tried again with the other
	// engine and a new daemon; after that, the source's page server is
	// spent.
	for _, mode := range m.saved.RestoreAttempts(in.name) {
		lc, err := startLazyWatcher(m, in.name, dir, addr, port, creds)
		if err != nil {
			os.RemoveAll(dir)
			if len(failures) > 0 {
				err = errkind.New(errkind.ErrFailed, fmt.Sprintf("lazy restore of %s failed %s; then %v", in.name, strings.Join(failures, "; "), err), nil)
			}
			return logs, err
		}
		testhooks.PausePoint("postcopy-restore")
		args := []string{dir, lxchelper.ArgLazyPages}
		if mode == savedstate.ModeCompat {
			args = append(args, savedstate.ModeCompat)
		}
		aoc := &opctx.Op{}
		os.Remove(filepath.Join(dir, "restore.log"))
		// The restore itself faults pages in: a source that stops
		// answering would hold it for good. Past the limit the watcher
		// ends the lazy-pages daemon and the copy.
		limited, cancel := context.WithTimeout(ctx, lazyRestoreLimit)
		giveUp := context.AfterFunc(limited, lc.GiveUp)
		err = m.containers.RunHelper(ctx, aoc, lxchelper.Restore, in.name, args...)
		giveUp() // before cancel, which would end limited too
		cancel()
		attempt := criulog.Combined(filepath.Join(dir, "restore.log"), aoc.Log)
		logs = append(logs, attempt...)
		if st, why := lc.State(); err == nil && st == LazyFailed {
			// Its memory stopped arriving during the restore: what
			// runs would read zeros where pages are missing.
			m.containers.Kill(in.name)
			err = fmt.Errorf("its memory stopped arriving during the restore: %s", why)
		}
		if err == nil {
			if mode != m.saved.RestoreMode(in.name) {
				m.saved.RememberRestoreMode(in.name, mode)
			}
			in.lazy = lc
			m.stored.DropState(in.name)
			// It runs here from now on, its memory arriving: the
			// network must send its traffic here now, not once the
			// last page is in (the source's stopped copy still has
			// its interface until then; a failed copy's source
			// announces itself again when it resumes).
			m.Announce(in.name)
			return logs, nil
		}
		why := criulog.Explain(attempt) // this attempt's cause, not an earlier one's
		if why == "" {
			why = err.Error()
		}
		failures = append(failures, fmt.Sprintf("with %s: %s", mode, why))
		lc.Stop()
		connected := criulog.Has(filepath.Join(dir, lazypages.LogFile), "Connecting to server")
		if st, serr := m.containers.Status(in.name); connected || serr != nil || st != "STOPPED" {
			break
		}
		os.Remove(filepath.Join(dir, lazypages.LogFile))
	}
	os.RemoveAll(dir)
	return logs, errkind.New(errkind.ErrFailed, "lazy restore of "+in.name+" failed "+strings.Join(failures, "; "), nil)
}

// lazyRestoreLimit bounds a lazy restore, which waits for the pages it
// touches.
const lazyRestoreLimit = 2 * time.Minute

// startLazyWatcher starts the watcher of name's copy
// (lazypages.StartWatcher), with the page server's TLS credentials staged
// for it alone: it removes them when it exits.
func startLazyWatcher(m *Moves, name, dir, addr string, port int, creds *PageServerTLS) (*lazypages.Watcher, error) {
	tlsDir, err := m.stageTLS(name, creds)
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "prepare the page server's TLS for "+name, err)
	}
	return lazypages.StartWatcher(m.cfg.HelperPath, m.lxcPath, name, dir, addr, port, tlsDir, m.log)
}

// LazyState is where a copy that StartLazy restored is at, and why it
// failed if it did.
func (in *Incoming) LazyState() (LazyState, string) {
	if in.lazy == nil {
		return LazyFailed, "it was not restored lazily"
	}
	return in.lazy.State()
}

// commitLazy tells the watcher to keep the whole copy, and waits for it.
func (in *Incoming) commitLazy() error {
	lc := in.lazy
	if st, why := in.LazyState(); st != LazyWhole {
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("cannot commit %s: its memory is %s %s", in.name, st, why), nil)
	}
	err := lc.Commit()
	in.lazy = nil
	os.RemoveAll(lc.Dir())
	if err != nil {
		return errkind.New(errkind.ErrFailed, "commit the post-copy of "+in.name, err)
	}
	return nil
}

// discardLazy has the watcher kill a copy that is not committed.
func (in *Incoming) discardLazy() {
	if in.lazy != nil {
		in.lazy.Stop()
		os.RemoveAll(in.lazy.Dir())
		in.lazy = nil
	}
}
