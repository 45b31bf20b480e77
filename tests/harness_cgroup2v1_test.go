package tests

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// A daemon on the cgroup2-only view (Cgroup2Only) and its containers
// still have cgroups in the host's v1 hierarchies, which that view does
// not show and LXC does not make there: left where the test runs, at the
// root of most. CRIU records every v1 cgroup below a container's (from
// the root of its cgroup namespace), so it walked the cgroups of every
// other container on the machine: a dump failed when one of them went
// meanwhile ("Failed opening .../lxc.payload.c1-58/notify_on_release"),
// and a restore made again those that had gone, empty, for good. So such
// a daemon runs in v1 cgroups of its own, below the test's, which cleanup
// removes with whatever CRIU made in them. A real cgroup2-only host has
// no v1 hierarchies.

// ownV1Cgroups makes the daemon's v1 cgroups, once, and returns them.
func (d *Daemon) ownV1Cgroups() []string {
	d.t.Helper()
	if d.v1Cgroups != nil {
		return d.v1Cgroups
	}
	name := fmt.Sprintf("ctrfs-test-%d-%s-%d", testLane, d.Name, time.Now().UnixNano())
	for _, parent := range testV1Cgroups(d.t) {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			d.t.Fatal(err)
		}
		d.v1Cgroups = append(d.v1Cgroups, dir)
		// A new cpuset takes no task until it has CPUs and memory nodes.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(parent, f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					d.t.Fatal(err)
				}
			}
		}
	}
	return d.v1Cgroups
}

// testV1Cgroups are this process's cgroups in the v1 hierarchies mounted
// here, as directories.
func testV1Cgroups(t interface{ Fatal(...any) }) []string {
	own := map[string]string{} // controller or name=NAME: path
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) == 3 && f[1] != "" {
			for _, c := range strings.Split(f[1], ",") {
				own[c] = f[2]
			}
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, l := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 3 || b[0] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(b[2], ",") {
			if path, ok := own[opt]; ok {
				// The mount shows its hierarchy from a[3] down.
				if rel, ok := strings.CutPrefix(path, a[3]); ok {
					dirs = append(dirs, filepath.Join(a[4], rel))
				}
				break
			}
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// removeV1Cgroups removes the daemon's v1 cgroups and those below, once
// the last of its processes (the containers' monitors, after lxc-stop)
// has left them.
func (d *Daemon) removeV1Cgroups() {
	for _, top := range d.v1Cgroups {
		var dirs []string
		filepath.WalkDir(top, func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		slices.Reverse(dirs) // the deepest first
		for _, dir := range dirs {
			err := syscall.Rmdir(dir)
			for deadline := time.Now().Add(10 * time.Second); errors.Is(err, syscall.EBUSY) && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond)
				err = syscall.Rmdir(dir)
			}
			if err != nil && !errors.Is(err, syscall.ENOENT) {
				procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
				d.t.Errorf("remove the cgroup %s of daemon %s: %v (processes left: %s)", dir, d.Name, err, strings.Fields(string(procs)))
			}
		}
	}
	d.v1Cgroups = nil
}
