package fs

import (
	"time"

	"ctrfs/ops"
)

// hostCtl is the mount's top-level `ctl`: host-level commands (create NAME
// [--template T]). They name no container whose lock a second write could
// wait for, so there is no idle check at open.
func hostCtl(m *ops.Manager, mounted time.Time) *ctlFile {
	return &ctlFile{help: ops.HostCtlHelp, run: func(line string) error {
		cmd, err := ops.ParseHostCommand(line)
		if err != nil {
			return err
		}
		return m.RunHost(cmd)
	}, changed: func() time.Time { return mounted }}
}
