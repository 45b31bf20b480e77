package images

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Update turns a directory exported from one dump into the export of the
// next, writing only the chunks that changed.
func TestUpdateWritesOnlyChanges(t *testing.T) {
	s := newStore(t)
	src := t.TempDir()
	pages := randBytes(1, 16<<20)
	writeFile(t, filepath.Join(src, "pages-1.img"), pages, 0o600)
	writeFile(t, filepath.Join(src, "gone.img"), randBytes(2, 10<<10), 0o600)
	writeFile(t, filepath.Join(src, "shrinks.img"), randBytes(3, 300<<10), 0o600)
	before, _ := importSave(t, s, src, "precopy")
	dir := t.TempDir()
	if err := s.Export(context.Background(), before, dir); err != nil {
		t.Fatal(err)
	}

	// The next dump: a page changed in the middle, one file gone, one new,
	// one shorter.
	copy(pages[8<<20:], randBytes(4, 4096))
	writeFile(t, filepath.Join(src, "pages-1.img"), pages, 0o600)
	os.Remove(filepath.Join(src, "gone.img"))
	writeFile(t, filepath.Join(src, "new.img"), randBytes(5, 20<<10), 0o644)
	writeFile(t, filepath.Join(src, "shrinks.img"), randBytes(3, 100<<10), 0o600)
	after, _ := importSave(t, s, src, "final")

	n, err := s.Update(context.Background(), dir, before.Files, after)
	if err != nil {
		t.Fatal(err)
	}
	if n >= 6<<20 {
		t.Errorf("Update wrote %d bytes for a change of one page", n)
	}
	want := t.TempDir()
	if err := s.Export(context.Background(), after, want); err != nil {
		t.Fatal(err)
	}
	sameDirs(t, dir, want)
}

// A damaged chunk among the changes fails the update.
func TestUpdateDamagedChunk(t *testing.T) {
	s := newStore(t)
	src := t.TempDir()
	pages := randBytes(1, 2<<20)
	writeFile(t, filepath.Join(src, "pages-1.img"), pages, 0o600)
	before, _ := importSave(t, s, src, "precopy")
	dir := t.TempDir()
	if err := s.Export(context.Background(), before, dir); err != nil {
		t.Fatal(err)
	}
	copy(pages[1<<20:], randBytes(4, 4096))
	writeFile(t, filepath.Join(src, "pages-1.img"), pages, 0o600)
	after, _ := importSave(t, s, src, "final")
	old := map[Chunk]bool{}
	for _, c := range before.Files[0].Chunks {
		old[c] = true
	}
	var victim string
	for _, c := range after.Files[0].Chunks {
		if !old[c] {
			victim = s.chunks.chunkPath(c.Hash)
		}
	}
	data, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(victim, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(context.Background(), dir, before.Files, after); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Update with a damaged chunk: %v, want ErrCorrupt", err)
	}
}

// sameDirs checks that two directories hold the same files, bytes and modes.
func sameDirs(t *testing.T, got, want string) {
	t.Helper()
	ge, _ := os.ReadDir(got)
	we, _ := os.ReadDir(want)
	if len(ge) != len(we) {
		t.Fatalf("%d files, want %d", len(ge), len(we))
	}
	for _, e := range we {
		g, err := os.ReadFile(filepath.Join(got, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := os.ReadFile(filepath.Join(want, e.Name()))
		if !bytes.Equal(g, w) {
			t.Errorf("%s differs", e.Name())
		}
		gi, _ := os.Stat(filepath.Join(got, e.Name()))
		wi, _ := os.Stat(filepath.Join(want, e.Name()))
		if gi.Mode() != wi.Mode() {
			t.Errorf("%s: mode %v, want %v", e.Name(), gi.Mode(), wi.Mode())
		}
	}
}
