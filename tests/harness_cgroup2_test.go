package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Real Debian hosts mount cgroup2 alone at /sys/fs/cgroup; these machines
// mount the v1 hierarchies beside it. A daemon started by Cgroup2Only runs
// in a mount namespace of its own where /sys/fs/cgroup is cgroup2 and
// nothing else, and so do the helpers, LXC and CRIU it runs, and the
// containers: the cgroup2-only paths of LXC, CRIU and ctrfs (the freezer,
// the recorded cgroups) that the default layout never takes.
//
// The test still sees the daemon's mount: the daemon's directory (mount,
// LXC path, store) is bind-mounted on itself and made shared before the
// namespace is made, so the FUSE mount the daemon makes under it there
// propagates back here, while every other mount (the cgroup ones first)
// stays in the namespace. cleanup unmounts the bind mount; the namespace
// goes with its last process (the daemon, then the containers' monitors).

// Cgroup2Only makes the daemon, from its next start, run on a cgroup2-only
// view of the host.
func (d *Daemon) Cgroup2Only() { d.cgroup2Only = true }

// base is the daemon's directory: the parent of its mount, LXC path, store.
func (d *Daemon) base() string { return filepath.Dir(d.Mount) }

// cgroup2OnlyScript runs in the new mount namespace with the daemon's
// command line as its arguments. The cgroup mounts are made private first,
// so that unmounting them never reaches the host's on a host whose mounts
// are shared.
const cgroup2OnlyScript = `set -e
mount --make-rprivate /sys/fs/cgroup
umount -R /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
exec "$@"`

// cgroup2OnlyCommand is the daemon's command line run through unshare(1)
// on the cgroup2-only view; unshare and sh exec, so its pid is the
// daemon's.
func (d *Daemon) cgroup2OnlyCommand(bin string) *exec.Cmd {
	d.t.Helper()
	d.shareBase()
	args := append([]string{"-m", "--propagation", "unchanged", "--", "sh", "-c", cgroup2OnlyScript, "sh", bin}, d.args...)
	return exec.Command("unshare", args...)
}

// shareBase bind-mounts the daemon's directory on itself, shared, so
// that what the daemon mounts under it in a mount namespace of its own
// (its FUSE mount) propagates back here. cleanup unmounts it.
func (d *Daemon) shareBase() {
	d.t.Helper()
	if isMounted(d.base()) {
		return
	}
	for _, args := range [][]string{{"--bind", d.base(), d.base()}, {"--make-shared", d.base()}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			d.t.Fatalf("mount %v: %v: %s", args, err, out)
		}
	}
}

// pidPath is a path as the daemon sees it, in its mount namespace.
func (d *Daemon) pidPath(path string) string {
	d.t.Helper()
	if d.cmd == nil {
		d.t.Fatalf("daemon %s is not running", d.Name)
	}
	return filepath.Join("/proc", strconv.Itoa(d.cmd.Process.Pid), "root", path)
}

// cgroupMounts are the cgroup hierarchies the daemon sees: "unified" and,
// if mounted, the v1 "memory" hierarchy, each as a path for this process.
func (d *Daemon) cgroupMounts() map[string]string {
	d.t.Helper()
	mi, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(d.cmd.Process.Pid), "mountinfo"))
	if err != nil {
		d.t.Fatal(err)
	}
	mounts := map[string]string{}
	for _, l := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 3 {
			continue
		}
		if b[0] == "cgroup2" {
			mounts["unified"] = d.pidPath(a[4])
		} else if b[0] == "cgroup" {
			mounts["v1"] = d.pidPath(a[4])
			if strings.Contains(","+b[2]+",", ",memory,") {
				mounts["memory"] = d.pidPath(a[4])
			}
		}
	}
	return mounts
}
