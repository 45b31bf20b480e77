package lazypages

import (
	"bufio"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"ctrfs/ops/errkind"
)

// State is what a post-copy copy is at.
type State string

const (
	Filling State = "filling" // running; pages still arrive
	Whole   State = "whole"   // every page arrived; running
	Failed  State = "failed"  // the copy was killed (Why says why)
)

// Watcher is the daemon's end of the watcher of a container restored
// lazily here (see watch.go): what it reports, and the commit.
type Watcher struct {
	name  string
	dir   string
	log   *slog.Logger
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner

	mu    sync.Mutex
	st    State
	why   string
	ended chan struct{} // the watcher's stdout closed
}

// StartWatcher starts the watcher (`helper lazy-pages-watch`) of the copy
// of name that is to be restored from dir, whose lazy-pages daemon fetches
// the memory from the page server at addr:port with the credentials in
// tlsDir, and waits until that daemon listens for the restore. The
// watcher removes tlsDir when it exits; if none started, this does.
func StartWatcher(helper, lxcpath, name, dir, addr string, port int, tlsDir string, log *slog.Logger) (*Watcher, error) {
	cmd := exec.Command(helper, "lazy-pages-watch", lxcpath, name, dir, addr, strconv.Itoa(port), tlsDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err == nil {
		var stdout io.ReadCloser
		if stdout, err = cmd.StdoutPipe(); err == nil {
			cmd.Stderr = nil
			if err = cmd.Start(); err == nil {
				w := &Watcher{name: name, dir: dir, log: log, cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout),
					st: Filling, ended: make(chan struct{})}
				if w.lines.Scan() && w.lines.Text() == "ready" {
					go w.follow()
					return w, nil
				}
				why := strings.TrimPrefix(w.lines.Text(), "failed: ")
				stdin.Close()
				cmd.Wait()
				return nil, errkind.New(errkind.ErrFailed, "start CRIU's lazy-pages daemon for "+name+": "+why, nil)
			}
		}
	}
	os.RemoveAll(tlsDir) // no watcher started to remove it
	return nil, errkind.New(errkind.ErrFailed, "start the lazy-pages watcher of "+name, err)
}

// follow reads the watcher's reports until it exits.
func (w *Watcher) follow() {
	defer close(w.ended)
	for w.lines.Scan() {
		line := w.lines.Text()
		w.mu.Lock()
		if line == "whole" {
			w.st = Whole
		} else if why, ok := strings.CutPrefix(line, "failed: "); ok {
			w.st, w.why = Failed, why
			w.log.Warn("the lazy-pages daemon of a post-copy move ended without every page; its watcher killed its copy",
				"container", w.name, "why", why)
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	if w.st == Filling {
		w.st, w.why = Failed, "its watcher ended"
	}
	w.mu.Unlock()
}

// Stop has the watcher kill the copy (unless it was committed) and waits
// for it.
func (w *Watcher) Stop() {
	w.stdin.Close()
	<-w.ended
	w.cmd.Wait()
}

// GiveUp has the watcher kill the copy and end, without waiting for it:
// for a restore that waits too long for its pages.
func (w *Watcher) GiveUp() { w.stdin.Close() }

// Commit tells the watcher to keep the copy, and waits for it to exit.
func (w *Watcher) Commit() error {
	_, err := io.WriteString(w.stdin, "commit\n")
	w.Stop()
	return err
}

// State is where the copy is at, and why it failed if it did.
func (w *Watcher) State() (State, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st, w.why
}

// Dir is the directory the copy was restored from.
func (w *Watcher) Dir() string { return w.dir }
