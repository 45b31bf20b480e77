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
