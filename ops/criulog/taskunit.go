package criulog

import (
	"os"
	"path"
	"strings"
)

// describeTask names a task of a container by its host PID, for the
// causes of a failed dump (causes.go), read while it still runs (a
// failed dump leaves it running): "task PID (COMMAND, of UNIT)", and the
// systemd unit it runs under, whose settings are what an operator
// changes; "its unit" when it has none or is gone.
func describeTask(pid string) (task, unit string) {
	task, unit = "task "+pid, "its unit"
	comm, err := os.ReadFile("/proc/" + pid + "/comm")
	if err != nil {
		return task, unit
	}
	if u := TaskUnit(pid); u != "" {
		return task + " (" + strings.TrimSpace(string(comm)) + ", of " + u + ")", u
	}
	return task + " (" + strings.TrimSpace(string(comm)) + ")", unit
}

// TaskUnit is the systemd unit that the task of host PID pid runs under
// (its cgroups say), or "".
func TaskUnit(pid string) string {
	cgroups, _ := os.ReadFile("/proc/" + pid + "/cgroup")
	return unitOfCgroups(string(cgroups))
}

// unitOfCgroups is the systemd unit in a /proc/PID/cgroup: the innermost
// service or scope of any hierarchy's path (systemd in a container keeps
// its units as cgroups under the container's), or "".
func unitOfCgroups(cgroups string) string {
	for _, line := range strings.Split(cgroups, "\n") {
		fields := strings.SplitN(line, ":", 3)
		if len(fields) != 3 {
			continue
		}
		for p := fields[2]; p != "/" && p != "." && p != ""; p = path.Dir(p) {
			if b := path.Base(p); strings.HasSuffix(b, ".service") || strings.HasSuffix(b, ".scope") {
				return b
			}
		}
	}
	return ""
}
