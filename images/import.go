package images

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ImportStats describes what an import read and what it added to the store.
type ImportStats struct {
	Files        int
	LogicalBytes int64 // bytes read from the image files
	StoredBytes  int64 // compressed bytes of chunks that were not stored before
	Chunks       int   // chunk references in the manifest
	NewChunks    int   // chunks written by this import
}

// ImportDir stores every regular file directly inside dir (subdirectories
// and symlinks are skipped) and returns a manifest describing them. The
// manifest's chunks are protected from GC until it is passed to Save or
// Release; call one of them.
func (s *Store) ImportDir(dir string) (*Manifest, ImportStats, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, ImportStats{}, err
	}
	imp := &importer{s: s, seen: map[string]bool{}}
	imp.start()
	m := &Manifest{Version: manifestVersion, Created: time.Now().UTC()}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := imp.file(filepath.Join(dir, e.Name()))
		if err != nil {
			imp.fail(fmt.Errorf("%s: %w", e.Name(), err)) // keeps a worker's earlier error
			break
		}
		m.Files = append(m.Files, f)
	}
	if err := imp.finish(); err != nil {
		return nil, ImportStats{}, fmt.Errorf("images: import %s: %w", dir, err)
	}
	s.mu.Lock()
	s.held[m] = imp.pinned
	s.mu.Unlock()

	st := ImportStats{
		Files:        len(m.Files),
		LogicalBytes: m.Size(),
		StoredBytes:  imp.stored.Load(),
		NewChunks:    int(imp.newChunks.Load()),
	}
	for _, f := range m.Files {
		st.Chunks += len(f.Chunks)
	}
	return m, st, nil
}

// importer chunks and hashes files in the calling goroutine and hands each
// chunk not seen before in this import to workers that compress and write
// it, because compression is the slow part and parallelises per chunk.
type importer struct {
	s      *Store
	seen   map[string]bool
	pinned []string
	jobs   chan job
	wg     sync.WaitGroup

	errOnce sync.Once
	err     error
	failed  atomic.Bool

	mu        sync.Mutex
	dirty     map[string]bool // chunk directories that got a new entry
	stored    atomic.Int64
	newChunks atomic.Int64
}

type job struct {
	hash string
	data []byte
}

func (imp *importer) start() {
	n := runtime.GOMAXPROCS(0)
	imp.jobs = make(chan job, n)
	imp.dirty = map[string]bool{}
	for i := 0; i < n; i++ {
		imp.wg.Add(1)
		go imp.worker()
	}
}

func (imp *importer) worker() {
	defer imp.wg.Done()
	for j := range imp.jobs {
		if imp.failed.Load() {
			continue
		}
		n, err := imp.s.putChunk(j.hash, j.data)
		if err != nil {
			imp.fail(err)
			continue
		}
		if n > 0 {
			imp.stored.Add(n)
			imp.newChunks.Add(1)
			imp.mu.Lock()
			imp.dirty[filepath.Dir(imp.s.chunkPath(j.hash))] = true
			imp.mu.Unlock()
		}
	}
}

func (imp *importer) fail(err error) {
	imp.errOnce.Do(func() { imp.err = err })
	imp.failed.Store(true)
}

func (imp *importer) file(path string) (File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer fd.Close()
	info, err := fd.Stat()
	if err != nil {
		return File{}, err
	}
	f := File{Name: filepath.Base(path), Mode: uint32(info.Mode().Perm())}
	whole := sha256.New()
	c := newChunker(fd)
	for !imp.failed.Load() {
		data, err := c.next()
		if err == io.EOF {
			f.SHA256 = hex.EncodeToString(whole.Sum(nil))
			return f, nil
		}
		if err != nil {
			return File{}, err
		}
		whole.Write(data)
		h := hashOf(data)
		f.Chunks = append(f.Chunks, Chunk{Hash: h, Size: int64(len(data))})
		f.Size += int64(len(data))
		if imp.seen[h] {
			continue
		}
		imp.seen[h] = true
		imp.s.mu.Lock()
		imp.s.pinLocked(h)
		imp.s.mu.Unlock()
		imp.pinned = append(imp.pinned, h)
		imp.jobs <- job{h, append([]byte(nil), data...)}
	}
	return File{}, errAborted
}

var errAborted = errors.New("aborted")

// finish waits for the workers. If all went well it makes the new chunks'
// directory entries durable, so that a manifest saved afterwards cannot
// survive a power loss that its chunks do not; otherwise it drops the pins.
func (imp *importer) finish() error {
	close(imp.jobs)
	imp.wg.Wait()
	if imp.err == nil {
		for dir := range imp.dirty {
			if err := syncDir(dir); err != nil {
				imp.err = err
				break
			}
		}
	}
	if imp.err != nil {
		imp.s.mu.Lock()
		imp.s.unpinHashesLocked(imp.pinned)
		imp.s.mu.Unlock()
	}
	return imp.err
}
