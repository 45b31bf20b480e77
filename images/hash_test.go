package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ctrfs/images/atomicfile"
	"ctrfs/images/chunking"
	"ctrfs/images/manifest"
)

// oldFormatState saves, as a ctrfs before store format 2 did, a version 1
// manifest of one file whose chunks are named by SHA-256.
func oldFormatState(t *testing.T, s *Store, key string, parts ...[]byte) *Manifest {
	t.Helper()
	f := File{Name: "pages-1.img", Mode: 0o600}
	for _, data := range parts {
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		if err := atomicfile.Write(s.chunks.chunkPath(h), s.chunks.enc.EncodeAll(data, nil)); err != nil {
			t.Fatal(err)
		}
		f.Chunks = append(f.Chunks, Chunk{Hash: h, Size: int64(len(data))})
		f.Size += int64(len(data))
	}
	m := &Manifest{Version: 1, Created: time.Now().UTC(), Files: []File{f}}
	if err := s.Save(key, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// A store written before BLAKE3 keeps working: its manifests load, read,
// verify and export; GC keeps their chunks; new imports name theirs by
// BLAKE3 beside them.
func TestOldFormatStoreStillReads(t *testing.T) {
	s := newStore(t)
	a, b := randBytes(90, 200<<10), []byte(strings.Repeat("old text ", 10000))
	oldFormatState(t, s, "state/old", a, b)

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pages-1.img"), randBytes(91, 300<<10), 0o600)
	mNew, _ := importSave(t, s, dir, "state/new")
	for _, h := range mNew.Hashes() {
		if !strings.HasSuffix(h, chunking.Blake3Suffix) || !chunking.ValidHash(h) {
			t.Fatalf("new chunk named %q, want a BLAKE3 name", h)
		}
	}
	if mNew.Version != manifest.Newest {
		t.Fatalf("new manifest has version %d", mNew.Version)
	}

	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, err := s.Load("state/old")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(m); err != nil {
		t.Fatal(err)
	}
	f, _ := m.File("pages-1.img")
	sameBytes(t, "old state", readAll(t, s, f), append(append([]byte(nil), a...), b...))
	out := t.TempDir()
	if err := s.Export(context.Background(), m, out); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(mNew); err != nil {
		t.Fatal(err)
	}
}

// Each name is checked by the hash that made it: content that does not
// match is refused whichever form its name has, also when it comes from a
// peer, and a SHA-256 name does not pass for a BLAKE3 one or back.
func TestChunkNamesCheckedByTheirOwnHash(t *testing.T) {
	s := newStore(t)
	data := randBytes(92, 64<<10)
	comp := s.chunks.enc.EncodeAll(data, nil)
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	b3 := chunking.HashOf(data)
	if b3[:chunking.HexLen] == sha {
		t.Fatal("BLAKE3 and SHA-256 agree: chunking.HashOf is not BLAKE3")
	}
	for _, h := range []string{sha, b3} {
		if _, err := s.chunks.decodeStrict(h, comp); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
	}
	other := s.chunks.enc.EncodeAll(randBytes(93, 64<<10), nil)
	for _, h := range []string{sha, b3, sha + chunking.Blake3Suffix, b3[:chunking.HexLen]} {
		if h == sha || h == b3 {
			if err := s.WriteChunk(h, other); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("WriteChunk(%s) of other content: %v, want ErrCorrupt", shortHash(h), err)
			}
			continue
		}
		if err := s.WriteChunk(h, comp); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("WriteChunk(%s) under the other hash's name: %v, want ErrCorrupt", h, err)
		}
	}
}

// A version 1 manifest was written before BLAKE3: one naming a BLAKE3
// chunk is not what any ctrfs wrote, and is refused.
func TestVersion1ManifestNamesOnlySHA256(t *testing.T) {
	m := &Manifest{Version: 1, Files: []File{{Name: "a", Size: 1, Chunks: []Chunk{{Hash: chunking.HashOf([]byte("x")), Size: 1}}}}}
	if err := m.Validate(); err == nil {
		t.Fatal("a version 1 manifest naming a BLAKE3 chunk was accepted")
	}
	m.Version = 2
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	m.Version = 3
	if err := m.Validate(); err == nil {
		t.Fatal("a manifest of an unknown version was accepted")
	}
}
