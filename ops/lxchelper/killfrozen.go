package lxchelper

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	lxc "github.com/lxc/go-lxc"
)

// KillFrozen kills a frozen container without letting any of its tasks
// run again: each gets SIGKILL while frozen, and only then is the freezer
// thawed, so that they leave the freezer's trap for the signal's exit
// path, not for user space. A frozen container whose state lives on
// elsewhere (a checkpoint proven, a move's target) must not write a byte
// more to its rootfs. LXC's stop thaws first and kills init alone, which
// lets the other tasks run until the kernel kills them with init.
func KillFrozen(c *lxc.Container, wait time.Duration) error {
	pid := c.InitPid()
	if pid <= 0 || !c.Running() {
		return nil
	}
	if err := SignalNamespace(pid, syscall.SIGKILL); err != nil {
		return err
	}
	// A freezer already thawed (a rehearsal's copy, thawed where its
	// tasks are) may leave nothing to thaw here: the wait decides.
	thawErr := ThawAfterDump(c, pid)
	if !c.Wait(lxc.STOPPED, wait) {
		if thawErr != nil {
			return fmt.Errorf("thaw %s to let its killed tasks exit: %w", c.Name(), thawErr)
		}
		return fmt.Errorf("%s is still %s %s after it was killed", c.Name(), c.State(), wait)
	}
	return nil
}

// SignalNamespace sends sig to every process in the pid namespace whose
// init is pid.
func SignalNamespace(pid int, sig syscall.Signal) error {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return err
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); err == nil && other == ns {
			syscall.Kill(p, sig)
		}
	}
	return nil
}
