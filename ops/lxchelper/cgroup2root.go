package lxchelper

import (
	"fmt"
	"os"
	"path/filepath"
)

// LXC 5.0.2's restore gives CRIU the container's new cgroups for the v1
// hierarchies only (--cgroup-root CONTROLLERS:PATH), so CRIU restores
// the tasks into the cgroup2 cgroup that the images name: the one the
// container had where it was dumped, not the one LXC has just made for
// it. Where that is another container's (two daemons on one kernel, with
// a name LXC gave a suffix; a rehearsal beside the held container), that
// container's end removes the empty cgroups whose cgroup.events systemd
// watches, and CRIU cannot dump the restored container again ("fsnotify:
// Can't dump that handle"). So each restore names cgroup2's root itself,
// in its CRIU config (`cgroup-root :/PATH`: CRIU names cgroup2's
// controller ""): the cgroup LXC makes (payloadCgroup), or a rehearsal's
// own; and the hook that makes the recorded cgroups makes them there
// (cgroup2RootEnv).

// cgroup2RootEnv tells the make-cgroups hook cgroup2's root of the restore.
const cgroup2RootEnv = "CTRFS_CGROUP2_ROOT"

// payloadCgroup is the cgroup LXC is about to make for the container
// name: lxc.payload.NAME, or with the first suffix -N that no mounted
// hierarchy has (LXC's cgfsng tries them in that order).
func payloadCgroup(name string) (string, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return "", err
	}
	for i := 0; i < 1000; i++ {
		candidate := "lxc.payload." + name
		if i > 0 {
			candidate = fmt.Sprintf("%s-%d", candidate, i)
		}
		free := true
		for _, m := range mounts {
			if _, err := os.Stat(filepath.Join(m.dir, candidate)); err == nil {
				free = false
				break
			}
		}
		if free {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("no free cgroup name for %s", name)
}
