package fs

import (
	"sync"
	"time"

	"ctrfs/ops"
)

// hostCtl is the mount's top-level `ctl`: host-level commands (create NAME
// [--template T]). They name no container whose lock a second write could
// wait for, so there is no idle check at open. Its times are those of the
// last command written, the mount's before any.
func hostCtl(m *ops.Manager, mounted time.Time) *ctlFile {
	var mu sync.Mutex
	last := mounted
	return &ctlFile{help: ops.HostCtlHelp,
		run: func(line string) error {
			mu.Lock()
			last = time.Now()
			mu.Unlock()
			cmd, err := ops.ParseHostCommand(line)
			if err != nil {
				return err
			}
			return m.RunHost(cmd)
		},
		changed: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return last
		}}
}
