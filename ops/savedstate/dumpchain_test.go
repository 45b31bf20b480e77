package savedstate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ctrfs/images"
)

// A final dump over pre-dumps that a dead daemon left in staging is
// stored with its parents, as the move would have saved it; a dump whose
// parent is gone, or outside this daemon's staging, is not stored at all
// (it would not restore).
func TestImportDumpChain(t *testing.T) {
	store, err := images.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	root := t.TempDir()
	mkdump := func(name, parent string) string {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "pages-1.img"), []byte(strings.Repeat(name, 4096)), 0o600); err != nil {
			t.Fatal(err)
		}
		if parent != "" {
			if err := os.Symlink(parent, filepath.Join(dir, images.ParentDir)); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	r1 := mkdump("predump-c1-1", "")
	r2 := mkdump("predump-c1-2", r1)
	final := mkdump("dump-c1-3", "../predump-c1-2") // relative, as CRIU keeps it
	inStaging := func(dir string) bool { return strings.HasPrefix(dir, root+"/") }

	mf, held, err := importDumpChain(context.Background(), store, inStaging, final)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range mf.Files {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, " "); got != "pages-1.img parent/pages-1.img parent/parent/pages-1.img" || len(held) != 3 {
		t.Errorf("chain %q, %d held", got, len(held))
	}
	if err := store.Save("state/c1", mf); err != nil {
		t.Fatal(err)
	}
	for _, h := range held {
		store.Release(h)
	}

	if _, _, err := importDumpChain(context.Background(), store, func(string) bool { return false }, final); err == nil {
		t.Error("followed a parent outside staging")
	}
	os.RemoveAll(r2)
	if _, _, err := importDumpChain(context.Background(), store, inStaging, final); err == nil {
		t.Error("stored a dump whose parent is gone")
	}
}
