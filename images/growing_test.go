package images

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeSlowly writes data to path in pieces with pauses, as CRIU writes a
// page image during a dump, and closes it.
func writeSlowly(t *testing.T, path string, data []byte, piece int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += piece {
		if _, err := f.Write(data[off:min(off+piece, len(data))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func sameManifest(t *testing.T, got, want *Manifest) {
	t.Helper()
	if len(got.Files) != len(want.Files) {
		t.Fatalf("%d files, want %d", len(got.Files), len(want.Files))
	}
	for i, f := range got.Files {
		w := want.Files[i]
		if f.Name != w.Name || f.Size != w.Size || len(f.Chunks) != len(w.Chunks) {
			t.Fatalf("file %d: %s %d bytes in %d chunks, want %s %d bytes in %d chunks",
				i, f.Name, f.Size, len(f.Chunks), w.Name, w.Size, len(w.Chunks))
		}
		for j := range f.Chunks {
			if f.Chunks[j] != w.Chunks[j] {
				t.Fatalf("%s: chunk %d differs", f.Name, j)
			}
		}
	}
}

// finishLikeImportDir finishes g and checks that its manifest is the one
// ImportDir gives for dir now: the same files, cut at the same places.
func finishLikeImportDir(t *testing.T, s *Store, g *GrowingImport, dir string) (*Manifest, ImportStats) {
	t.Helper()
	got, st, err := g.Finish()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Release(got) })
	want, _, err := s.ImportDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Release(want) })
	sameManifest(t, got, want)
	return got, st
}

// A directory imported while it is written gives the manifest ImportDir
// gives afterwards.
func TestGrowingImportMatchesImportDir(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	g := s.StartGrowingImport(dir, nil)
	big := randBytes(11, 9<<20+4096*3)
	small := randBytes(12, 300<<10)
	writeSlowly(t, filepath.Join(dir, "pages-1.img"), big, 256<<10)
	writeSlowly(t, filepath.Join(dir, "pages-2.img"), small, 64<<10)
	if err := os.WriteFile(filepath.Join(dir, "core-1.img"), []byte("core"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := finishLikeImportDir(t, s, g, dir)
	if len(g.followed) == 0 {
		t.Error("nothing was imported while it was written")
	}

	f, ok := got.File("pages-1.img")
	if !ok {
		t.Fatal("no pages-1.img")
	}
	back, err := io.ReadAll(io.NewSectionReader(s.Open(f), 0, f.Size))
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "pages-1.img read back", back, big)
}

// A deferred import follows nothing and gives, at Finish, the manifest
// ImportDir gives.
func TestDeferredImportMatchesImportDir(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	g := s.StartDeferredImport(dir, nil)
	writeSlowly(t, filepath.Join(dir, "pages-1.img"), randBytes(15, 3<<20+4096), 256<<10)
	if err := os.WriteFile(filepath.Join(dir, "core-1.img"), []byte("core"), 0o600); err != nil {
		t.Fatal(err)
	}
	finishLikeImportDir(t, s, g, dir)
	if len(g.followed) != 0 {
		t.Errorf("a deferred import followed %d file(s) while they were written", len(g.followed))
	}
}

// A page image written again after its writer closed it is imported again.
func TestGrowingImportRewrittenFile(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	g := s.StartGrowingImport(dir, nil)
	path := filepath.Join(dir, "pages-1.img")
	writeSlowly(t, path, randBytes(13, 5<<20), 512<<10)
	time.Sleep(50 * time.Millisecond) // followed to its end
	changed := bytes.Repeat([]byte("x"), 5<<20)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(changed)
	f.Close()
	finishLikeImportDir(t, s, g, dir)
}

// Cancel while a file is still open for writing returns, and leaves no
// pins behind.
func TestGrowingImportCancel(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	g := s.StartGrowingImport(dir, nil)
	f, err := os.Create(filepath.Join(dir, "pages-1.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(randBytes(14, 6<<20))
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { g.Cancel(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Cancel did not return while the file was open")
	}
	s.mu.Lock()
	pins := len(s.pins.count)
	s.mu.Unlock()
	if pins != 0 {
		t.Fatalf("%d chunks still pinned after Cancel", pins)
	}
}

// With a reference (the dump before), unchanged chunks keep their hash
// without being hashed, and the manifest is what a plain import gives.
func TestGrowingImportWithReference(t *testing.T) {
	s := newStore(t)
	before := t.TempDir()
	data := randBytes(15, 12<<20)
	if err := os.WriteFile(filepath.Join(before, "pages-1.img"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	refManifest, _, err := s.ImportDir(context.Background(), before)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(refManifest)

	// The next dump: the same memory with 1 MiB rewritten in the middle.
	changed := append([]byte(nil), data...)
	copy(changed[6<<20:], randBytes(16, 1<<20))
	dir := t.TempDir()
	g := s.StartGrowingImport(dir, NewReference(before, refManifest))
	writeSlowly(t, filepath.Join(dir, "pages-1.img"), changed, 1<<20)
	_, st := finishLikeImportDir(t, s, g, dir)
	if st.Reused == 0 || st.Reused >= st.Chunks {
		t.Errorf("%d of %d chunks reused from the reference; want most but not all", st.Reused, st.Chunks)
	}
	t.Logf("%d of %d chunks reused", st.Reused, st.Chunks)
}
