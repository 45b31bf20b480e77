package lxchelper

import (
	"fmt"
	"os"
	"time"

	"ctrfs/ops/errkind"
)

// CRIU can wait for good: on a lazy-pages daemon that died (see
// lifeline.go), on a page server that stopped answering, on a task in
// uninterruptible sleep. So every CRIU run ctrfs starts has a deadline in
// proportion to its work, the bytes of images it writes or reads: past
// it, CRIU is killed with the helper that runs it, what it left half done
// is undone, and the operation fails saying so.
const (
	criuLimitBase = time.Minute
	// criuLimitRate is slower than any disk, tmpfs or network that
	// CRIU has been seen to work at here, even on a loaded host.
	criuLimitRate = 4 << 20 // bytes a second
)

// criuLimitHook is CTRFS_CRIU_LIMIT, a test hook: a duration that takes
// the place of the whole deadline, whatever the work, so that tests of the
// deadline need not wait a minute, nor the share of a container's memory
// (16 s for the 64 MiB of a busybox container's dump). Unset, it does
// nothing.
var criuLimitHook, _ = time.ParseDuration(os.Getenv("CTRFS_CRIU_LIMIT"))

// CRIULimit is the deadline of a CRIU run over work bytes of images.
func CRIULimit(work int64) time.Duration {
	if criuLimitHook > 0 {
		return criuLimitHook
	}
	return criuLimitBase + time.Duration(float64(work)/criuLimitRate*float64(time.Second))
}

// OverdueError is a helper's CRIU that was killed at its deadline. It is
// an ErrFailed.
type OverdueError struct {
	verb  Verb
	name  string
	limit time.Duration
	work  int64
}

func (e *OverdueError) Error() string {
	what := "restore"
	switch e.verb {
	case Checkpoint, CheckpointRunning, CheckpointHeld:
		what = "dump"
	case RestoreRehearsal:
		what = "restore rehearsal"
	case PreDump:
		what = "pre-dump"
	case CheckpointLazy:
		what = "lazy dump"
	}
	return fmt.Sprintf("CRIU did not finish the %s of %s within %s (the limit for %d MiB of images), so it was killed",
		what, e.name, e.limit.Round(time.Second), e.work>>20)
}

func (e *OverdueError) Is(target error) bool { return target == errkind.ErrFailed }
