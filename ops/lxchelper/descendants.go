package lxchelper

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// A helper's work is the processes below it: LXC's forks (the monitor of
// a container it starts or restores), CRIU, CRIU's action scripts and tar,
// and the tasks of a container that CRIU restores (children of LXC's
// fork). The helper is their subreaper, so that none of them leaves its
// subtree while it lives, not even one whose parent exits (LXC's daemonized
// start, CRIU's restored tasks once CRIU is killed): stopDescendants can
// then find and end every one.

// becomeSubreaper makes this process the subreaper of its descendants.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// Descendants are the live processes below pid (zombies left out: they
// are gone but for their exit status).
func Descendants(pid int) []procfs.Proc {
	all, err := procfs.AllProcs()
	if err != nil {
		return nil
	}
	children := map[int][]procfs.Proc{}
	for _, p := range all {
		st, err := p.Stat()
		if err != nil || st.State == "Z" {
			continue
		}
		children[st.PPID] = append(children[st.PPID], p)
	}
	var out []procfs.Proc
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0].PID]...)
	}
	return out
}

const (
	// lxcCleanupLimit is how long LXC's own processes below a helper
	// get, once CRIU and the container's tasks are killed, to clean up
	// after them (a restore's cgroups, a monitor whose container died)
	// and exit, before they are killed too.
	lxcCleanupLimit = 3 * time.Second
	// StopLimit bounds stopDescendants: a process in uninterruptible
	// sleep dies only when it wakes.
	StopLimit = 15 * time.Second
)

// stopDescendants kills every process below this one and returns once
// none is left (or StopLimit has passed, saying which are left). Whatever
// is not a fork of this binary goes at once: CRIU, its scripts, tar, a
// container's tasks. LXC's forks get lxcCleanupLimit to end by themselves
// first: a restore's fork cleans up when its CRIU dies, a monitor when its
// container's init does.
func stopDescendants() {
	self, _ := procfs.Self()
	own, _ := self.Executable()
	start := time.Now()
	for {
		procs := Descendants(os.Getpid())
		if len(procs) == 0 {
			return
		}
		if time.Since(start) > StopLimit {
			var left []string
			for _, p := range procs {
				comm, _ := p.Comm()
				left = append(left, fmt.Sprintf("%d (%s)", p.PID, comm))
			}
			fmt.Fprintf(os.Stderr, "processes below the helper still alive after %s: %v\n", StopLimit, left)
			return
		}
		for _, p := range procs {
			if exe, err := p.Executable(); err != nil || exe != own || time.Since(start) > lxcCleanupLimit {
				syscall.Kill(p.PID, syscall.SIGKILL)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// DumpGrace is how long a CRIU dump whose daemon died is let finish before
// it is killed (see followLifeline, ops/leftovers.go): a dump of a few GiB
// takes seconds here.
const DumpGrace = time.Minute

// waitDescendants returns once no process is left below this one, or
// after limit.
func waitDescendants(limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(Descendants(os.Getpid())) == 0 {
			return
		}
	}
}

// Gone says whether pid has exited (a zombie has).
func Gone(pid int) bool {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return true
	}
	st, err := p.Stat()
	return err != nil || st.State == "Z"
}
