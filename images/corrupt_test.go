package images

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkBroken asserts that every way of reading victim.bin fails with
// ErrCorrupt naming it, and that Export leaves no partial file behind.
func checkBroken(t *testing.T, s *Store, m *Manifest, extra error) {
	t.Helper()
	f, _ := m.File("victim.bin")
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "victim.bin: chunk ") {
			t.Fatalf("%s: got %v, want ErrCorrupt naming victim.bin", what, err)
		}
		if extra != nil && !errors.Is(err, extra) {
			t.Fatalf("%s: got %v, want it to wrap %v", what, err, extra)
		}
	}
	_, err := s.Open(f).ReadAt(make([]byte, f.Size), 0)
	check("ReadAt", err)
	check("Verify", s.Verify(m))
	out := t.TempDir()
	check("Export", s.Export(context.Background(), m, out))
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if e.Name() == "victim.bin" || strings.HasPrefix(e.Name(), ".tmp-") {
			t.Fatalf("Export left %s behind", e.Name())
		}
	}
	// Other files do not share the damaged chunk and still read.
	ok, _ := m.File("pstree.img")
	want, _ := os.ReadFile(filepath.Join(dumpDir, "pstree.img"))
	sameBytes(t, "pstree.img", readAll(t, s, ok), want)
}

func corruptSetup(t *testing.T) (*Store, *Manifest, string) {
	src := copyDump(t)
	writeFile(t, filepath.Join(src, "victim.bin"), randBytes(30, 600<<10), 0o644)
	s := newStore(t)
	m, _ := importSave(t, s, src, "state/c1")
	f, _ := m.File("victim.bin")
	if len(f.Chunks) < 3 {
		t.Fatalf("victim.bin has %d chunks", len(f.Chunks))
	}
	return s, m, s.chunks.chunkPath(f.Chunks[1].Hash)
}

func TestCorruptChunk(t *testing.T) {
	s, m, path := corruptSetup(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	checkBroken(t, s, m, nil)
	if _, err := s.ReadChunk(filepath.Base(path)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadChunk: %v", err)
	}
}

// A chunk whose compressed form is valid but holds other content must be
// caught by the hash, not just by zstd.
func TestSwappedChunk(t *testing.T) {
	s, m, path := corruptSetup(t)
	f, _ := m.File("victim.bin")
	other, err := os.ReadFile(s.chunks.chunkPath(f.Chunks[0].Hash))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, other, 0o644); err != nil {
		t.Fatal(err)
	}
	checkBroken(t, s, m, nil)
	err = s.Verify(m)
	if !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("Verify: %v", err)
	}
}

func TestMissingChunk(t *testing.T) {
	s, m, path := corruptSetup(t)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	checkBroken(t, s, m, fs.ErrNotExist)
	if err := s.Save("state/c2", m); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Save of a manifest with a missing chunk: %v", err)
	}
}
