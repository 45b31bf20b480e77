package rootfstar

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestIncrementalRootfs: a whole-tree archive and one of the changes since
// rebuild the tree as it is now: new, changed and removed files included.
func TestIncrementalRootfs(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	write := func(name, content string) {
		t.Helper()
		path := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/kept", "kept")
	write("etc/changed", "before")
	write("var/gone", "gone")
	write("srv/gonedir/inside", "gone")
	state := filepath.Join(dir, "state")
	if err := ArchiveSince(src, filepath.Join(dir, "base.tar"), state); err != nil {
		t.Fatal(err)
	}

	write("etc/changed", "after")
	write("var/lib/new", "new")
	for _, gone := range []string{"var/gone", "srv/gonedir"} {
		if err := os.RemoveAll(filepath.Join(src, gone)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := ArchiveChanges(src, filepath.Join(dir, "changes.tar"), state); err != nil {
		t.Fatal(err)
	}
	// The state is the base's still, and tar's copy of it is gone: every
	// later archive of changes is of those since the base.
	if after, err := os.ReadFile(state); err != nil || string(after) != string(before) {
		t.Fatalf("the state changed (%v)", err)
	}
	if _, err := os.Stat(state + ".next"); !os.IsNotExist(err) {
		t.Fatalf("tar's copy of the state is left: %v", err)
	}

	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Apply(out, true, filepath.Join(dir, "base.tar"), filepath.Join(dir, "changes.tar")); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, out), tree(t, src); got != want {
		t.Fatalf("unpacked:\n%s\nwant:\n%s", got, want)
	}

	// A move unpacks the base ahead and applies the changes later.
	ahead := filepath.Join(dir, "ahead")
	if err := os.Mkdir(ahead, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Apply(ahead, true, filepath.Join(dir, "base.tar")); err != nil {
		t.Fatal(err)
	}
	if err := Apply(ahead, true, filepath.Join(dir, "changes.tar")); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, ahead), tree(t, src); got != want {
		t.Fatalf("unpacked ahead, then the changes applied:\n%s\nwant:\n%s", got, want)
	}
}

// tree lists the files under dir with their contents.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, path)
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(path)
			rel += "=" + string(b)
		}
		lines = append(lines, rel)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
