package images

import (
	"bytes"
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
		mf, _, err := s.ImportDir(dir)
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
