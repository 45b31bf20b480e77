package lxchelper

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	lxc "github.com/lxc/go-lxc"

	"ctrfs/ops/idmap"
)

// Why an unprivileged container's cgroups are delegated again after a
// restore: at start LXC hands the container's root the files that move
// tasks between its cgroups (cgfsng chown_cgroup_wrapper: in each
// hierarchy the container's cgroup 0775 and cgroup.procs, v1's tasks and
// cgroup2's delegatable files, /sys/kernel/cgroup/delegate, 0664, all of
// group the mapped root), but LXC 5.0.2's restore does not, and CRIU
// brings back the directory's owner and cgroup.subtree_control, not
// cgroup.procs or cgroup.threads. systemd in a restored container could
// then not put a new unit's tasks into their cgroup (systemd-run exits
// 219, EXIT_CGROUP; a restarted cron stayed "activating"): moving a task
// wants write access to the common ancestor's cgroup.procs.

// redelegateCgroups gives the container's root its cgroups as LXC's start
// does, if the container is unprivileged. What it cannot do is said in
// the LXC log (the container runs restored; failing now would not stop it).
func redelegateCgroups(c *lxc.Container) {
	var lines []string
	for _, l := range c.ConfigItem("lxc.idmap") {
		lines = append(lines, "lxc.idmap = "+l)
	}
	m, ok, err := idmap.FromConfig([]byte(strings.Join(lines, "\n")))
	if !ok {
		return
	}
	var mounts []cgroupMount
	var roots map[string]string
	if err == nil {
		mounts, err = cgroupMounts()
	}
	if err == nil {
		roots, err = containerCgroups(c.InitPid())
	}
	var failed []string
	if err != nil {
		failed = append(failed, err.Error())
	}
	for _, mnt := range mounts {
		root, found := roots[mnt.id]
		if !found {
			continue
		}
		dir := filepath.Join(mnt.dir, root)
		if err := chownMod(dir, m.GID, 0o775); err != nil {
			failed = append(failed, err.Error())
			continue
		}
		files := []string{"tasks", "cgroup.procs"}
		if mnt.id == unifiedHierarchy {
			files = delegatable()
		}
		for _, f := range files {
			if err := chownMod(filepath.Join(dir, f), m.GID, 0o664); err != nil && !os.IsNotExist(err) {
				failed = append(failed, err.Error())
			}
		}
	}
	if len(failed) > 0 {
		msg := fmt.Sprintf("%s was restored, but its root may not manage its cgroups: %s", c.Name(), strings.Join(failed, "; "))
		fmt.Fprintln(os.Stderr, msg)
		appendToLog(c.LogFile(), "WARN", msg)
	}
}

// delegatable are cgroup2's files that a delegated cgroup's owner gets
// (cgroup.procs, cgroup.threads, cgroup.subtree_control, ...).
func delegatable() []string {
	data, err := os.ReadFile("/sys/kernel/cgroup/delegate")
	if err != nil {
		return []string{"cgroup.procs", "cgroup.threads", "cgroup.subtree_control"}
	}
	return strings.Fields(string(data))
}

// chownMod gives path to group gid (its owner kept) with mode.
func chownMod(path string, gid uint32, mode os.FileMode) error {
	if err := os.Chown(path, -1, int(gid)); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
