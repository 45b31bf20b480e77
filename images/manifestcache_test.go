package images

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestManifestCacheFollowsChanges: a cached manifest is never returned
// once its file was replaced, damaged in place or removed, and what a
// caller changes in one it got does not reach the next.
func TestManifestCacheFollowsChanges(t *testing.T) {
	s := newStore(t)
	a, b := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "f"), []byte("first"), 0o644)
	writeFile(t, filepath.Join(b, "g"), []byte("second"), 0o644)
	importSave(t, s, a, "k")
	m, err := s.Load("k")
	if err != nil || m.Files[0].Name != "f" {
		t.Fatalf("Load: %v, %v", m, err)
	}
	m.Files[0].Name = "changed"
	if m, _ := s.Load("k"); m.Files[0].Name != "f" {
		t.Fatalf("a caller's change reached the cache: %q", m.Files[0].Name)
	}

	importSave(t, s, b, "k") // replaced by a rename
	if m, err := s.Load("k"); err != nil || m.Files[0].Name != "g" {
		t.Fatalf("after Save: %v, %v", m, err)
	}

	path := s.manifestPath("k")
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil { // in place
		t.Fatal(err)
	}
	if _, err := s.loadPath(path, "k"); !errors.Is(err, ErrDamaged) {
		t.Fatalf("a manifest damaged in place loads: %v", err)
	}
	os.Remove(path)
	if _, err := s.loadPath(path, "k"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a removed manifest loads: %v", err)
	}
}

// TestManifestCacheDropsDeletedAndRenamed: the entries of a deleted
// manifest and of a renamed one's old name leave the cache at once, with
// their share of its budget.
func TestManifestCacheDropsDeletedAndRenamed(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), []byte("content"), 0o644)
	for _, k := range []string{"a", "b"} {
		importSave(t, s, dir, k)
		if _, err := s.Load(k); err != nil {
			t.Fatal(err)
		}
	}
	cached := func(key string) bool {
		s.manifests.mu.Lock()
		defer s.manifests.mu.Unlock()
		_, ok := s.manifests.byPth[s.manifestPath(key)]
		return ok
	}
	if !cached("a") || !cached("b") {
		t.Fatal("loaded manifests are not cached")
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Rename("b", "c"); err != nil {
		t.Fatal(err)
	}
	if cached("a") || cached("b") {
		t.Fatal("the cache keeps a deleted or renamed manifest")
	}
	if s.manifests.bytes != 0 {
		t.Fatalf("the cache counts %d bytes of manifests it no longer holds", s.manifests.bytes)
	}
	if m, err := s.Load("c"); err != nil || m.Files[0].Name != "f" {
		t.Fatalf("the renamed manifest: %v, %v", m, err)
	}
}
