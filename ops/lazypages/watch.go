package lazypages

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	lxc "github.com/lxc/go-lxc"
)

// The target's side of a post-copy move (see cluster/postcopy.go): the
// container is restored with CRIU's --lazy-pages and runs at once, while
// `criu lazy-pages --page-server` fetches its memory from the source's
// lazy dump (ops/moves/lazydump.go), on demand and in the background.
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

// WatchMain is `ctrfs lazy-pages-watch LXCPATH NAME DIR ADDR PORT
// TLSDIR`, the watcher of one lazily restored copy (see the top of this
// file). TLSDIR holds its lazy-pages daemon's TLS credentials, which go
// when the watch ends.
func WatchMain(args []string) int {
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
	lazy, err := Start(dir, append(server, criuArgs(TLSOptions(tlsDir))...)...)
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
		for _, pid := range append(CRIUPids(dir), holdingPids(dir)...) {
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
				why = err.Error() // Daemon.verdict: CRIU's cause, or the signal
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
