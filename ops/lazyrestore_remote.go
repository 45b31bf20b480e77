package ops

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	lxc "github.com/lxc/go-lxc"
)

// The target's side of a post-copy move (see cluster/postcopy.go): the
// container is restored with CRIU's --lazy-pages and runs at once, while
// `criu lazy-pages --page-server` fetches its memory from the source's
// lazy dump (lazydump.go), on demand and in the background.
//
// A restored copy whose lazy-pages daemon ends without every page must
// not run on: the pages that never arrived read as zeros. CRIU does not
// see to that, so a watcher process (`ctrfs lazy-pages-watch`, one per
// copy, outside the daemon) runs the lazy-pages daemon and kills the copy
// when it fails. It also kills the copy if this daemon dies or gives up
// before committing it: its stdin is a pipe from the daemon, and the copy
// is kept only after a "commit" line, which the daemon writes once the
// source has let go. Its stdout says "ready" (the daemon listens for the
// restore), then "whole" or "failed: WHY".

// LazyState is what a post-copy copy is at.
type LazyState string

const (
	LazyFilling LazyState = "filling" // running; pages still arrive
	LazyWhole   LazyState = "whole"   // every page arrived; running
	LazyFailed  LazyState = "failed"  // the copy was killed (Why says why)
)

// lazyCopy is a container restored lazily here, with its watcher.
type lazyCopy struct {
	m     *Manager
	name  string
	dir   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner

	mu    sync.Mutex
	st    LazyState
	why   string
	ended chan struct{} // the watcher's stdout closed
}

// StartLazy restores the container from the saved state it arrived with,
// its memory left on the source, whose page server listens on addr:port
// and is known by its certificate's chain to creds' CA (pagetls.go). It
// runs from here; LazyState follows the pages.
func (in *Incoming) StartLazy(addr string, port int, creds *PageServerTLS) (restoreLog []byte, err error) {
	m := in.m
	if err := m.cfg.Network.EnsureBridge(); err != nil {
		return nil, newError(ErrFailed, "start "+in.name, err)
	}
	set, err := m.SavedState(in.name)
	if err != nil {
		return nil, err
	}
	dir, err := m.stagingDir(in.name, "lazyrestore", set.manifest.Size())
	if err != nil {
		return nil, newError(ErrFailed, "prepare restore of "+in.name, err)
	}
	if err := m.images.Export(set.manifest, dir); err != nil {
		os.RemoveAll(dir)
		return nil, newError(ErrFailed, "unpack the saved state of "+in.name, err)
	}
	var logs []byte
	var failures []string
	// A restore that fails before the lazy-pages daemon connects to the
	// source (CRIU's mount engine, say) can be tried again with the other
	// engine and a new daemon; after that, the source's page server is
	// spent.
	for _, mode := range m.restoreAttempts(in.name) {
		lc, err := startLazyWatcher(m, in.name, dir, addr, port, creds)
		if err != nil {
			os.RemoveAll(dir)
			if len(failures) > 0 {
				err = newError(ErrFailed, fmt.Sprintf("lazy restore of %s failed %s; then %v", in.name, strings.Join(failures, "; "), err), nil)
			}
			return logs, err
		}
		pausePoint("postcopy-restore")
		args := []string{dir, restoreLazy}
		if mode == modeCompat {
			args = append(args, modeCompat)
		}
		aoc := &opContext{}
		os.Remove(filepath.Join(dir, "restore.log"))
		// The restore itself faults pages in: a source that stops
		// answering would hold it for good. Past the limit the watcher
		// ends the lazy-pages daemon and the copy.
		limit := time.AfterFunc(lazyRestoreLimit, func() { lc.stdin.Close() })
		err = m.runHelper(aoc, "restore", in.name, args...)
		limit.Stop()
		attempt := criuLog(filepath.Join(dir, "restore.log"), aoc.log)
		logs = append(logs, attempt...)
		if st, why := lc.state(); err == nil && st == LazyFailed {
			// Its memory stopped arriving during the restore: what
			// runs would read zeros where pages are missing.
			m.kill(in.name)
			err = fmt.Errorf("its memory stopped arriving during the restore: %s", why)
		}
		if err == nil {
			if mode != m.restoreMode(in.name) {
				m.rememberRestoreMode(in.name, mode)
			}
			in.lazy = lc
			m.dropState(in.name)
			// It runs here from now on, its memory arriving: the
			// network must send its traffic here now, not once the
			// last page is in (the source's stopped copy still has
			// its interface until then; a failed copy's source
			// announces itself again when it resumes).
			m.Announce(in.name)
			return logs, nil
		}
		why := explainCRIU(attempt) // this attempt's cause, not an earlier one's
		if why == "" {
			why = err.Error()
		}
		failures = append(failures, fmt.Sprintf("with %s: %s", mode, why))
		lc.stop()
		connected := logHas(filepath.Join(dir, "lazy-pages.log"), "Connecting to server")
		if st, serr := m.Status(in.name); connected || serr != nil || st != "STOPPED" {
			break
		}
		os.Remove(filepath.Join(dir, "lazy-pages.log"))
	}
	os.RemoveAll(dir)
	return logs, newError(ErrFailed, "lazy restore of "+in.name+" failed "+strings.Join(failures, "; "), nil)
}

// lazyRestoreLimit bounds a lazy restore, which waits for the pages it
// touches.
const lazyRestoreLimit = 2 * time.Minute

// startLazyWatcher starts the watcher and waits until its lazy-pages
// daemon listens for the restore. The TLS credentials are staged for it
// alone: it removes them when it exits.
func startLazyWatcher(m *Manager, name, dir, addr string, port int, creds *PageServerTLS) (*lazyCopy, error) {
	tlsDir, err := m.stageTLS(name, creds)
	if err != nil {
		return nil, newError(ErrFailed, "prepare the page server's TLS for "+name, err)
	}
	cmd := exec.Command(m.cfg.HelperPath, "lazy-pages-watch", m.cfg.LXCPath, name, dir, addr, strconv.Itoa(port), tlsDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err == nil {
		var stdout io.ReadCloser
		if stdout, err = cmd.StdoutPipe(); err == nil {
			cmd.Stderr = nil
			if err = cmd.Start(); err == nil {
				lc := &lazyCopy{m: m, name: name, dir: dir, cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout),
					st: LazyFilling, ended: make(chan struct{})}
				if lc.lines.Scan() && lc.lines.Text() == "ready" {
					go lc.follow()
					return lc, nil
				}
				why := strings.TrimPrefix(lc.lines.Text(), "failed: ")
				stdin.Close()
				cmd.Wait()
				return nil, newError(ErrFailed, "start CRIU's lazy-pages daemon for "+name+": "+why, nil)
			}
		}
	}
	os.RemoveAll(tlsDir) // no watcher started to remove it
	return nil, newError(ErrFailed, "start the lazy-pages watcher of "+name, err)
}

// follow reads the watcher's reports until it exits.
func (lc *lazyCopy) follow() {
	defer close(lc.ended)
	for lc.lines.Scan() {
		line := lc.lines.Text()
		lc.mu.Lock()
		if line == "whole" {
			lc.st = LazyWhole
		} else if why, ok := strings.CutPrefix(line, "failed: "); ok {
			lc.st, lc.why = LazyFailed, why
			lc.m.log.Warn("the lazy-pages daemon of a post-copy move ended without every page; its watcher killed its copy",
				"container", lc.name, "why", why)
		}
		lc.mu.Unlock()
	}
	lc.mu.Lock()
	if lc.st == LazyFilling {
		lc.st, lc.why = LazyFailed, "its watcher ended"
	}
	lc.mu.Unlock()
}

// stop has the watcher kill the copy (unless it was committed) and waits
// for it.
func (lc *lazyCopy) stop() {
	lc.stdin.Close()
	<-lc.ended
	lc.cmd.Wait()
}

// LazyState is where a copy that StartLazy restored is at, and why it
// failed if it did.
func (in *Incoming) LazyState() (LazyState, string) {
	if in.lazy == nil {
		return LazyFailed, "it was not restored lazily"
	}
	return in.lazy.state()
}

func (lc *lazyCopy) state() (LazyState, string) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.st, lc.why
}

// commitLazy tells the watcher to keep the whole copy, and waits for it.
func (in *Incoming) commitLazy() error {
	lc := in.lazy
	if st, why := in.LazyState(); st != LazyWhole {
		return newError(ErrFailed, fmt.Sprintf("cannot commit %s: its memory is %s %s", in.name, st, why), nil)
	}
	_, err := io.WriteString(lc.stdin, "commit\n")
	lc.stop()
	in.lazy = nil
	os.RemoveAll(lc.dir)
	if err != nil {
		return newError(ErrFailed, "commit the post-copy of "+in.name, err)
	}
	return nil
}

// discardLazy has the watcher kill a copy that is not committed.
func (in *Incoming) discardLazy() {
	if in.lazy != nil {
		in.lazy.stop()
		os.RemoveAll(in.lazy.dir)
		in.lazy = nil
	}
}

// LazyWatchMain is `ctrfs lazy-pages-watch LXCPATH NAME DIR ADDR PORT
// TLSDIR`, the watcher of one lazily restored copy (see the top of this
// file). TLSDIR holds its lazy-pages daemon's TLS credentials, which go
// when the watch ends.
func LazyWatchMain(args []string) int {
	if len(args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs lazy-pages-watch LXCPATH NAME DIR ADDR PORT TLSDIR")
		return 2
	}
	defer os.RemoveAll(args[5])
	return lazyWatch(args[0], args[1], args[2], args[3], args[4], args[5])
}

func lazyWatch(lxcpath, name, dir, addr, port, tlsDir string) int {
	// The daemon may be gone: its pipe breaking must not end the watch.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	report := func(s string) { fmt.Println(s) }
	server := []string{"--page-server", "--address", addr, "--port", port}
	lazy, err := StartLazyPages(dir, append(server, criuArgs(criuTLS(tlsDir))...)...)
	if err != nil {
		report("failed: " + err.Error())
		return 1
	}
	exited := make(chan error, 1)
	go func() { exited <- lazy.Wait() }()
	report("ready")

	committed := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "commit" {
				committed <- true
				return
			}
		}
		committed <- false
	}()
	kill := func() {
		lazy.Kill()
		// A restore under way waits for the pages it touches, on a
		// userfaultfd that CRIU's restore holds too: the lazy-pages
		// daemon's end does not release it. Killing CRIU's restore
		// (the container's init until the restore is done) ends it;
		// tasks it had begun to restore hold its log open until it is
		// done, and are killed with it (their pid namespace's init
		// among them takes the rest).
		for _, pid := range append(criuPids(dir), holdingPids(dir)...) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if c, err := lxc.NewContainer(name, lxcpath); err == nil {
			if c.Running() {
				c.Stop()
			}
			c.Release()
		}
	}
	whole := false
	for {
		select {
		case err := <-exited:
			exited = nil
			if err == nil && running(lxcpath, name) {
				whole = true
				report("whole")
				continue
			}
			why := "the container stopped while its memory arrived"
			if err != nil {
				why = err.Error() // LazyPagesDaemon.verdict: CRIU's cause, or the signal
			}
			kill()
			report("failed: " + why)
			// A restore still under way may start it yet: it goes
			// again until the daemon lets the watch end.
			for {
				select {
				case <-committed:
					kill()
					return 1
				case <-time.After(100 * time.Millisecond):
					if running(lxcpath, name) {
						kill()
					}
				}
			}
		case ok := <-committed:
			if ok && whole {
				return 0
			}
			// The daemon gave up on the copy, or went away.
			kill()
			return 1
		}
	}
}

func running(lxcpath, name string) bool {
	c, err := lxc.NewContainer(name, lxcpath)
	if err != nil {
		return false
	}
	defer c.Release()
	return c.Running()
}
