package savedstate

import (
	"os"
	"path/filepath"
	"testing"
)

// A retried dump clears what the failed attempt wrote, and only that: the
// config a snapshot or a move copied in before the dump must stay.
func TestEmptyDirKeepsWhatWasThereBefore(t *testing.T) {
	const snapshotConfig = "ctrfs-config" // as a snapshot names its copy
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, snapshotConfig), []byte("lxc.uts.name = c1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pages-1.img", "dump.log"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := emptyDir(dir, before); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Name() != snapshotConfig {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Fatalf("left %v; want only %s", names, snapshotConfig)
	}
}
