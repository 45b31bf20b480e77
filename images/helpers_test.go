package images

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"ctrfs/images/internal/testbytes"
)

const dumpDir = "testdata/busybox-dump"

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// randBytes is deterministic so failures reproduce and chunk boundaries are
// the same on every run.
func randBytes(seed uint64, n int) []byte { return testbytes.Rand(seed, n) }

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // bypass umask
		t.Fatal(err)
	}
}

// copyDump copies the real CRIU images into a fresh directory.
func copyDump(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(dumpDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dumpDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := e.Info()
		writeFile(t, filepath.Join(dst, e.Name()), data, info.Mode().Perm())
	}
	return dst
}

func importSave(t *testing.T, s *Store, dir, key string) (*Manifest, ImportStats) {
	t.Helper()
	m, st, err := s.ImportDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(key, m); err != nil {
		t.Fatal(err)
	}
	return m, st
}

func readAll(t *testing.T, s *Store, f File) []byte {
	t.Helper()
	buf := make([]byte, f.Size)
	if _, err := s.Open(f).ReadAt(buf, 0); err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	return buf
}

func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	testbytes.Same(t, what, got, want)
}
