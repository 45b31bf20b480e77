package images

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestUsageCountsSharedChunksOnce(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := bytes.Repeat([]byte("ctrfs usage "), 10000)
	if err := os.WriteFile(filepath.Join(dir, "a.img"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"one", "two"} {
		mf, _, err := s.ImportDir(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Save(key, mf); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.ManifestCount != 2 || u.LogicalBytes != 2*int64(len(data)) || u.UniqueBytes != int64(len(data)) {
		t.Fatalf("usage %+v; want 2 manifests of %d bytes sharing their chunks", u, len(data))
	}
	if u.Chunks == 0 || u.StoredBytes == 0 || u.StoredBytes >= int64(len(data)) {
		t.Fatalf("usage %+v: chunks not counted, or not compressed", u)
	}
	if r := u.DedupRatio(); r != 2 {
		t.Fatalf("dedup ratio %v; want 2", r)
	}
}

// A GC pass counts the usage as it goes, and a scrape of a store that has
// not changed since reads nothing: here a manifest removed behind the
// store's back is still counted. A change through the store (Save,
// Delete) is counted at the next Usage, as a fresh walk counts it.
func TestUsageKeptFromGCUntilAChange(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.img"), bytes.Repeat([]byte("ctrfs gc usage "), 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	save := func(key string) { importSave(t, s, dir, key) }
	save("one")
	save("two")
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	walked, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	// What GC counted is what a walk counts.
	s.usage.changed()
	if fresh, err := s.Usage(); err != nil || fresh != walked {
		t.Fatalf("GC counted %+v; a walk counts %+v (%v)", walked, fresh, err)
	}
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.manifestPath("two")); err != nil {
		t.Fatal(err)
	}
	if u, err := s.Usage(); err != nil || u.ManifestCount != 2 {
		t.Fatalf("usage after GC, unchanged store: %+v, %v; want GC's count of 2 manifests", u, err)
	}
	save("three")
	if u, err := s.Usage(); err != nil || u.ManifestCount != 2 {
		t.Fatalf("usage after a save: %+v, %v; want one and three", u, err)
	}
	if err := s.Delete("three"); err != nil {
		t.Fatal(err)
	}
	if u, err := s.Usage(); err != nil || u.ManifestCount != 1 {
		t.Fatalf("usage after a delete: %+v, %v; want one", u, err)
	}
}
