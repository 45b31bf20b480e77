package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"ctrfs/images/atomicfile"
)

func TestGCKeepsShared(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	shared := randBytes(40, 1<<20)
	writeFile(t, filepath.Join(a, "shared.img"), shared, 0o644)
	writeFile(t, filepath.Join(b, "shared.img"), shared, 0o644)
	writeFile(t, filepath.Join(a, "only-a.img"), randBytes(41, 500<<10), 0o644)
	writeFile(t, filepath.Join(b, "only-b.img"), randBytes(42, 500<<10), 0o644)

	s := newStore(t)
	ma, _ := importSave(t, s, a, "snapshots/c1/a")
	mb, _ := importSave(t, s, b, "snapshots/c1/b")
	if freed, err := s.GC(context.Background()); err != nil || freed != 0 {
		t.Fatalf("GC with everything referenced freed %d, %v", freed, err)
	}

	onlyA, _ := ma.File("only-a.img")
	want := s.StoredSize(&Manifest{Files: []File{onlyA}})
	if err := s.Delete("snapshots/c1/a"); err != nil {
		t.Fatal(err)
	}
	freed, err := s.GC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if freed != want || want == 0 {
		t.Fatalf("GC freed %d bytes, want %d (only-a.img's chunks)", freed, want)
	}
	for _, c := range onlyA.Chunks {
		if s.Has(c.Hash) {
			t.Fatal("chunk of deleted manifest survived GC")
		}
	}
	if err := s.Verify(mb); err != nil {
		t.Fatal(err)
	}
	f, _ := mb.File("shared.img")
	sameBytes(t, "shared.img", readAll(t, s, f), shared)
}

// Between ImportDir and Save the chunks are named by no manifest on disk;
// GC must still keep them.
func TestGCKeepsUnsavedImport(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "pages-1.img"), randBytes(50, 300<<10), 0o644)
	s := newStore(t)
	m, _, err := s.ImportDir(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if freed, err := s.GC(context.Background()); err != nil || freed != 0 {
		t.Fatalf("GC during import freed %d, %v", freed, err)
	}
	if err := s.Save("state/c1", m); err != nil {
		t.Fatal(err)
	}

	m2, _, err := s.ImportDir(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	s.Release(m2) // the chunks are still held by state/c1
	if err := s.Delete("state/c1"); err != nil {
		t.Fatal(err)
	}
	if freed, err := s.GC(context.Background()); err != nil || freed == 0 {
		t.Fatalf("GC after release and delete freed %d, %v", freed, err)
	}
	if err := s.Save("state/c1", m2); err == nil {
		t.Fatal("saved a manifest whose chunks were collected")
	}
}

// GC keeps a young temporary file of this process, which may be a write in
// progress, and removes an old one and any of another process: a daemon
// restarted after a kill must not keep the killed import's half-written
// chunk, however young.
func TestGCStaleTemp(t *testing.T) {
	s := newStore(t)
	dir := filepath.Join(s.Dir(), "chunks", "00")
	stale, fresh := filepath.Join(dir, atomicfile.TempPrefix+"stale"), filepath.Join(dir, atomicfile.TempPrefix+"fresh")
	killed := filepath.Join(dir, ".tmp-1234567890") // as an earlier process names them
	writeFile(t, stale, []byte("left over"), 0o600)
	writeFile(t, fresh, []byte("being written"), 0o600)
	writeFile(t, killed, []byte("left by a killed daemon"), 0o600)
	old := time.Now().Add(-2 * staleTemp)
	os.Chtimes(stale, old, old)
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Fatal("stale temp file kept")
	}
	if _, err := os.Stat(killed); err == nil {
		t.Fatal("young temp file of another process kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal("fresh temp file removed")
	}
}

// A manifest of a newer ctrfs may be sound: GC must neither move it aside
// nor sweep without knowing its chunks.
func TestGCRefusesNewerManifest(t *testing.T) {
	s := newStore(t)
	importSave(t, s, dumpDir, "a")
	os.WriteFile(filepath.Join(s.Dir(), "manifests", "newer.json"), []byte(`{"version":99}`), 0o644)
	if _, err := s.GC(context.Background()); err == nil {
		t.Fatal("GC swept with a manifest it cannot read")
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "manifests", "newer.json")); err != nil {
		t.Fatal("a newer manifest was moved:", err)
	}
}

// Imports, saves, deletes and GCs racing each other must never leave a saved
// manifest with a missing chunk. Run with -race.
func TestGCConcurrent(t *testing.T) {
	s := newStore(t)
	var dirs []string
	for i := 0; i < 4; i++ {
		d := t.TempDir()
		writeFile(t, filepath.Join(d, "shared.img"), randBytes(60, 200<<10), 0o644)
		writeFile(t, filepath.Join(d, "own.img"), randBytes(uint64(61+i), 100<<10), 0o644)
		dirs = append(dirs, d)
	}
	stop := make(chan struct{})
	gcDone := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				gcDone <- nil
				return
			default:
			}
			if _, err := s.GC(context.Background()); err != nil {
				gcDone <- err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 15; j++ {
				m, _, err := s.ImportDir(context.Background(), d)
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.Save(fmt.Sprintf("state/c%d", i), m); err != nil {
					t.Error(err)
					return
				}
				if j%3 == 0 {
					s.Delete(fmt.Sprintf("state/c%d", i))
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	keys, _ := s.Keys("")
	for _, k := range keys {
		m, err := s.Load(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(m); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if len(keys) != len(dirs) {
		t.Fatalf("keys %v", keys)
	}
}
