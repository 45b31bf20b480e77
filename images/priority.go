package images

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// storeNice is the nice value of the threads that store a checkpoint or
// hand its images back: above ordinary work, below CRIU's dump (-10, see
// ops.checkpoint). What they do is bounded, and while they do it a
// container is frozen, stopped or waiting for its restore; on a busy host
// they otherwise wait behind every other process for the CPU, and a
// checkpoint's tail or a restore takes as long as the load lets it.
const storeNice = -5

// boostThread raises the priority of the calling goroutine's thread, locked
// to it, until the returned function puts it back and unlocks it:
// `defer boostThread()()`. Best effort: without CAP_SYS_NICE the thread
// keeps its priority.
func boostThread() (restore func()) {
	runtime.LockOSThread()
	// On Linux, PRIO_PROCESS with 0 is the calling thread only, and the
	// system call returns 20 - nice.
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil || unix.Setpriority(unix.PRIO_PROCESS, 0, storeNice) != nil {
		return runtime.UnlockOSThread
	}
	return func() {
		// Lowering a priority cannot be refused; if it were, the
		// thread stays locked and ends with its goroutine, so the
		// priority reaches no other.
		if unix.Setpriority(unix.PRIO_PROCESS, 0, 20-raw) == nil {
			runtime.UnlockOSThread()
		}
	}
}
