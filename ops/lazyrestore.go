package ops

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"ctrfs/ops/criulog"
)

// A lazy restore: CRIU restores the processes without their memory, and
// its lazy-pages daemon copies the pages in through userfaultfd, those the
// processes touch first, the rest in the background. The restore itself
// then takes a fraction of the time; the daemon, started before it is
// needed, has every page in moments later.
//
// The danger: a process whose userfaultfd handler is gone gets zero-filled
// pages where its memory was. So a lazily restored container must not run
// until its daemon has copied every page (it is restored frozen), and if
// the daemon ends any other way the container is killed and what it was
// restored from is kept.

const (
	lazyPagesLog    = "lazy-pages.log"
	lazyPagesSocket = "lazy-pages.socket" // in the images directory, CRIU's work directory
	lazyPagesReady  = 10 * time.Second    // for the daemon to listen
)

// LazyPagesDaemon is `criu lazy-pages` serving one restore from the images
// in its directory, in a session of its own. It dies with the daemon that
// started it (SIGKILL as its parent dies): its container is restored
// frozen and runs only once every page is in (Start waits for that), so a
// daemon killed before then leaves an incoming copy that is discarded when
// it starts again, and a lazy-pages daemon waiting for it would wait for
// good.
type LazyPagesDaemon struct {
	cmd    *exec.Cmd
	dir    string
	done   chan struct{}
	failed chan struct{} // closed with done if err is not nil
	err    error         // set before done is closed
}

// StartLazyPages starts CRIU's lazy-pages daemon for the images in dir,
// with extra arguments (a page server's address, say), and returns once
// it listens for the restore.
func StartLazyPages(dir string, extra ...string) (*LazyPagesDaemon, error) {
	socket := filepath.Join(dir, lazyPagesSocket)
	os.Remove(socket)
	os.Remove(filepath.Join(dir, lazyPagesLog))
	args := append([]string{"lazy-pages", "-D", dir, "-o", lazyPagesLog, "-v4"}, extra...)
	cmd := exec.Command("criu", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	d := &LazyPagesDaemon{cmd: cmd, dir: dir, done: make(chan struct{}), failed: make(chan struct{})}
	startErr := make(chan error)
	go func() {
		// The parent-death signal comes when the thread that started
		// the process ends, not the process: the thread stays locked to
		// this goroutine until the daemon has exited.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			startErr <- err
			return
		}
		startErr <- nil
		if d.err = d.verdict(cmd.Wait()); d.err != nil {
			close(d.failed)
		}
		close(d.done)
	}()
	if err := <-startErr; err != nil {
		return nil, fmt.Errorf("criu lazy-pages: %w", err)
	}
	for deadline := time.Now().Add(lazyPagesReady); ; time.Sleep(2 * time.Millisecond) {
		if fileExists(socket) {
			return d, nil
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("criu lazy-pages ended before the restore: %v", d.err)
		default:
		}
		if time.Now().After(deadline) {
			d.Kill()
			<-d.done
			return nil, fmt.Errorf("criu lazy-pages did not listen within %s", lazyPagesReady)
		}
	}
}

// Pid is the daemon's process id.
func (d *LazyPagesDaemon) Pid() int { return d.cmd.Process.Pid }

// Wait waits for the daemon to end. It is nil only if the daemon copied
// every page of every process it served.
func (d *LazyPagesDaemon) Wait() error {
	<-d.done
	return d.err
}

// Kill ends the daemon (for a restore that failed: it would wait for good).
func (d *LazyPagesDaemon) Kill() { d.cmd.Process.Kill() }

// Log is the daemon's CRIU log, for `log`.
func (d *LazyPagesDaemon) Log() []byte {
	return criulog.Combined(filepath.Join(d.dir, lazyPagesLog), nil)
}

// verdict says how the daemon ended. It exits 0 only once every process
// it served has all its pages or has exited (CRIU's uffd.c
// handle_requests); killed, or failing to copy, it does not.
func (d *LazyPagesDaemon) verdict(err error) error {
	if err == nil {
		return nil
	}
	log, _ := os.ReadFile(filepath.Join(d.dir, lazyPagesLog))
	why := err.Error()
	if e := criulog.Explain(log); e != "" {
		why += ": " + e
	}
	return errors.New("criu lazy-pages " + why)
}

// startLazyPages starts the lazy-pages daemon of one restore attempt in
// dir; another starter (with a page server's address) can take its place.
type startLazyPages func(dir string) (*LazyPagesDaemon, error)

func localLazyPages(dir string) (*LazyPagesDaemon, error) { return StartLazyPages(dir) }

// awaitLazyPages waits until the lazy-pages daemon of a container restored
// lazily (and frozen) has copied in every page. If it has not, the
// container is killed before it can run on zero-filled memory; the caller
// keeps what it was restored from. The daemon's log goes into the `log`.
func (m *Manager) awaitLazyPages(oc *opContext, name string, d *LazyPagesDaemon) error {
	// Like every CRIU run, it has a deadline (see criulimit.go).
	limit := criuLimit(dirSize(d.dir))
	overdue := time.AfterFunc(limit, d.Kill)
	err := d.Wait()
	if !overdue.Stop() && err != nil {
		err = fmt.Errorf("criu lazy-pages did not finish within %s, so it was killed", limit.Round(time.Second))
	}
	oc.setLog(append(oc.log, d.Log()...))
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("the lazy restore of %s did not get all its memory (%v)", name, err)
	if kerr := m.kill(name); kerr != nil {
		return newError(ErrFailed, fmt.Sprintf("%s, and stopping it failed: %v", msg, kerr), nil)
	}
	return newError(ErrFailed, msg+"; it was stopped", nil)
}
