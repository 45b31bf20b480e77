package images

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"ctrfs/images/chunking"
)

func TestRoundTrip(t *testing.T) {
	src := copyDump(t)
	sizes := []int{0, 1, chunking.MinChunk - 1, chunking.MinChunk, chunking.MaxChunk, chunking.MaxChunk + 1, 3<<20 + 17}
	for i, n := range sizes {
		writeFile(t, filepath.Join(src, "rand-"+string(rune('a'+i))+".bin"), randBytes(uint64(100+i), n), 0o640)
	}
	writeFile(t, filepath.Join(src, "text.txt"), bytes.Repeat([]byte("checkpoint restore in userspace\n"), 40000), 0o600)

	s := newStore(t)
	m, st, err := s.ImportDir(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(src)
	if st.Files != len(entries) || len(m.Files) != len(entries) {
		t.Fatalf("imported %d files (%d in manifest), dir has %d", st.Files, len(m.Files), len(entries))
	}
	if st.LogicalBytes != m.Size() || st.StoredBytes <= 0 || st.StoredBytes >= st.LogicalBytes {
		t.Fatalf("stats %+v, manifest size %d", st, m.Size())
	}
	if got := s.StoredSize(m); got != st.StoredBytes {
		t.Fatalf("StoredSize %d, import stored %d", got, st.StoredBytes)
	}
	t.Logf("%+v", st)

	if err := s.Save("state/c1", m); err != nil {
		t.Fatal(err)
	}
	loaded, err := s.Load("state/c1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded.Files, m.Files) || !loaded.Created.Equal(m.Created) {
		t.Fatal("loaded manifest differs from saved one")
	}
	if err := s.Verify(loaded); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "restore")
	if err := s.Export(context.Background(), loaded, out); err != nil {
		t.Fatal(err)
	}
	outEntries, _ := os.ReadDir(out)
	if len(outEntries) != len(entries) {
		t.Fatalf("exported %d files, want %d", len(outEntries), len(entries))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, e := range entries {
		want, _ := os.ReadFile(filepath.Join(src, e.Name()))
		got, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, e.Name(), got, want)
		wi, _ := os.Stat(filepath.Join(src, e.Name()))
		gi, _ := os.Stat(filepath.Join(out, e.Name()))
		if wi.Mode() != gi.Mode() {
			t.Fatalf("%s: mode %v, want %v", e.Name(), gi.Mode(), wi.Mode())
		}

		f, _ := loaded.File(e.Name())
		r := s.Open(f)
		for i := 0; i < 100; i++ {
			off := rng.Int64N(int64(len(want)) + 10)
			buf := make([]byte, rng.IntN(300<<10))
			n, err := r.ReadAt(buf, off)
			wantN := max(0, min(len(buf), len(want)-int(off)))
			if n != wantN {
				t.Fatalf("%s: ReadAt(%d bytes, off %d) = %d, want %d", e.Name(), len(buf), off, n, wantN)
			}
			if n < len(buf) && err != io.EOF || n == len(buf) && err != nil {
				t.Fatalf("%s: ReadAt(%d bytes, off %d) err %v", e.Name(), len(buf), off, err)
			}
			if n > 0 {
				sameBytes(t, e.Name(), buf[:n], want[off:off+int64(n)])
			}
		}
	}

	// fstest reads each file a few bytes at a time, some ways over: under
	// -race (make test) the two files bigger than a chunk's maximum took
	// 20 of the test's 30 s. The FS is checked on the others, among them
	// files of one chunk and of several; every byte of those two is
	// checked above (Export, ReadAt).
	view := *loaded
	view.Files = nil
	var names []string
	for _, f := range loaded.Files {
		if f.Size <= chunking.MaxChunk+1 {
			view.Files = append(view.Files, f)
			names = append(names, f.Name)
		}
	}
	if err := fstest.TestFS(s.FS(&view), names...); err != nil {
		t.Fatal(err)
	}
}

func TestDedupSameDir(t *testing.T) {
	s := newStore(t)
	_, first := importSave(t, s, dumpDir, "a")
	m, second := importSave(t, s, dumpDir, "b")
	t.Logf("first %+v, second %+v", first, second)
	if first.StoredBytes == 0 || second.StoredBytes != 0 || second.NewChunks != 0 {
		t.Fatalf("second import of the same directory stored %d bytes in %d chunks", second.StoredBytes, second.NewChunks)
	}
	if err := s.Verify(m); err != nil {
		t.Fatal(err)
	}
}

// A block inserted in the middle shifts everything after it, as pages-N.img
// shifts when a process maps new memory; only chunks near the change may be
// new.
func TestDedupShiftedInsert(t *testing.T) {
	const size, insert = 16 << 20, 64 << 10
	orig := randBytes(20, size)
	changed := append(append(append([]byte(nil), orig[:size/2]...), randBytes(21, insert)...), orig[size/2:]...)

	s := newStore(t)
	a, b := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "pages-1.img"), orig, 0o644)
	writeFile(t, filepath.Join(b, "pages-1.img"), changed, 0o644)
	_, st1 := importSave(t, s, a, "a")
	m, st2 := importSave(t, s, b, "b")
	frac := float64(st2.StoredBytes) / float64(size)
	t.Logf("first %+v; after insert %+v (%.1f%% of the file)", st1, st2, 100*frac)
	if frac > 0.10 {
		t.Fatalf("re-import after a %d-byte insert stored %d bytes", insert, st2.StoredBytes)
	}
	f, _ := m.File("pages-1.img")
	sameBytes(t, "changed", readAll(t, s, f), changed)
}

func TestKeys(t *testing.T) {
	s := newStore(t)
	m, _ := importSave(t, s, dumpDir, "state/c1")
	for _, k := range []string{"state/c10", "snapshots/c1/first", "snapshots/c1/second", "snapshots/c10/x"} {
		if err := s.Save(k, m); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := s.Keys("snapshots/c1/")
	if err != nil || !reflect.DeepEqual(keys, []string{"snapshots/c1/first", "snapshots/c1/second"}) {
		t.Fatalf("Keys = %v, %v", keys, err)
	}
	if all, _ := s.Keys(""); len(all) != 5 {
		t.Fatalf("all keys %v", all)
	}

	if err := s.Rename("snapshots/c1/first", "snapshots/c1/second"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("rename onto existing key: %v", err)
	}
	if err := s.Rename("snapshots/c10/x", "snapshots/c1/third"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("snapshots/c10/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("old key after rename: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "manifests", "snapshots", "c10")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty directory left behind: %v", err)
	}
	if _, err := s.Load("snapshots/c1/third"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("state/c10"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("state/c10"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.Load("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}

	for _, bad := range []string{"", "/a", "a/", "a//b", "..", "a/../b", ".hidden", "a/.tmp-1", "a b", "x.json", "x.json/y", `a\b`} {
		if err := s.Save(bad, m); err == nil {
			t.Errorf("Save accepted key %q", bad)
		}
	}
}

// Manifests may arrive from other hosts, so Export must not follow names
// out of its directory.
func TestExportRejectsBadNames(t *testing.T) {
	s := newStore(t)
	m, _ := importSave(t, s, dumpDir, "a")
	evil := *m
	evil.Files = append([]File(nil), m.Files...)
	evil.Files[0].Name = "../escape"
	dir := t.TempDir()
	if err := s.Export(context.Background(), &evil, filepath.Join(dir, "out")); err == nil {
		t.Fatal("Export accepted ../escape")
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
		t.Fatal("file written outside export directory")
	}
}

func TestTransfer(t *testing.T) {
	src, dst := newStore(t), newStore(t)
	m, _ := importSave(t, src, dumpDir, "state/c1")
	if err := dst.Save("state/c1", m); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("saving a manifest without its chunks: %v", err)
	}
	for _, h := range m.Hashes() {
		if dst.Has(h) {
			t.Fatal("empty store has a chunk")
		}
		raw, err := src.ReadChunk(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.WriteChunk(chunking.HashOf([]byte("other")), raw); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("WriteChunk under the wrong name: %v", err)
		}
		if err := dst.WriteChunk(h, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.Save("state/c1", m); err != nil {
		t.Fatal(err)
	}
	if err := dst.Verify(m); err != nil {
		t.Fatal(err)
	}
}

// TestKeysUnderPrefix: Keys lists what begins with the prefix whether it
// names a directory or part of a name, and nothing for a prefix whose
// directory does not exist.
func TestKeysUnderPrefix(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), []byte("x"), 0o644)
	for _, k := range []string{"snapshots/c1/a", "snapshots/c1/b", "snapshots/c10/a", "state/c1", "state/c10"} {
		importSave(t, s, dir, k)
	}
	for prefix, want := range map[string]string{
		"snapshots/c1/": "snapshots/c1/a snapshots/c1/b",
		"snapshots/c":   "snapshots/c1/a snapshots/c1/b snapshots/c10/a",
		"state/c1":      "state/c1 state/c10",
		"":              "snapshots/c1/a snapshots/c1/b snapshots/c10/a state/c1 state/c10",
		"snapshots/c2/": "",
	} {
		got, err := s.Keys(prefix)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("Keys(%q) = %q, %v; want %q", prefix, got, err, want)
		}
	}
}
