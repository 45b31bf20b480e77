package tests

import (
	"os"
	"strings"
	"testing"

	"ctrfs/internal/tree"
)

// TestSnapshotNamesShowChangesAtOnce: the kernel keeps some names and
// attributes of the tree (fs/cache.go, fs/keptnames.go), so what it kept
// must never outlive a change made through the tree: after a snapshot is
// deleted, taken again as another kind, or its container renamed,
// destroyed and made again, through containers/ or through
// hosts/THIS-HOST/, the very next stat, listing or read shows the truth.
// Each path is looked at first, so that the kernel has it.
func TestSnapshotNamesShowChangesAtOnce(t *testing.T) {
	d := StartDaemon(t, "dakara")
	other := "hosts/dakara/" // the same containers, under the other view
	d.CreateRunning("c1")
	d.MustSh("mkdir containers/c1/snapshots/s1 containers/c1/snapshots/s2 && echo 'snapshot s3 --stateful' > containers/c1/ctl")

	// warm looks at a snapshot through both views, as ls -lR and a walk do.
	warm := func(container, snap string) {
		t.Helper()
		for _, view := range []string{"containers/", other} {
			dir := view + container + "/snapshots/"
			d.MustSh("ls -lR " + dir + " >/dev/null && stat " + dir + snap + " " + dir + snap + "/info >/dev/null")
		}
	}
	gone := func(path string) {
		t.Helper()
		if _, err := os.Stat(d.Path(path)); !os.IsNotExist(err) {
			t.Fatalf("%s: want ENOENT, got %v", path, err)
		}
	}
	lists := func(dir, want string) {
		t.Helper()
		entries, err := os.ReadDir(d.Path(dir))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if got := strings.Join(names, " "); got != want {
			t.Fatalf("%s lists %q; want %q", dir, got, want)
		}
	}

	// Deleted through the same view, then through the other.
	warm("c1", "s1")
	if err := os.Remove(d.Path("containers/c1/snapshots/s1")); err != nil {
		t.Fatal(err)
	}
	gone("containers/c1/snapshots/s1")
	gone(other + "c1/snapshots/s1/info")
	warm("c1", "s2")
	if err := os.Remove(d.Path(other + "c1/snapshots/s2")); err != nil {
		t.Fatal(err)
	}
	gone("containers/c1/snapshots/s2")
	gone("containers/c1/snapshots/s2/info")
	lists("containers/c1/snapshots", "s3")

	// A stateful snapshot deleted and taken again, stateless, by the same
	// name through the other view: the kept listing and times must go.
	warm("c1", "s3")
	lists("containers/c1/snapshots/s3", "info state")
	before, err := os.Stat(d.Path("containers/c1/snapshots/s3"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(d.Path(other + "c1/snapshots/s3")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(d.Path(other+"c1/snapshots/s3"), 0o755); err != nil {
		t.Fatal(err)
	}
	lists("containers/c1/snapshots/s3", "info")
	gone("containers/c1/snapshots/s3/state")
	after, err := os.Stat(d.Path("containers/c1/snapshots/s3"))
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().After(before.ModTime()) {
		t.Fatalf("s3 taken again: mtime %v, was %v", after.ModTime(), before.ModTime())
	}
	if kind := tree.ParseKV(d.Read("containers/c1/snapshots/s3/info"))["kind"]; kind != "stateless" {
		t.Fatalf("s3 taken again stateless: info says kind %q", kind)
	}

	// Renamed: the old name is gone at once, everything is under the new.
	d.MustSh("echo stop > containers/c1/ctl")
	warm("c1", "s3")
	d.MustSh("stat containers/c1/status containers/c1/snapshots >/dev/null")
	if err := os.Rename(d.Path("containers/c1"), d.Path("containers/c9")); err != nil {
		t.Fatal(err)
	}
	gone("containers/c1")
	gone("containers/c1/status")
	gone("containers/c1/snapshots/s3")
	gone(other + "c1/snapshots/s3")
	lists("containers/c9/snapshots", "s3")
	d.WantStatus("containers/c9", "STOPPED", "after the rename")

	// Renamed through the other view: gone from containers/ at once.
	warm("c9", "s3")
	if err := os.Rename(d.Path(other+"c9"), d.Path(other+"c8")); err != nil {
		t.Fatal(err)
	}
	gone("containers/c9")
	gone("containers/c9/snapshots/s3")
	lists("containers/c8/snapshots", "s3")
	if err := os.Rename(d.Path("containers/c8"), d.Path("containers/c9")); err != nil {
		t.Fatal(err)
	}

	// Destroyed through the other view, and made again by the same name:
	// the new container has none of the old one's snapshots.
	warm("c9", "s3")
	if err := os.Remove(d.Path(other + "c9")); err != nil {
		t.Fatal(err)
	}
	gone("containers/c9")
	gone("containers/c9/status")
	if err := os.Mkdir(d.Path(other+"c9"), 0o755); err != nil {
		t.Fatal(err)
	}
	gone("containers/c9/snapshots/s3")
	gone("containers/c9/snapshots/s3/info")
	lists("containers/c9/snapshots", "")
	d.MustSh("rmdir containers/c9")
	gone("containers/c9")
}
