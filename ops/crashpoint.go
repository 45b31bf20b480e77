package ops

import (
	"os"
	"syscall"
)

// crashAt is CTRFS_CRASH_AT, a test hook: the name of a step (such as
// "rename-moved") at which the daemon kills itself with SIGKILL, so that
// tests of recovery can stop it at each step of an operation rather than
// after guessed delays. Unset, it does nothing.
var crashAt = os.Getenv("CTRFS_CRASH_AT")

// crashPoint marks a step that a crash may follow.
func crashPoint(step string) {
	if crashAt == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not handled: this goroutine goes with the process
	}
}
