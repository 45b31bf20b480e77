package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// cgroupHierarchies lists the directories of the mounted cgroup
// hierarchies: /sys/fs/cgroup itself on a cgroup2-only host, its
// directories (unified, memory, ...) on a hybrid one.
func cgroupHierarchies(t *testing.T) []string {
	t.Helper()
	if exists("/sys/fs/cgroup/cgroup.controllers") {
		return []string{"/sys/fs/cgroup"}
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() { // not cpu -> cpu,cpuacct
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return out
}

// lxcCgroupsOf lists the top-level cgroups named after the container name
// in every hierarchy: LXC's lxc.payload.NAME and lxc.monitor.NAME (with
// the suffixes -N it gives when the name is taken) and a restore
// rehearsal's lxc.rehearsal.NAME-N. Every one left after the container
// stopped moves LXC one step toward its 1,000th, past which NAME cannot
// start (lxc's cgfsng).
func lxcCgroupsOf(t *testing.T, name string) []string {
	t.Helper()
	re := regexp.MustCompile(`^lxc\.(payload|monitor|rehearsal)\.` + regexp.QuoteMeta(name) + `(-[0-9]+)?$`)
	var out []string
	for _, dir := range cgroupHierarchies(t) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() && re.MatchString(e.Name()) {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	return out
}

// laneName is a container name of the run's lane: cgroups are the
// host's, and these tests count those named after their container, which
// the same test in another lane (another developer's run) makes too.
func laneName(name string) string { return fmt.Sprintf("%sl%d", name, testLane) }

// wantNoNewCgroups fails the test with the cgroups named after name that
// are not in before, and removes them (rmdir: only if empty), so that the
// next run starts from none.
func wantNoNewCgroups(t *testing.T, name string, before []string, what string) {
	t.Helper()
	had := map[string]bool{}
	for _, c := range before {
		had[c] = true
	}
	var added []string
	for _, c := range lxcCgroupsOf(t, name) {
		if !had[c] {
			added = append(added, c)
		}
	}
	if len(added) > 0 {
		t.Errorf("%s left %d cgroups behind:\n%s", what, len(added), strings.Join(added, "\n"))
	}
	for _, c := range added {
		os.Remove(c)
	}
}

// TestRestoreIntoLXCsCgroup: a restore puts the container's tasks in the
// cgroup2 cgroup that LXC made for it, even when another container of the
// same name (another LXC path's) ends while the restore begins, and leaves
// no cgroup behind once the container stops. ctrfs used to guess LXC's
// cgroup before LXC made it: here the guess saw the other container's
// lxc.payload.cgleak1 and chose cgleak1-1, LXC (the other one gone) made
// cgleak1, and CRIU made cgleak1-1 in cgroup2 alone, where it stayed.
func TestRestoreIntoLXCsCgroup(t *testing.T) {
	name := laneName("cgleak1")
	// The other container's cgroups, empty, in every hierarchy, and a
	// criu in front of the real one that removes them when LXC asks for
	// criu's version: after ctrfs began the restore, before LXC makes
	// the restored container's cgroups.
	dir := t.TempDir()
	armed := filepath.Join(dir, "armed")
	var others []string
	for _, c := range cgroupHierarchies(t) {
		others = append(others, filepath.Join(c, "lxc.payload."+name))
	}
	real, err := exec.LookPath("criu")
	if err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nif [ \"$1\" = --version ] && rm " + armed + " 2>/dev/null; then\n  rmdir " + strings.Join(others, " ") + "\nfi\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "criu"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := NewDaemon(t, "dakara")
	d.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
	d.Start()
	ip := d.CreateRunning(name)
	d.MustSh("echo stop-stateful > containers/" + name + "/ctl")
	before := lxcCgroupsOf(t, name)
	for _, c := range others {
		if err := os.Mkdir(c, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(c) })
	}
	if err := os.WriteFile(armed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.MustSh("echo start > containers/" + name + "/ctl")
	if exists(armed) {
		t.Fatal("LXC did not run criu --version before the restore: the test cannot end the other container")
	}
	CountsPast(t, ip, 0, "after the restore")
	pid, _ := strconv.Atoi(d.Info(name)["pid"])
	if v2 := cgroupOf(t, pid, ""); !strings.HasPrefix(v2+"/", "/lxc.payload."+name+"/") {
		t.Errorf("the restored init is in cgroup2's %s, not in the lxc.payload.%s that LXC made", v2, name)
	}
	d.MustSh("echo stop > containers/" + name + "/ctl")
	wantNoNewCgroups(t, name, before, "a restore and a stop")
}

// cgroupOf is the cgroup of pid in the hierarchy of controller ("" for
// cgroup2), from /proc/PID/cgroup.
func cgroupOf(t *testing.T, pid int, controller string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] == controller {
			return parts[2]
		}
	}
	t.Fatalf("pid %d has no cgroup of %q:\n%s", pid, controller, data)
	return ""
}

// TestRestoreCutShortLeavesNoCgroups: a restore that its daemon's death
// cuts short while CRIU restores (here held after it set up the
// namespaces) leaves no cgroup behind. The helper then kills what it
// started, LXC's monitor too, which had not removed the cgroups it made:
// each such restore left lxc.payload.NAME in every hierarchy.
func TestRestoreCutShortLeavesNoCgroups(t *testing.T) {
	name := laneName("cgleak2")
	d := StartDaemon(t, "dakara")
	before := lxcCgroupsOf(t, name)
	ip := d.CreateRunning(name)
	n := Count(t, ip)
	hold := newCRIUHold(t, "post-setup-namespaces")
	d.MustSh("echo 'restore: action-script " + hold.script + "' > containers/" + name + "/criu")
	d.MustSh("echo stop-stateful > containers/" + name + "/ctl")
	hold.arm()
	write := d.Background("echo start > containers/" + name + "/ctl")
	hold.waitReached("CRIU after the namespaces' setup")
	d.Kill()
	write.Wait()
	hold.release()
	d.waitForHelpers()
	wantNoNewCgroups(t, name, before, "a restore cut short")
	d.Start()
	if info := d.Info(name); info["status"] != "STOPPED" || info["stateful"] != "yes" {
		t.Fatalf("after a restore cut short: %v", info)
	}
	d.MustSh("echo start > containers/" + name + "/ctl")
	countFrom(t, ip, n, "after a restore cut short and a start")
	d.MustSh("echo stop > containers/" + name + "/ctl")
	wantNoNewCgroups(t, name, before, "a restore cut short, a start and a stop")
}
