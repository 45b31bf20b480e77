package moves

import (
	"errors"
	"os/exec"
	"strings"
	"sync"
)

// dirtyTracking is asked of CRIU once: it is the kernel's (soft-dirty
// bits, CONFIG_MEM_SOFT_DIRTY) and CRIU's, neither of which changes while
// the daemon runs.
var dirtyTracking = sync.OnceValue(func() error {
	out, err := exec.Command("criu", "check", "--feature", "mem_dirty_track").CombinedOutput()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	if i := strings.LastIndex(msg, "\n"); i >= 0 {
		msg = msg[i+1:]
	}
	if msg == "" {
		msg = err.Error()
	}
	return errors.New("criu check --feature mem_dirty_track fails: " + msg)
})

// DirtyTracking is nil if CRIU can track the memory a container dirties,
// which pre-dump rounds need (CRIU's pre-dump aborts without it), or why
// not.
func DirtyTracking() error { return dirtyTracking() }
