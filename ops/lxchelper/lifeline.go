package lxchelper

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// A helper must not outlive the daemon that started it, nor go on with
// work the daemon gave up on: a CRIU whose daemon is gone can wait for
// good (a restore whose lazy-pages daemon died with ctrfs kills its tasks
// and then waits for their init, which waits for tasks that only that CRIU
// may reap). Parent-death signals do not reach that far: LXC forks CRIU
// (and for a restore the monitor, whose child the restored init is), and
// a killed process's children are re-parented. So each helper gets a
// lifeline: the read end of a pipe whose write end only the daemon holds.
// The kernel closes that end whatever ends the daemon, and the daemon
// closes it itself to stop a helper (an abort, a CRIU past its deadline),
// writing stopByte first (stopHelper), so that the helper knows which of
// the two it was; either way the helper reads EOF, stops everything below
// it (see descendants.go), undoes what its verb leaves half done, and
// exits. (It once told them apart by whether it had been re-parented,
// but a daemon's death closes its files before its children are
// re-parented, and a helper that looked in between took a dead daemon
// for a living one.)

// lifelineEnv names the helper's file descriptor of its lifeline.
const lifelineEnv = "CTRFS_LIFELINE"

// helperStopLimit is how long the daemon waits for a helper to stop after
// closing its lifeline, before it kills the helper's session.
const helperStopLimit = StopLimit + 5*time.Second

// exitStopped is a helper's exit code when its lifeline ended its work.
const exitStopped = 3

// stopByte is what a daemon writes into a lifeline before it closes it to
// stop the helper.
const stopByte = 's'

// stopHelper stops the helper at daemonEnd's other end: at once, even in
// a dump (followLifeline).
func stopHelper(daemonEnd *os.File) {
	daemonEnd.Write([]byte{stopByte})
	daemonEnd.Close()
}

// withLifeline adds a lifeline to cmd, which must not have ExtraFiles of
// its own. The caller closes the returned end to stop the helper, and
// after cmd.Start calls started.
func withLifeline(cmd *exec.Cmd) (daemonEnd *os.File, started func(), err error) {
	helperEnd, daemonEnd, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.ExtraFiles = []*os.File{helperEnd} // fd 3
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, lifelineEnv+"=3")
	return daemonEnd, func() { helperEnd.Close() }, nil
}

// lifeline is a helper's side: whichever comes first, the helper's own
// exit or the end of the lifeline, ends the process.
type lifeline struct {
	done sync.Mutex // held for good by whichever ends the process
}

// followLifeline, in a helper that has a lifeline, becomes the subreaper
// of what the helper starts and watches the lifeline (and SIGTERM and
// SIGINT, so that `systemctl kill` ends the helper's work as well): once
// it ends, every process below is stopped, undo runs (if not nil) and the
// helper exits with exitStopped. A dump (dumping) is first let finish,
// DumpGrace at most, unless its daemon stopped it (stopHelper). Without a
// lifeline (a helper run by hand) it returns nil.
func followLifeline(undo func(), dumping bool) *lifeline {
	fd, err := strconv.Atoi(os.Getenv(lifelineEnv))
	if err != nil {
		return nil
	}
	os.Unsetenv(lifelineEnv) // not for LXC, CRIU or the container
	syscall.CloseOnExec(fd)
	if err := becomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot become the subreaper of the helper's processes:", err)
	}
	l := &lifeline{}
	type end struct {
		why     string
		stopped bool // by its daemon (stopHelper)
	}
	ended := make(chan end, 2)
	go func() {
		var b [1]byte
		f := os.NewFile(uintptr(fd), "lifeline")
		n, _ := io.ReadFull(f, b[:])
		io.Copy(io.Discard, f)
		if n == 1 && b[0] == stopByte {
			ended <- end{"its daemon stopped it", true}
		} else {
			ended <- end{"its daemon is gone", false}
		}
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() { ended <- end{why: fmt.Sprintf("it got %v", <-signals)} }()
	go func() {
		e := <-ended
		why := e.why
		l.done.Lock() // never unlocked: the helper ends here
		if dumping && !e.stopped {
			// The daemon died, or is being stopped with its helpers:
			// a dump is let finish, DumpGrace at most, since a CRIU
			// killed while it infects a task leaves that task its
			// parasite's trap to die of (SIGTRAP with no tracer), and
			// a container whose init dies that way is lost. A daemon
			// that stops the helper itself (an abort, a CRIU past its
			// deadline) has it killed at once.
			waitDescendants(DumpGrace)
		}
		stopDescendants()
		if undo != nil {
			undo()
		}
		fmt.Fprintf(os.Stderr, "the helper stopped its work: %s\n", why)
		os.Exit(exitStopped)
	}()
	return l
}

// exit is the code the helper exits with, unless its lifeline has ended
// (then it never returns: the helper exits with exitStopped).
func (l *lifeline) exit(code int) int {
	if l != nil {
		l.done.Lock()
	}
	return code
}
