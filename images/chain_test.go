package images

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A pre-dump chain exports as CRIU reads it: each dump's files in its
// directory, its parent's in parent/ below it; Update of the parents
// unpacked ahead adds only the last dump's own files.
func TestChainExport(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pages-1.img"), randBytes(1, 300<<10), 0o600)
	round1, _ := importSave(t, s, dir, "r1")
	writeFile(t, filepath.Join(dir, "pages-1.img"), randBytes(2, 100<<10), 0o600)
	round2, _ := importSave(t, s, dir, "r2")
	writeFile(t, filepath.Join(dir, "pages-1.img"), randBytes(3, 10<<10), 0o600)
	final, _ := importSave(t, s, dir, "final")

	chain := Chain(round2, round1)
	state := Chain(final, chain)
	if final.Chained() || !state.Chained() {
		t.Fatalf("Chained: final %v, state %v", final.Chained(), state.Chained())
	}
	if err := s.Save("state", state); err != nil {
		t.Fatal(err)
	}
	ahead := t.TempDir()
	if err := s.Export(context.Background(), AsParent(chain), ahead); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ahead, "pages-1.img")); err == nil {
		t.Fatal("the parents unpacked ahead hold a dump of their own")
	}
	written, err := s.Update(context.Background(), ahead, AsParent(chain).Files, state)
	if err != nil {
		t.Fatal(err)
	}
	if written != 10<<10 {
		t.Errorf("Update over the parents wrote %d bytes, want the last dump's %d", written, 10<<10)
	}
	for path, seed := range map[string]uint64{"pages-1.img": 3, "parent/pages-1.img": 2, "parent/parent/pages-1.img": 1} {
		got, err := os.ReadFile(filepath.Join(ahead, path))
		if err != nil {
			t.Fatal(err)
		}
		want := map[uint64]int{1: 300 << 10, 2: 100 << 10, 3: 10 << 10}[seed]
		sameBytes(t, path, got, randBytes(seed, want))
	}
	// Beside the last dump's files, only parent/.
	entries, err := os.ReadDir(filepath.Join(ahead))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 { // pages-1.img and parent/
		t.Errorf("exported %v", entries)
	}
}

// A whole dump over parents unpacked ahead (a move whose final dump over
// its pre-dumps failed and was made whole) leaves no parent/ behind.
func TestChainUpdateToWhole(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pages-1.img"), randBytes(1, 100<<10), 0o600)
	round1, _ := importSave(t, s, dir, "r1")
	round2, _ := importSave(t, s, dir, "r2")
	writeFile(t, filepath.Join(dir, "pages-1.img"), randBytes(4, 100<<10), 0o600)
	whole, _ := importSave(t, s, dir, "whole")
	ahead := t.TempDir()
	parents := AsParent(Chain(round2, round1))
	if err := s.Export(context.Background(), parents, ahead); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(context.Background(), ahead, parents.Files, whole); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ahead, ParentDir)); !os.IsNotExist(err) {
		t.Errorf("parent/ left after an update to a whole dump: %v", err)
	}
}
