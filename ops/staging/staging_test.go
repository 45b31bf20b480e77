package staging

import (
	"bytes"
	"ctrfs/internal/testenv"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const otherUID = 65534 // nobody

// testArea is the staging of a fresh store.
func testArea(t *testing.T) *Area {
	store := filepath.Join(t.TempDir(), "store")
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	a := New(store, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	t.Cleanup(a.Close)
	return a
}

func TestOwnDir(t *testing.T) {
	testenv.NeedRoot(t, "to make directories of another user")
	base := t.TempDir()
	own := filepath.Join(base, "own")
	os.Mkdir(own, 0o700)
	if err := ownDir(own); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o755)
	link := filepath.Join(base, "link")
	os.Symlink(own, link)
	other := filepath.Join(base, "other")
	os.Mkdir(other, 0o700)
	if err := os.Chown(other, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{open: "mode 0755", link: "symlink", other: "uid 65534"} {
		if err := ownDir(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ownDir(%s): %v, want %q", filepath.Base(dir), err, want)
		}
	}
}

// Every dump gets a fresh directory of its own in a root the daemon made;
// a directory planted at the old fixed path on /dev/shm is not used.
func TestStagingFresh(t *testing.T) {
	a := testArea(t)
	legacy := filepath.Join(shm, a.MemoryName())
	if err := os.Mkdir(legacy, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(legacy) })
	if err := os.Chown(legacy, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	d1, err := a.Dir("c1", "dump", 1)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := a.Dir("c1", "dump", 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.StreamDir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(d1)
	if d1 == d2 || filepath.Dir(d2) != root || filepath.Dir(r) != root {
		t.Fatalf("staging %s, %s and %s are not fresh directories of one root", d1, d2, r)
	}
	if !strings.HasPrefix(root, legacy+"-") {
		t.Fatalf("staging root %s, want a fresh one beside %s", root, legacy)
	}
	for _, d := range []string{root, d1, d2, r} {
		if err := ownDir(d); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(d1)
	os.Remove(d2)
	os.Remove(r)
	a.Close()
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("Close left %s: %v", root, err)
	}
}

// A disk staging root that another user made is refused, and logged: no
// dump goes under it.
func TestPlantedDiskRootRefused(t *testing.T) {
	var log bytes.Buffer
	a := testArea(t)
	a.log = slog.New(slog.NewTextHandler(&log, nil))
	if err := os.Mkdir(a.DiskRoot(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(a.DiskRoot(), otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.diskRoot(); err == nil {
		t.Fatal("a planted disk staging directory was accepted")
	}
	if !strings.Contains(log.String(), a.DiskRoot()) {
		t.Errorf("log does not name %s:\n%s", a.DiskRoot(), &log)
	}
}

// RemoveLater takes a finished dump out of recovery's sight at once (it
// must never become saved state again) and Close waits for the removal.
func TestRemoveLater(t *testing.T) {
	a := testArea(t)
	dir, err := a.Dir("c1", "dump", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"inventory.img", "pstree.img", "stats-dump"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Dir(dir)
	a.RemoveLater(dir)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there under its name after RemoveLater: %v", dir, err)
	}
	if purpose, _, ok := Parse("removing-" + filepath.Base(dir)); ok && purpose == "dump" {
		t.Fatal("a directory being removed still reads as a staged dump")
	}
	a.Close()
	if entries, err := os.ReadDir(root); err == nil && len(entries) > 0 {
		t.Fatalf("Close left %v in %s", entries, root)
	}
}

// TestParse: staging directories' names parse back into purpose and
// container; names with dashes too.
func TestParse(t *testing.T) {
	for _, c := range []struct{ dir, purpose, name string }{
		{"dump-c1-123456", "dump", "c1"},
		{"snapshot-web-1-99", "snapshot", "web-1"},
		{"lazy-c1-7", "lazy", "c1"},
	} {
		purpose, name, ok := Parse(c.dir)
		if !ok || purpose != c.purpose || name != c.name {
			t.Errorf("Parse(%q) = %q, %q, %v", c.dir, purpose, name, ok)
		}
	}
	for _, dir := range []string{"r-123456", "dump", "dump--1"} {
		if _, _, ok := Parse(dir); ok {
			t.Errorf("Parse(%q) parsed", dir)
		}
	}
}
