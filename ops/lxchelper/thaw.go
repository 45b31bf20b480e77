package lxchelper

import (
	"fmt"
	"os"
	"path/filepath"

	lxc "github.com/lxc/go-lxc"
)

// ThawAfterDump thaws the freezer cgroup that CRIU froze the container's
// tasks in (its --freeze-cgroup), and fails if it cannot. Where the host
// mounts cgroup v1's freezer, that is the container's freezer cgroup,
// which LXC thaws. Elsewhere it is the container's own cgroup2 cgroup, the
// root of init's cgroup namespace (criuDumpArgs names the same one), whose
// cgroup.freeze is written here: LXC writes it through the container's
// monitor, and the monitor of a container that LXC 5.0.2 restored on a
// cgroup2-only host knows no cgroup to write it in (see criudump.go), so
// the tasks stayed frozen while the move said they ran again.
func ThawAfterDump(c *lxc.Container, pid int) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	unified := ""
	for _, m := range mounts {
		if contains(m.controllers, "freezer") {
			return c.SetCgroupItem("freezer.state", "THAWED")
		}
		if m.id == unifiedHierarchy {
			unified = m.dir
		}
	}
	if unified == "" {
		return fmt.Errorf("no cgroup freezer is mounted")
	}
	roots, err := containerCgroups(pid)
	if err != nil {
		return err
	}
	root, ok := roots[unifiedHierarchy]
	if !ok {
		return fmt.Errorf("init (pid %d) is in no cgroup2 cgroup", pid)
	}
	return os.WriteFile(filepath.Join(unified, root, "cgroup.freeze"), []byte("0"), 0o644)
}
