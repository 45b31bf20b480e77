package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The steps of a rename at which CTRFS_CRASH_AT has the daemon kill itself
// (ops/rename.go): journal written, directory renamed, config rewritten,
// first store item moved, all done but the journal.
var renameSteps = []string{"rename-journaled", "rename-moved", "rename-config", "rename-store", "rename-done"}

// TestRenameDaemonKilled: a daemon killed during `mv` of a stopped
// container with saved state and snapshots, as soon as the new name shows
// in the LXC path and then at each step of the rename, leaves after its
// restart exactly one container, under one of the two names, with all of
// its snapshots, its saved state, its address, and nothing else in the LXC
// path or in the store under the other name; its processes come back.
func TestRenameDaemonKilled(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c4")
	d.MustSh("echo 'snapshot s1 --stateful' > containers/c4/ctl && mkdir containers/c4/snapshots/s2")
	before := Count(t, ip)
	d.MustSh("echo stop-stateful > containers/c4/ctl")
	names := map[string]string{"c4": "c4n", "c4n": "c4"}

	// check finds the one container after a kill and checks it is whole.
	check := func(when string) string {
		t.Helper()
		ls := strings.Fields(d.MustSh("ls containers"))
		var found []string
		for _, n := range ls {
			if n != "hosts" {
				found = append(found, n)
			}
		}
		if len(found) != 1 || names[found[0]] == "" {
			t.Fatalf("%s: containers/ lists %v; want one of c4, c4n", when, found)
		}
		name, other := found[0], names[found[0]]
		entries, _ := os.ReadDir(d.LXCPath)
		if len(entries) != 1 || entries[0].Name() != name {
			var dirs []string
			for _, e := range entries {
				dirs = append(dirs, e.Name())
			}
			t.Fatalf("%s: the LXC path holds %v; want only %s", when, dirs, name)
		}
		info := d.Info(name)
		if info["status"] != "STOPPED" || info["stateful"] != "yes" || info["snapshots"] != "2" || info["ipv4"] != ip {
			t.Fatalf("%s: %s is %s, stateful %s, %s snapshots, ipv4 %s; want STOPPED, yes, 2, %s",
				when, name, info["status"], info["stateful"], info["snapshots"], info["ipv4"], ip)
		}
		if ls := d.MustSh("ls containers/" + name + "/snapshots"); strings.Join(strings.Fields(ls), " ") != "s1 s2" {
			t.Fatalf("%s: snapshots of %s: %q", when, name, ls)
		}
		config := d.Read("containers", name, "config")
		if !strings.Contains(config, "lxc.uts.name = "+name+"\n") || !strings.Contains(config, "dir:"+filepath.Join(d.LXCPath, name, "rootfs")+"\n") {
			t.Fatalf("%s: the config of %s does not name it and its rootfs:\n%s", when, name, config)
		}
		if !exists(d.rootfs(name, "bin", "busybox")) {
			t.Fatalf("%s: %s has no rootfs", when, name)
		}
		manifests := filepath.Join(d.Store, "images", "manifests")
		if exists(filepath.Join(manifests, "state", other+".json")) || exists(filepath.Join(manifests, "snapshots", other)) {
			t.Fatalf("%s: the store keeps saved state or snapshots under %s", when, other)
		}
		return name
	}

	// Killed as soon as the new name shows in the LXC path (LXC's own
	// rename copied the container there first).
	name := "c4"
	mv := d.Background("mv containers/c4 containers/c4n")
	waitLong(t, "c4n to show in the LXC path", 30*time.Second, func() bool {
		return exists(filepath.Join(d.LXCPath, "c4n"))
	})
	d.Kill()
	mv.Wait()
	d.Start()
	name = check("killed as c4n showed")

	// Killed at each step.
	for _, step := range renameSteps {
		if err := d.Stop(); err != nil {
			t.Fatal(err)
		}
		d.Env = []string{"CTRFS_CRASH_AT=" + step}
		d.Start()
		if _, err := d.Sh("mv containers/" + name + " containers/" + names[name]); err == nil {
			t.Fatalf("mv %s %s succeeded; the daemon was to kill itself at %s", name, names[name], step)
		}
		d.Kill()
		d.Env = nil
		d.Start()
		name = check("killed at " + step)
		t.Logf("killed at %s: the container is %s", step, name)
	}
	if entries, _ := os.ReadDir(filepath.Join(d.Store, "renames")); len(entries) != 0 {
		t.Errorf("rename journals left after recovery: %d", len(entries))
	}

	// Its processes come back, and the other name is free and clean.
	d.MustSh("echo start > containers/" + name + "/ctl")
	countFrom(t, ip, before, "over the killed renames")
	other := names[name]
	d.MustSh("mkdir containers/" + other)
	if info := d.Info(other); info["stateful"] != "no" || info["snapshots"] != "0" {
		t.Fatalf("a new %s inherited: stateful %s, %s snapshots", other, info["stateful"], info["snapshots"])
	}
	d.MustSh("echo stop > containers/" + name + "/ctl")
}

// TestRenameLeftoversSetAside: saved state and snapshots filed under a
// name whose container is gone (destroyed with LXC's own tools here, as a
// daemon killed in the middle of rmdir would leave them) never attach to a
// new container that takes the name, by mkdir or by mv; they are set aside
// in the store, not deleted.
func TestRenameLeftoversSetAside(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c5")
	d.MustSh("echo 'snapshot s1 --stateful' > containers/c5/ctl && echo stop-stateful > containers/c5/ctl")
	d.MustSh("mkdir containers/c6 containers/c6/snapshots/s1 containers/c7")
	for _, name := range []string{"c5", "c6"} {
		if out, err := exec.Command("lxc-destroy", "-P", d.LXCPath, "-n", name).CombinedOutput(); err != nil {
			t.Fatalf("lxc-destroy %s: %v: %s", name, err, out)
		}
	}
	waitFor(t, "c5 and c6 to go", func() bool {
		return strings.Join(strings.Fields(d.MustSh("ls containers")), " ") == "c7 hosts"
	})

	d.MustSh("mkdir containers/c5 && mv containers/c7 containers/c6")
	for _, name := range []string{"c5", "c6"} {
		info := d.Info(name)
		if info["stateful"] != "no" || info["snapshots"] != "0" {
			t.Errorf("the new %s inherited its name's leftovers: stateful %s, %s snapshots", name, info["stateful"], info["snapshots"])
		}
		if ls := d.MustSh("ls containers/" + name + "/snapshots"); strings.TrimSpace(ls) != "" {
			t.Errorf("the new %s shows leftovers: %q", name, ls)
		}
		aside, _ := filepath.Glob(filepath.Join(d.Store, "images", "manifests", "orphaned", name, "*", "snapshots", "s1.json"))
		if len(aside) != 1 {
			t.Errorf("the snapshot left by the old %s was not set aside: %v", name, aside)
		}
	}
	if aside, _ := filepath.Glob(filepath.Join(d.Store, "images", "manifests", "orphaned", "c5", "*", "state.json")); len(aside) != 1 {
		t.Errorf("the saved state left by the old c5 was not set aside: %v", aside)
	}
	d.MustSh("echo start > containers/c5/ctl")
	if op := d.Info("c5")["last-op"]; op != "start" {
		t.Fatalf("c5: last-op %q", op)
	}
	d.MustSh("echo stop > containers/c5/ctl")
}

// TestRenameAndMoveErrors: every failed rename or move, refused by the
// tree or by the operation, replaces the container's `error` with why; a
// move into this host's own hosts/ entry fails with EINVAL.
func TestRenameAndMoveErrors(t *testing.T) {
	a, b := twoHosts(t)
	a.MustSh("mkdir containers/c2 containers/c3")
	b.MustSh("mkdir containers/c2")
	// mv words EINVAL from rename(2) as "cannot move … to a subdirectory of
	// itself"; the errno itself is checked with a rename of our own.
	for _, c := range []struct{ script, stderr, says string }{
		{"mv containers/c2 hosts/dakara/", "cannot move", "is already on"},
		{"cd containers && mv c2 hosts/dakara/", "cannot move", "is already on"},
		{"mv containers/c2 'containers/bad name'", "cannot move", "bad name"},
		{"mv -T containers/c2 containers/c3", "File exists", "c3"},
		{"mv containers/c2 hosts/nohost/", "No such file or directory", "nohost"},
		{"mv containers/c2 hosts/tollana/c9", "cannot move", "keeps its name"},
		{"mv containers/c2 hosts/tollana/", "File exists", "tollana"},
		{"echo 'move dakara' > containers/c2/ctl", "Invalid argument", "is already on"},
	} {
		// Another failure first, so that a stale `error` shows.
		a.ShFails("echo bogus > containers/c2/ctl", "Invalid argument")
		a.ShFails(c.script, c.stderr)
		if e := a.Read("containers/c2/error"); !strings.Contains(e, c.says) {
			t.Errorf("%s: error %q; want it to say %q", c.script, e, c.says)
		}
	}
	for _, to := range []string{"hosts/dakara/c2", "containers/bad name", "hosts/tollana/c9"} {
		if err := syscall.Rename(a.Path("containers/c2"), a.Path(to)); !errorIs(err, syscall.EINVAL) {
			t.Errorf("rename of c2 to %s: %v; want EINVAL", to, err)
		}
	}
	if ls := strings.Fields(a.MustSh("ls containers")); strings.Join(ls, " ") != "c2 c3 hosts" {
		t.Errorf("after the failed moves, containers/ lists %v", ls)
	}
	if ls := strings.Fields(a.MustSh("ls hosts/dakara")); strings.Join(ls, " ") != "c2 c3" {
		t.Errorf("after the failed moves, hosts/dakara/ lists %v", ls)
	}
	a.MustSh("mv containers/c2 containers/c8")
	if e := a.Read("containers/c8/error"); e != "" {
		t.Errorf("error after a rename that succeeded: %q", e)
	}
}
