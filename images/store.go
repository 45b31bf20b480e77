// Package images keeps CRIU image directories in a compressed,
// content-addressed, deduplicated store and reads them back with every byte
// checked.
//
// Layout under the store directory:
//
//	chunks/ab/<blake3>.b3     a zstd-compressed chunk, named by the BLAKE3 of its uncompressed bytes
//	chunks/ab/<sha256>        the same, named by SHA-256: written by ctrfs before store format 2 (see chunking/hash.go)
//	manifests/<key>.json      a Manifest: which chunks make up which file
//	damaged/<key>.json        a manifest found damaged, kept aside (see damaged.go)
//
// Every file is written to a temporary name and renamed into place, chunks
// before the manifests that name them, so a crash leaves at worst chunks that
// nothing references; GC removes them. Only one Store per directory may be
// open in a process that saves manifests or runs GC, because the protection of
// chunks that are imported but not yet saved lives in that Store's memory.
//
// The Store keeps what needs its directory and its lock: manifests by key
// (keys.go), pins and GC (gc.go), damaged manifests (damaged.go), imports,
// exports and streams. Its chunks/ half is a chunkStore (chunkstore.go).
// What needs none of that lives below, and imports nothing from here:
//
//	images/chunking     cutting files into chunks and naming chunks
//	images/manifest     the manifest format, its checks and chains
//	images/atomicfile   writing a file whole or not at all, and fsyncs
//	images/trust        the check of every file and directory ctrfs trusts
//	images/critview     the process tree and statistics in CRIU's images
//
// Glossary:
//
//	chunk     a piece of a file, stored once, zstd-compressed, named by its hash
//	manifest  the list of an image directory's files and the chunks of each
//	key       the name a manifest is saved under ("state/c1", "snapshots/c1/s1")
//	pin       a chunk GC keeps because an import or transfer still needs it
//	damaged   a manifest that cannot be trusted, kept aside in damaged/
//	chain     a dump's manifest with its pre-dump parents' files under parent/
//	reference an earlier import still on disk: a new one reuses its chunks where the bytes match
package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/klauspost/compress/zstd"

	"ctrfs/images/atomicfile"
	"ctrfs/images/chunking"
	"ctrfs/images/trust"
)

// ErrCorrupt is wrapped by every error caused by a chunk that is missing,
// cannot be decompressed, or whose content does not match its name.
var ErrCorrupt = errors.New("corrupt chunk")

// Store is a chunk store plus named manifests. Its methods are safe for
// concurrent use.
type Store struct {
	dir    string
	chunks *chunkStore // chunkstore.go
	// manifests are the manifests parsed so far (manifestcache.go).
	manifests manifestCache

	// mu orders manifest changes against GC: GC holds it for its whole
	// mark and sweep, so it sees every saved manifest and every pin.
	mu   sync.Mutex
	pins pins // gc.go

	damaged   damagedDir          // damaged.go
	onDamaged func(*DamagedError) // see OnDamaged

	usage usageCache // the last Usage counted (usage.go)
}

// Open opens the store in dir, creating it if needed.
func Open(dir string) (*Store, error) {
	chunks := filepath.Join(dir, "chunks")
	// All 256 fan-out directories exist from the start so chunk writers
	// never race each other or GC over creating them.
	for i := 0; i < 256; i++ {
		if err := os.MkdirAll(filepath.Join(chunks, fmt.Sprintf("%02x", i)), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "manifests"), 0o755); err != nil {
		return nil, err
	}
	if err := trustedLayout(dir); err != nil {
		return nil, err
	}
	if err := atomicfile.SyncDir(chunks); err != nil {
		return nil, err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		// Every chunk carries zstd's content checksum (XXH64), which
		// decode checks (see there).
		zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(chunking.MaxDecoded))
	if err != nil {
		return nil, err
	}
	return &Store{
		dir:     dir,
		chunks:  &chunkStore{dir: dir, enc: enc, dec: dec, cache: newLRU(32)},
		damaged: damagedDir(filepath.Join(dir, "damaged")),
		pins:    pins{count: map[string]int{}, held: map[*Manifest][]string{}},
	}, nil
}

// trustedLayout checks the store's fixed directories (images/trust): the
// directories below them are checked as manifests are read and written.
func trustedLayout(dir string) error {
	dirs := []string{dir, filepath.Join(dir, "chunks"), filepath.Join(dir, "manifests")}
	for i := 0; i < 256; i++ {
		dirs = append(dirs, filepath.Join(dir, "chunks", fmt.Sprintf("%02x", i)))
	}
	if _, err := os.Lstat(filepath.Join(dir, "damaged")); err == nil {
		dirs = append(dirs, filepath.Join(dir, "damaged"))
	}
	for _, d := range dirs {
		if err := trust.TrustedDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the compressor and decompressor. The Store must not be
// used afterwards.
func (s *Store) Close() error {
	s.chunks.dec.Close()
	return s.chunks.enc.Close()
}

// Dir returns the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

// Has reports whether the chunk is present (see chunkStore.Has).
func (s *Store) Has(hash string) bool { return s.chunks.Has(hash) }

// ChunkSize is the stored (compressed) size of a chunk, or 0 if it is not
// here.
func (s *Store) ChunkSize(hash string) int64 { return s.chunks.ChunkSize(hash) }

// ReadChunk returns a chunk's compressed bytes, verified, as WriteChunk on
// another store accepts them (see chunkStore.ReadChunk).
func (s *Store) ReadChunk(hash string) ([]byte, error) { return s.chunks.ReadChunk(hash) }

// WriteChunk stores compressed bytes received from another store after
// checking them against hash (see chunkStore.WriteChunk).
func (s *Store) WriteChunk(hash string, compressed []byte) error {
	return s.chunks.WriteChunk(hash, compressed)
}
