// Package images keeps CRIU image directories in a compressed,
// content-addressed, deduplicated store and reads them back with every byte
// checked.
//
// Layout under the store directory:
//
//	chunks/ab/<blake3>.b3     a zstd-compressed chunk, named by the BLAKE3 of its uncompressed bytes
//	chunks/ab/<sha256>        the same, named by SHA-256: written by ctrfs before store format 2 (see hash.go)
//	manifests/<key>.json      a Manifest: which chunks make up which file
//	damaged/<key>.json        a manifest found damaged, kept aside (see damaged.go)
//
// Every file is written to a temporary name and renamed into place, chunks
// before the manifests that name them, so a crash leaves at worst chunks that
// nothing references; GC removes them. Only one Store per directory may be
// open in a process that saves manifests or runs GC, because the protection of
// chunks that are imported but not yet saved lives in that Store's memory.
package images

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// ErrCorrupt is wrapped by every error caused by a chunk that is missing,
// cannot be decompressed, or whose content does not match its name.
var ErrCorrupt = errors.New("corrupt chunk")

// maxDecoded bounds what one chunk may decompress to, so a hostile chunk
// received from a peer cannot exhaust memory. It is far above maxChunk to
// leave room for a future chunker.
const maxDecoded = 8 << 20

// Store is a chunk store plus named manifests. Its methods are safe for
// concurrent use.
type Store struct {
	dir   string
	enc   *zstd.Encoder
	dec   *zstd.Decoder
	cache *lru
	// manifests are the manifests parsed so far (manifestcache.go).
	manifests manifestCache

	// mu orders manifest changes against GC: GC holds it for its whole
	// mark and sweep, so it sees every saved manifest and every pin.
	mu   sync.Mutex
	pins map[string]int         // chunk hash -> imports that still need it
	held map[*Manifest][]string // hashes pinned on behalf of an unsaved manifest

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
	if err := syncDir(chunks); err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
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
		zstd.WithDecoderMaxMemory(maxDecoded))
	if err != nil {
		return nil, err
	}
	return &Store{
		dir:   dir,
		enc:   enc,
		dec:   dec,
		cache: newLRU(32),
		pins:  map[string]int{},
		held:  map[*Manifest][]string{},
	}, nil
}

// trustedLayout checks the store's fixed directories (trust.go): the
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
		if err := TrustedDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the compressor and decompressor. The Store must not be
// used afterwards.
func (s *Store) Close() error {
	s.dec.Close()
	return s.enc.Close()
}

// Dir returns the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

func (s *Store) chunkPath(hash string) string {
	return filepath.Join(s.dir, "chunks", hash[:2], hash)
}

// Has reports whether the chunk is present. It does not verify it, so it is
// cheap enough to ask for every chunk of a manifest before a transfer.
func (s *Store) Has(hash string) bool {
	if !validHash(hash) {
		return false
	}
	_, err := os.Stat(s.chunkPath(hash))
	return err == nil
}

// chunkError names the file and chunk a corruption was found in, so an
// operator knows which checkpoint file is damaged.
type chunkError struct {
	file   string // empty when the chunk was read on its own
	hash   string
	reason string
	err    error // underlying cause, e.g. fs.ErrNotExist; may be nil
}

func (e *chunkError) Error() string {
	msg := fmt.Sprintf("chunk %s: %s", shortHash(e.hash), e.reason)
	if e.file != "" {
		msg = e.file + ": " + msg
	}
	return msg
}

func (e *chunkError) Is(target error) bool { return target == ErrCorrupt }
func (e *chunkError) Unwrap() error        { return e.err }

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// inFile attributes a chunk error to a file; other errors get the file name
// as a prefix.
func inFile(name string, err error) error {
	if err == nil {
		return nil
	}
	var ce *chunkError
	if errors.As(err, &ce) {
		if ce.file == "" {
			c := *ce
			c.file = name
			return &c
		}
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

// decode decompresses a stored chunk and checks it. Chunks carry zstd's
// XXH64 content checksum, which the decoder verifies at a cost next to
// nothing: that catches what happens to a file at rest (bit rot, a torn
// or zeroed write), and restores, which read every byte of a checkpoint
// while the container is down, need no more. A chunk without one (or
// anything crossing between hosts, see decodeStrict) is checked against
// its name.
func (s *Store) decode(hash string, comp []byte) ([]byte, error) {
	return s.decodeInto(hash, comp, nil)
}

// decodeInto is decode that appends to dst[:0], for callers that reuse
// buffers: an export decompresses a whole checkpoint, and leaving it all
// to the garbage collector kept the daemon busy after the restore.
func (s *Store) decodeInto(hash string, comp, dst []byte) ([]byte, error) {
	data, err := s.dec.DecodeAll(comp, dst[:0])
	if err != nil {
		return nil, &chunkError{hash: hash, reason: "cannot decompress: " + err.Error()}
	}
	var h zstd.Header
	if h.Decode(comp) == nil && h.HasCheckSum && h.HasFCS && h.FrameContentSize == uint64(len(data)) {
		return data, nil
	}
	return checkName(hash, data)
}

// decodeStrict is decode that always checks the content against its
// name, by the hash that made it (see hashAs): for chunks that enter this
// store from another host, so that a sender's fault never becomes a
// receiver's stored chunk.
func (s *Store) decodeStrict(hash string, comp []byte) ([]byte, error) {
	data, err := s.dec.DecodeAll(comp, nil)
	if err != nil {
		return nil, &chunkError{hash: hash, reason: "cannot decompress: " + err.Error()}
	}
	return checkName(hash, data)
}

func checkName(hash string, data []byte) ([]byte, error) {
	if hashAs(hash, data) != hash {
		return nil, &chunkError{hash: hash, reason: "checksum mismatch"}
	}
	return data, nil
}

// readRaw returns the compressed bytes of a chunk as stored.
func (s *Store) readRaw(hash string) ([]byte, error) {
	return s.readRawInto(hash, nil)
}

// readRawInto is readRaw into buf's space when it is large enough.
func (s *Store) readRawInto(hash string, buf []byte) ([]byte, error) {
	if !validHash(hash) {
		return nil, &chunkError{hash: hash, reason: "invalid chunk name"}
	}
	f, err := os.Open(s.chunkPath(hash))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &chunkError{hash: hash, reason: "missing", err: err}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if int64(cap(buf)) < info.Size() {
		buf = make([]byte, info.Size())
	}
	buf = buf[:info.Size()]
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// load returns a chunk's verified content, bypassing the cache so that
// Verify really reads the disk.
func (s *Store) load(hash string) ([]byte, error) {
	comp, err := s.readRaw(hash)
	if err != nil {
		return nil, err
	}
	return s.decode(hash, comp)
}

// get is load through the cache. Only verified content enters the cache, and
// callers must not modify the returned slice.
func (s *Store) get(hash string) ([]byte, error) {
	if data, ok := s.cache.get(hash); ok {
		return data, nil
	}
	data, err := s.load(hash)
	if err != nil {
		return nil, err
	}
	s.cache.add(hash, data)
	return data, nil
}

// ChunkSize is the stored (compressed) size of a chunk, or 0 if it is not
// here.
func (s *Store) ChunkSize(hash string) int64 {
	if !validHash(hash) {
		return 0
	}
	fi, err := os.Stat(s.chunkPath(hash))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// ReadChunk returns a chunk's compressed bytes, as WriteChunk on another
// store accepts them. They are verified first so corruption is not spread
// (the receiver checks them against their name).
func (s *Store) ReadChunk(hash string) ([]byte, error) {
	comp, err := s.readRaw(hash)
	if err != nil {
		return nil, err
	}
	if _, err := s.decode(hash, comp); err != nil {
		return nil, err
	}
	return comp, nil
}

// WriteChunk stores compressed bytes received from another store after
// checking that they decompress to content matching hash. The chunk is not
// protected from GC until a manifest naming it is saved; Save refuses a
// manifest whose chunks were collected in between, so a transfer that loses
// that race must resend.
func (s *Store) WriteChunk(hash string, compressed []byte) error {
	if !validHash(hash) {
		return fmt.Errorf("images: invalid chunk name %q", hash)
	}
	if s.Has(hash) {
		return nil
	}
	if _, err := s.decodeStrict(hash, compressed); err != nil {
		return err
	}
	path := s.chunkPath(hash)
	if err := writeAtomic(path, compressed); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// putChunk stores data unless a chunk with its hash already exists, and
// returns the number of compressed bytes it added. The caller must have
// pinned hash so GC cannot remove an existing copy between the check and the
// manifest save. Nothing is synced here; see importer.finish.
func (s *Store) putChunk(hash string, data []byte) (int64, error) {
	path := s.chunkPath(hash)
	if _, err := os.Stat(path); err == nil {
		return 0, nil
	}
	bp := compressBuffers.Get().(*[]byte)
	comp := s.enc.EncodeAll(data, (*bp)[:0])
	err := writeRenamed(path, comp, false)
	*bp = comp[:0]
	compressBuffers.Put(bp)
	if err != nil {
		return 0, err
	}
	return int64(len(comp)), nil
}

// compressBuffers recycles putChunk's buffers, for the reason pageBuffers
// does; incompressible chunks grow a little in zstd's frame.
var compressBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, pageChunks.max+pageChunks.max/64)
	return &b
}}
