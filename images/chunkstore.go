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

	"ctrfs/images/atomicfile"
	"ctrfs/images/chunking"
)

// chunkStore is the chunks/ half of a Store: it names, compresses, writes,
// reads back and checks chunks, and keeps the recently decompressed ones. It
// knows nothing of manifests, keys, pins or GC (the Store's), so it never
// decides whether a chunk is needed; only whether one is present and sound.
type chunkStore struct {
	dir   string // the store's directory; chunks live in its chunks/
	enc   *zstd.Encoder
	dec   *zstd.Decoder
	cache *lru // cache.go
}

func (s *chunkStore) chunkPath(hash string) string {
	return filepath.Join(s.dir, "chunks", hash[:2], hash)
}

// Has reports whether the chunk is present. It does not verify it, so it is
// cheap enough to ask for every chunk of a manifest before a transfer.
func (s *chunkStore) Has(hash string) bool {
	if !chunking.ValidHash(hash) {
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
func (s *chunkStore) decode(hash string, comp []byte) ([]byte, error) {
	return s.decodeInto(hash, comp, nil)
}

// decodeInto is decode that appends to dst[:0], for callers that reuse
// buffers: an export decompresses a whole checkpoint, and leaving it all
// to the garbage collector kept the daemon busy after the restore.
func (s *chunkStore) decodeInto(hash string, comp, dst []byte) ([]byte, error) {
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
// name, by the hash that made it (see chunking.HashAs): for chunks that enter this
// store from another host, so that a sender's fault never becomes a
// receiver's stored chunk.
func (s *chunkStore) decodeStrict(hash string, comp []byte) ([]byte, error) {
	data, err := s.dec.DecodeAll(comp, nil)
	if err != nil {
		return nil, &chunkError{hash: hash, reason: "cannot decompress: " + err.Error()}
	}
	return checkName(hash, data)
}

func checkName(hash string, data []byte) ([]byte, error) {
	if chunking.HashAs(hash, data) != hash {
		return nil, &chunkError{hash: hash, reason: "checksum mismatch"}
	}
	return data, nil
}

// readRaw returns the compressed bytes of a chunk as stored.
func (s *chunkStore) readRaw(hash string) ([]byte, error) {
	return s.readRawInto(hash, nil)
}

// readRawInto is readRaw into buf's space when it is large enough.
func (s *chunkStore) readRawInto(hash string, buf []byte) ([]byte, error) {
	if !chunking.ValidHash(hash) {
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
func (s *chunkStore) load(hash string) ([]byte, error) {
	comp, err := s.readRaw(hash)
	if err != nil {
		return nil, err
	}
	return s.decode(hash, comp)
}

// get is load through the cache. Only verified content enters the cache, and
// callers must not modify the returned slice.
func (s *chunkStore) get(hash string) ([]byte, error) {
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
func (s *chunkStore) ChunkSize(hash string) int64 {
	if !chunking.ValidHash(hash) {
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
func (s *chunkStore) ReadChunk(hash string) ([]byte, error) {
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
func (s *chunkStore) WriteChunk(hash string, compressed []byte) error {
	if !chunking.ValidHash(hash) {
		return fmt.Errorf("images: invalid chunk name %q", hash)
	}
	if s.Has(hash) {
		return nil
	}
	if _, err := s.decodeStrict(hash, compressed); err != nil {
		return err
	}
	path := s.chunkPath(hash)
	if err := atomicfile.Write(path, compressed); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// putChunk stores data unless a chunk with its hash already exists, and
// returns the number of compressed bytes it added. The caller must have
// pinned hash so GC cannot remove an existing copy between the check and the
// manifest save. Nothing is synced here; see importer.finish.
func (s *chunkStore) putChunk(hash string, data []byte) (int64, error) {
	path := s.chunkPath(hash)
	if _, err := os.Stat(path); err == nil {
		return 0, nil
	}
	bp := compressBuffers.Get().(*[]byte)
	comp := s.enc.EncodeAll(data, (*bp)[:0])
	err := atomicfile.WriteRenamed(path, comp, false)
	*bp = comp[:0]
	compressBuffers.Put(bp)
	if err != nil {
		return 0, err
	}
	return int64(len(comp)), nil
}

// compressBuffers recycles putChunk's buffers, for the reason chunking's pageBuffers
// does; incompressible chunks grow a little in zstd's frame.
var compressBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, chunking.MaxPageChunk+chunking.MaxPageChunk/64)
	return &b
}}
