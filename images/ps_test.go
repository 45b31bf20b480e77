package images

import (
	"errors"
	"os"
	"reflect"
	"testing"

	"ctrfs/images/critview"
)

// A stored checkpoint's process tree reads through Store.FS as from its
// directory, and a corrupt chunk under it is ErrCorrupt.
func TestProcessTreeFromStore(t *testing.T) {
	want, err := critview.ProcessTree(os.DirFS(dumpDir))
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	m, _ := importSave(t, s, dumpDir, "state/c1")
	got, err := critview.ProcessTree(s.FS(m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("from store: got %+v, want %+v", got, want)
	}

	// A fresh store: the reads above left core-4.img's chunk in the cache.
	s = newStore(t)
	m, _ = importSave(t, s, dumpDir, "state/c1")
	f, _ := m.File("core-4.img")
	os.WriteFile(s.chunks.chunkPath(f.Chunks[0].Hash), []byte("garbage"), 0o644)
	if _, err := critview.ProcessTree(s.FS(m)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt core-4.img: %v", err)
	}
}
