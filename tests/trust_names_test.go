package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReservedContainerNames (issue 18, item 4): a name of the tree's own
// entries is no container's name. `create hosts` (and info, ctl, README)
// through ctl, mkdir, a rename and an incoming move are EINVAL, and
// `error` says why; containers/ lists hosts once; a container that has
// such a name already (made with LXC's tools) is refused by the target of
// a move and can be renamed away.
func TestReservedContainerNames(t *testing.T) {
	a, b := twoHosts(t)
	says := func(file, name string) {
		t.Helper()
		if e := a.Read(file); !strings.Contains(e, `"`+name+`"`) || !strings.Contains(e, "not a name for a container") {
			t.Errorf("%s does not say why %s was refused: %q", file, name, e)
		}
	}

	for _, name := range []string{"hosts", "info", "ctl", "README"} {
		a.ShFails("echo 'create "+name+"' > ctl", "Invalid argument")
		says("error", name)
	}
	a.ShFails("mkdir hosts/dakara/hosts", "Invalid argument")
	says("error", "hosts")
	a.ShFails("mkdir containers/status", "Invalid argument")
	says("error", "status")
	a.MustSh("mkdir containers/c1")
	if a.Read("error") != "" {
		t.Errorf("error after a mkdir that worked: %q", a.Read("error"))
	}
	if ls := strings.Fields(a.MustSh("ls containers")); strings.Join(ls, " ") != "c1 hosts" {
		t.Errorf("containers/ lists %v; want c1 and the hosts link", ls)
	}

	// mv words EINVAL from rename(2) as "cannot move … to a subdirectory
	// of itself": the errno is checked with a rename of our own.
	for _, to := range []string{"hosts/dakara/hosts", "containers/info"} {
		a.ShFails("mv "+a.Path("containers/c1")+" "+a.Path(to), "cannot move")
		says("containers/c1/error", to[strings.LastIndex(to, "/")+1:])
		if err := syscall.Rename(a.Path("containers/c1"), a.Path(to)); !errorIs(err, syscall.EINVAL) {
			t.Errorf("rename of c1 to %s: %v; want EINVAL", to, err)
		}
	}

	// LXC's own tools take any name: the container is still shown, once,
	// and a peer will not take it.
	mustRun(t, "lxc-copy", "-P", a.LXCPath, "-n", "c1", "-N", "hosts", "-R")
	if ls := strings.Fields(a.MustSh("ls containers")); strings.Join(ls, " ") != "hosts" {
		t.Errorf("containers/ lists %v; want the hosts link once", ls)
	}
	if ls := strings.Fields(a.MustSh("ls hosts/dakara")); strings.Join(ls, " ") != "hosts" {
		t.Errorf("hosts/dakara/ lists %v; want the container hosts", ls)
	}
	a.ShFails("echo 'move tollana' > hosts/dakara/hosts/ctl", "Invalid argument")
	says("hosts/dakara/hosts/error", "hosts")
	if b.has("hosts") || !a.has("hosts") {
		t.Fatalf("a refused move moved the container: on tollana %v, on dakara %v", b.has("hosts"), a.has("hosts"))
	}
	a.MustSh("mv hosts/dakara/hosts hosts/dakara/c2 && rmdir containers/c2")
}

// putBack copies a kept damaged manifest back into place, as an operator's
// repair that did not work: the next read finds it damaged again.
func putBack(t *testing.T, kept, manifest string) {
	t.Helper()
	if err := os.WriteFile(manifest, readFile(t, kept), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedCopiesAreNoKeys (issue 18, item 4): a manifest damaged again
// while a damaged copy of it is kept keeps the next copy under a name that
// is no key's. A container c1.2 does not show c1's second copy as its own
// damaged state, removing a snapshot s.2 keeps the copies of s, and stop
// and rmdir discard every copy of their own.
func TestDamagedCopiesAreNoKeys(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")
	d.MustSh("mkdir containers/c1.2")
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	images := filepath.Join(d.Store, "images")
	state := filepath.Join(images, "manifests", "state", "c1.json")
	keptState := filepath.Join(images, "damaged", "state", "c1.json")
	if err := os.WriteFile(state, readFile(t, state)[:100], 0o644); err != nil {
		t.Fatal(err)
	}
	d.ShFails("echo start > containers/c1/ctl", "Input/output error")
	putBack(t, keptState, state)
	d.ShFails("echo start > containers/c1/ctl", "Input/output error")
	kept := strings.Fields(d.Info("c1")["damaged-manifests"])
	if len(kept) != 2 || kept[0] != keptState {
		t.Errorf("c1's damaged manifests: %v; want two, %s first", kept, keptState)
	}
	if info := d.Info("c1.2"); info["stateful"] != "no" || info["damaged-manifests"] != "" {
		t.Errorf("c1.2 shows c1's second damaged copy as its own: %v", info)
	}
	d.MustSh("echo stop > containers/c1/ctl")
	if left, _ := filepath.Glob(filepath.Join(images, "damaged", "state", "*")); len(left) != 0 {
		t.Errorf("stop of c1 left damaged copies: %v", left)
	}

	d.MustSh("mkdir containers/c1.2/snapshots/s containers/c1.2/snapshots/s.2")
	snap := filepath.Join(images, "manifests", "snapshots", "c1.2", "s.json")
	keptSnap := filepath.Join(images, "damaged", "snapshots", "c1.2", "s.json")
	if err := os.WriteFile(snap, readFile(t, snap)[:100], 0o644); err != nil {
		t.Fatal(err)
	}
	d.ShFails("cat containers/c1.2/snapshots/s/info", "Input/output error")
	putBack(t, keptSnap, snap)
	d.ShFails("cat containers/c1.2/snapshots/s/info", "Input/output error")
	copies, _ := filepath.Glob(filepath.Join(images, "damaged", "snapshots", "c1.2", "*"))
	if len(copies) != 2 {
		t.Fatalf("kept for s: %v; want two copies", copies)
	}
	if info := strings.Fields(d.Info("c1.2")["damaged-manifests"]); strings.Join(info, " ") != strings.Join(copies, " ") {
		t.Errorf("c1.2's damaged manifests: %v; want %v", info, copies)
	}
	d.MustSh("cat containers/c1.2/snapshots/s.2/info && rmdir containers/c1.2/snapshots/s.2")
	for _, c := range copies {
		if _, err := os.Stat(c); err != nil {
			t.Errorf("rmdir of s.2 took a copy kept for s: %v", err)
		}
	}
	if ls := strings.Fields(d.MustSh("ls containers/c1.2/snapshots")); strings.Join(ls, " ") != "s" {
		t.Errorf("snapshots of c1.2 after rmdir of s.2: %v", ls)
	}
	d.MustSh("rmdir containers/c1.2/snapshots/s")
	if left, _ := filepath.Glob(filepath.Join(images, "damaged", "snapshots", "c1.2", "*")); len(left) != 0 {
		t.Errorf("rmdir of s left damaged copies: %v", left)
	}
}
