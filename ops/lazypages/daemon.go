// Package lazypages runs CRIU's lazy pages, by which a restored container
// gets its memory after its restore: CRIU's lazy-pages daemon serving one
// restore from an images directory (daemon.go); for post-copy moves the
// TLS credentials of the source's page server (tls.go) and the watcher
// that runs the target's daemon and kills a copy whose memory stopped
// arriving (watch.go, and its daemon's end, watcher.go); and the probe of
// whether lazy pages work on this host at all (probe.go). It knows nothing
// of the store or of moves: ops hands it directories of images, names and
// a page server's address.
package lazypages

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
	LogFile         = "lazy-pages.log"    // the daemon's log, in the images directory
	lazyPagesSocket = "lazy-pages.socket" // in the images directory, CRIU's work directory
	lazyPagesReady  = 10 * time.Second    // for the daemon to listen
)

// Daemon is `criu lazy-pages` serving one restore from the images
// in its directory, in a session of its own. It dies with the daemon that
// started it (SIGKILL as its parent dies): its container is restored
// frozen and runs only once every page is in (Start waits for that), so a
// daemon killed before then leaves an incoming copy that is discarded when
// it starts again, and a lazy-pages daemon waiting for it would wait for
// good.
type Daemon struct {
	cmd    *exec.Cmd
	dir    string
	done   chan struct{}
	failed chan struct{} // closed with done if err is not nil
	err    error         // set before done is closed
}

// Start starts CRIU's lazy-pages daemon for the images in dir,
// with extra arguments (a page server's address, say), and returns once
// it listens for the restore.
func Start(dir string, extra ...string) (*Daemon, error) {
	socket := filepath.Join(dir, lazyPagesSocket)
	os.Remove(socket)
	os.Remove(filepath.Join(dir, LogFile))
	args := append([]string{"lazy-pages", "-D", dir, "-o", LogFile, "-v4"}, extra...)
	cmd := exec.Command("criu", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	d := &Daemon{cmd: cmd, dir: dir, done: make(chan struct{}), failed: make(chan struct{})}
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

// Failed is closed when the daemon has ended without copying every page:
// a restore waiting for it would wait for good.
func (d *Daemon) Failed() <-chan struct{} { return d.failed }

// Dir is the images directory the daemon serves.
func (d *Daemon) Dir() string { return d.dir }

// Pid is the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Wait waits for the daemon to end. It is nil only if the daemon copied
// every page of every process it served.
func (d *Daemon) Wait() error {
	<-d.done
	return d.err
}

// Kill ends the daemon (for a restore that failed: it would wait for good).
func (d *Daemon) Kill() { d.cmd.Process.Kill() }

// Log is the daemon's CRIU log, for `log`.
func (d *Daemon) Log() []byte {
	return criulog.Combined(filepath.Join(d.dir, LogFile), nil)
}

// verdict says how the daemon ended. It exits 0 only once every process
// it served has all its pages or has exited (CRIU's uffd.c
// handle_requests); killed, or failing to copy, it does not.
func (d *Daemon) verdict(err error) error {
	if err == nil {
		return nil
	}
	log, _ := os.ReadFile(filepath.Join(d.dir, LogFile))
	why := err.Error()
	if e := criulog.Explain(log); e != "" {
		why += ": " + e
	}
	return errors.New("criu lazy-pages " + why)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
