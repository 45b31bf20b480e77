package fs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// removalGuard keeps rm -r, rm -rf, find -delete, os.RemoveAll and mv to
// another filesystem (copy, then rm) from destroying a container or its
// snapshots. They all remove a directory's entries before the directory;
// control files refuse unlink (EPERM), and then a process that was refused
// one inside a container is tearing the tree down, not asking for the
// container to go: its rmdir of that container or of one of its snapshots
// fails with ENOTEMPTY, which is what a directory that still lists entries
// answers anywhere. GNU rm does not even try that rmdir; find -delete and
// os.RemoveAll do. A deliberate `rmdir containers/c1` is a process that was
// refused nothing there, and goes through.
//
// Processes are told apart by thread group and start time (a pid is
// reused); one is forgotten when it has exited.
type removalGuard struct {
	mu      sync.Mutex
	refused map[string]map[process]bool // container name -> processes
}

type process struct {
	tgid  int
	start uint64 // clock ticks after boot, /proc/PID/stat field 22
}

func newRemovalGuard() *removalGuard {
	return &removalGuard{refused: map[string]map[process]bool{}}
}

// refuse records that the caller was refused a removal inside the
// container, and returns the errno for that refusal.
func (g *removalGuard) refuse(ctx context.Context, container string) syscall.Errno {
	p, ok := caller(ctx)
	if !ok {
		return syscall.EPERM
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused[container][p] {
		return syscall.EPERM
	}
	g.forgetExited()
	set := g.refused[container]
	if set == nil {
		set = map[process]bool{}
		g.refused[container] = set
	}
	set[p] = true
	return syscall.EPERM
}

// allowRmdir is ENOTEMPTY for a caller that was refused a removal inside
// the container, else 0.
func (g *removalGuard) allowRmdir(ctx context.Context, container string) syscall.Errno {
	p, ok := caller(ctx)
	if !ok {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused[container][p] {
		return syscall.ENOTEMPTY
	}
	return 0
}

// forgetExited drops processes that have exited. Called with mu held.
func (g *removalGuard) forgetExited() {
	for name, set := range g.refused {
		for p := range set {
			if start, err := startTime(p.tgid); err != nil || start != p.start {
				delete(set, p)
			}
		}
		if len(set) == 0 {
			delete(g.refused, name)
		}
	}
}

// caller identifies the process behind a request. FUSE gives the calling
// thread's id; the thread group is the process.
func caller(ctx context.Context) (process, bool) {
	c, ok := fuse.FromContext(ctx)
	if !ok || c.Pid == 0 {
		return process{}, false // from another pid namespace
	}
	tgid, err := threadGroup(int(c.Pid))
	if err != nil {
		return process{}, false
	}
	start, err := startTime(tgid)
	if err != nil {
		return process{}, false
	}
	return process{tgid: tgid, start: start}, true
}

func threadGroup(tid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no Tgid in /proc/%d/status", tid)
}

func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// fields after its closing one. Field 22 is the 20th after it.
	i := bytes.LastIndexByte(b, ')')
	fields := strings.Fields(string(b[i+1:]))
	if i < 0 || len(fields) < 20 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}
