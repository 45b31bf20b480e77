package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// rewrite changes a saved manifest's bytes behind the store's back.
func rewrite(t *testing.T, s *Store, key string, change func([]byte) []byte) {
	t.Helper()
	path := s.manifestPath(key)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, change(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantDamaged(t *testing.T, s *Store, key string) *DamagedError {
	t.Helper()
	_, err := s.Load(key)
	var de *DamagedError
	if !errors.Is(err, ErrDamaged) || !errors.As(err, &de) {
		t.Fatalf("Load %s: %v, want a damaged manifest", key, err)
	}
	if de.Path != s.damaged.path(key) {
		t.Fatalf("kept in %s, want %s", de.Path, s.damaged.path(key))
	}
	if _, err := os.Stat(de.Path); err != nil {
		t.Fatal(err)
	}
	return de
}

// A manifest that still parses but was changed (one digit of a mode) is
// caught by its checksum, moved aside, and stays damaged until Delete.
func TestManifestChecksum(t *testing.T) {
	s := newStore(t)
	var reported []string
	s.OnDamaged(func(de *DamagedError) { reported = append(reported, de.Key) })
	importSave(t, s, dumpDir, "state/c1")
	rewrite(t, s, "state/c1", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"mode":420`), []byte(`"mode":421`), 1)
	})
	de := wantDamaged(t, s, "state/c1")
	if de.Reason != "checksum mismatch" || de.From != s.manifestPath("state/c1") {
		t.Fatalf("%+v", de)
	}
	if _, err := os.Stat(s.manifestPath("state/c1")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("damaged manifest left in manifests/")
	}
	wantDamaged(t, s, "state/c1") // again, from damaged/
	if len(reported) != 1 || reported[0] != "state/c1" {
		t.Fatalf("reported %v, want state/c1 once", reported)
	}
	if keys, _ := s.Keys(""); len(keys) != 0 {
		t.Fatalf("Keys lists %v", keys)
	}
	if keys, _ := s.DamagedKeys("state/"); len(keys) != 1 || keys[0] != "state/c1" {
		t.Fatalf("DamagedKeys: %v", keys)
	}
	if !s.HasDamaged("state/c1") || s.HasDamaged("state/c") || s.HasDamaged("state/c10") {
		t.Fatal("HasDamaged: not state/c1 alone")
	}
	if err := s.Rename("state/c1", "state/c2"); err != nil {
		t.Fatal(err)
	}
	wantDamaged(t, s, "state/c2")
	if err := s.Delete("state/c2"); err != nil {
		t.Fatal(err)
	}
	if s.HasDamaged("state/c2") {
		t.Fatal("HasDamaged after Delete")
	}
	if _, err := s.Load("state/c2"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load after Delete: %v", err)
	}
}

// Manifests written before checksums (version 1) have none and still
// load; from version 2 on, every manifest was written with one, and one
// without it is damaged.
func TestLegacyManifest(t *testing.T) {
	s := newStore(t)
	old := oldFormatState(t, s, "state/c1", randBytes(93, 64<<10))
	m, _ := importSave(t, s, dumpDir, "state/c2")
	for key, m := range map[string]*Manifest{"state/c1": old, "state/c2": m} {
		rewrite(t, s, key, func([]byte) []byte {
			legacy := *m
			legacy.Checksum = ""
			b, _ := json.Marshal(&legacy)
			if bytes.Contains(b, []byte("checksum")) {
				t.Fatal("legacy manifest has a checksum")
			}
			return b
		})
	}
	got, err := s.Load("state/c1")
	if err != nil || len(got.Files) != len(old.Files) {
		t.Fatalf("legacy manifest: %v", err)
	}
	if de := wantDamaged(t, s, "state/c2"); de.Reason != "no checksum" {
		t.Fatalf("a version 2 manifest without a checksum: %v", de)
	}
}

// GC moves a damaged manifest aside and goes on: it frees what nothing
// names, keeps a sound manifest's chunks, and keeps the chunks the damaged
// one still names until it is deleted.
func TestGCDamagedManifest(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "a.img"), randBytes(70, 300<<10), 0o644)
	writeFile(t, filepath.Join(b, "b.img"), randBytes(71, 300<<10), 0o644)
	writeFile(t, filepath.Join(c, "c.img"), randBytes(72, 300<<10), 0o644)
	s := newStore(t)
	ma, _ := importSave(t, s, a, "state/a")
	mb, _ := importSave(t, s, b, "state/b")
	mc, _ := importSave(t, s, c, "state/c")
	if err := s.Delete("state/c"); err != nil {
		t.Fatal(err)
	}
	// Cut off in the middle of its chunk list.
	rewrite(t, s, "state/b", func(d []byte) []byte { return d[:len(d)*2/3] })
	var reported []string
	s.OnDamaged(func(de *DamagedError) { reported = append(reported, de.Key) })

	freed, err := s.GC(context.Background())
	if err != nil || freed == 0 {
		t.Fatalf("GC with a damaged manifest: freed %d, %v", freed, err)
	}
	if len(reported) != 1 || reported[0] != "state/b" {
		t.Fatalf("reported %v", reported)
	}
	for _, h := range mc.Hashes() {
		if s.Has(h) {
			t.Fatal("a chunk nothing names survived GC")
		}
	}
	if err := s.Verify(ma); err != nil {
		t.Fatal(err)
	}
	kept, _ := os.ReadFile(s.damaged.path("state/b"))
	named := 0
	for _, h := range mb.Hashes() {
		if bytes.Contains(kept, []byte(h)) {
			named++
			if !s.Has(h) {
				t.Fatal("GC freed a chunk the damaged manifest names")
			}
		}
	}
	if named == 0 {
		t.Fatal("the cut manifest names no chunk: the test proves nothing")
	}
	wantDamaged(t, s, "state/b")
	if err := s.Delete("state/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, h := range mb.Hashes() {
		if s.Has(h) {
			t.Fatal("chunks of a discarded damaged manifest survived GC")
		}
	}
}

// damageAgain puts the kept damaged manifest of key back, as an operator's
// repair that did not work, and loads it: a second copy is kept.
func damageAgain(t *testing.T, s *Store, key string) {
	t.Helper()
	data, err := os.ReadFile(s.damaged.path(key))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.manifestPath(key), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(key); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Load %s damaged again: %v", key, err)
	}
}

// A key damaged again keeps its copies under names that are no key's:
// key c1.2 never sees c1's second copy, a Delete of key s.2 keeps s's, and
// Rename and Delete of the key take all of its copies.
func TestDamagedCopiesAreNoKeys(t *testing.T) {
	s := newStore(t)
	for _, key := range []string{"state/c1", "state/c1.2"} {
		importSave(t, s, dumpDir, key)
	}
	rewrite(t, s, "state/c1", func(b []byte) []byte { return b[:len(b)/2] })
	wantDamaged(t, s, "state/c1")
	damageAgain(t, s, "state/c1")
	damageAgain(t, s, "state/c1")
	paths := s.DamagedPaths("state/c1")
	if len(paths) != 3 || paths[1] != s.damaged.copyPath("state/c1", 2) || paths[2] != s.damaged.copyPath("state/c1", 3) {
		t.Fatalf("DamagedPaths: %v", paths)
	}
	if s.HasDamaged("state/c1.2") || s.HasDamaged("state/c1.3") {
		t.Fatal("key c1.2 or c1.3 reads as damaged")
	}
	if _, err := s.Load("state/c1.2"); err != nil {
		t.Fatalf("Load of key c1.2: %v", err)
	}
	if keys, _ := s.DamagedKeys("state/"); len(keys) != 1 || keys[0] != "state/c1" {
		t.Fatalf("DamagedKeys: %v", keys)
	}
	if err := s.Delete("state/c1.2"); err != nil {
		t.Fatal(err)
	}
	if got := s.DamagedPaths("state/c1"); len(got) != 3 {
		t.Fatalf("a Delete of key c1.2 took c1's copies: %v", got)
	}
	if err := s.Rename("state/c1", "state/c9"); err != nil {
		t.Fatal(err)
	}
	if got := s.DamagedPaths("state/c9"); len(got) != 3 || len(s.damaged.copies("state/c1")) != 0 {
		t.Fatalf("Rename left copies behind: c9 %v, c1 %v", got, s.damaged.copies("state/c1"))
	}
	if err := s.Delete("state/c9"); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(s.damaged.root(), "state", "*"))
	if len(left) != 0 {
		t.Fatalf("Delete left %v", left)
	}
}
