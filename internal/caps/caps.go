// Package caps reads a process's effective capabilities from /proc: ops's
// check, the end-to-end tests and ctrfs-bench ask whether this host's root
// has CAP_SYS_RESOURCE, without which CRIU may not read the limits of a
// task of another user (ENVIRONMENT.md: some VMs' root lacks it).
package caps

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// SysResource is CAP_SYS_RESOURCE's bit in /proc/PID/status's masks.
const SysResource = 24

// Has says whether process pid has capability bit in its effective set;
// false when that cannot be read.
func Has(pid, bit int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<bit) != 0
		}
	}
	return false
}

// CheckpointOtherUsers says whether CRIU, run by this process's user, can
// checkpoint tasks of other users: whether it has CAP_SYS_RESOURCE.
func CheckpointOtherUsers() bool { return Has(os.Getpid(), SysResource) }
