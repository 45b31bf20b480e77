package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"ctrfs/images/atomicfile"
	"ctrfs/images/chunking"
	"ctrfs/images/manifest"
)

// ImportStats describes what an import read and what it added to the store.
type ImportStats struct {
	Files        int
	LogicalBytes int64 // bytes read from the image files
	StoredBytes  int64 // compressed bytes of chunks that were not stored before
	Chunks       int   // chunk references in the manifest
	NewChunks    int   // chunks written by this import
	Reused       int   // chunks found unchanged in the Reference, not hashed
}

// ImportDir stores every regular file directly inside dir (subdirectories
// and symlinks are skipped) and returns a manifest describing them. The
// manifest's chunks are protected from GC until it is passed to Save or
// Release; call one of them.
//
// A cancelled ctx stops it between files, with ctx's error.
func (s *Store) ImportDir(ctx context.Context, dir string) (*Manifest, ImportStats, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, ImportStats{}, err
	}
	imp := s.newImporter()
	var files []pendingFile
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := ctx.Err(); err != nil {
			imp.fail(err)
			break
		}
		f, err := imp.file(filepath.Join(dir, e.Name()))
		if err != nil {
			imp.fail(fmt.Errorf("%s: %w", e.Name(), err)) // keeps a worker's earlier error
			break
		}
		files = append(files, f)
	}
	return imp.manifest(dir, files)
}

// manifest waits for the workers and describes files (in that order),
// whose chunks stay pinned until the manifest is saved or released.
func (imp *importer) manifest(dir string, files []pendingFile) (*Manifest, ImportStats, error) {
	if err := imp.finish(); err != nil {
		return nil, ImportStats{}, fmt.Errorf("images: import %s: %w", dir, err)
	}
	m := &Manifest{Version: manifest.Newest, Created: time.Now().UTC()}
	for _, f := range files { // the workers have filled in every hash
		for _, c := range f.chunks {
			f.Chunks = append(f.Chunks, *c)
		}
		m.Files = append(m.Files, f.File)
	}
	imp.s.mu.Lock()
	imp.s.pins.held[m] = imp.pinned
	imp.s.mu.Unlock()

	st := ImportStats{
		Files:        len(m.Files),
		LogicalBytes: m.Size(),
		StoredBytes:  imp.stored.Load(),
		NewChunks:    int(imp.newChunks.Load()),
		Reused:       int(imp.reused.Load()),
	}
	for _, f := range m.Files {
		st.Chunks += len(f.Chunks)
	}
	return m, st, nil
}

// importer cuts files into chunks in the calling goroutine and hands every
// chunk to workers that hash it and, unless this import or the store has it
// already, compress and write it: hashing and compression are the slow
// parts, and both parallelise per chunk.
type importer struct {
	s    *Store
	ref  *Reference // nil: hash every chunk
	jobs chan job
	wg   sync.WaitGroup

	errOnce sync.Once
	err     error
	failed  atomic.Bool

	mu        sync.Mutex
	seen      map[string]bool
	pinned    []string
	dirty     bool // some chunk was written
	stored    atomic.Int64
	newChunks atomic.Int64
	reused    atomic.Int64
}

type job struct {
	chunk  *Chunk // the worker fills in Hash
	data   []byte
	pooled bool   // data is from chunking's pageBuffers: the worker puts it back
	hash   string // known already (see Reference), or ""
}

// pendingFile is a File whose chunk hashes the workers are still computing.
type pendingFile struct {
	File
	chunks []*Chunk
}

func (s *Store) newImporter() *importer {
	imp := &importer{s: s, seen: map[string]bool{}}
	imp.start()
	return imp
}

func (imp *importer) start() {
	n := runtime.GOMAXPROCS(0)
	imp.jobs = make(chan job, 2*n)
	for i := 0; i < n; i++ {
		imp.wg.Add(1)
		go imp.worker()
	}
}

func (imp *importer) worker() {
	defer imp.wg.Done()
	defer boostThread()()
	for j := range imp.jobs {
		imp.do(j)
		if j.pooled {
			chunking.PutPageBuffer(j.data)
		}
	}
}

// do hashes one chunk and stores it unless it is stored already.
func (imp *importer) do(j job) {
	if imp.failed.Load() {
		return
	}
	h := j.hash
	if h == "" {
		h = chunking.HashOf(j.data)
	}
	j.chunk.Hash = h
	imp.mu.Lock()
	dup := imp.seen[h]
	if !dup {
		imp.seen[h] = true
		imp.pinned = append(imp.pinned, h)
	}
	imp.mu.Unlock()
	if dup {
		return
	}
	imp.s.mu.Lock()
	imp.s.pins.pin(h)
	imp.s.mu.Unlock()
	n, err := imp.s.chunks.putChunk(h, j.data)
	if err != nil {
		imp.fail(err)
		return
	}
	if n > 0 {
		imp.stored.Add(n)
		imp.newChunks.Add(1)
		imp.mu.Lock()
		imp.dirty = true
		imp.mu.Unlock()
	}
}

func (imp *importer) fail(err error) {
	imp.errOnce.Do(func() { imp.err = err })
	imp.failed.Store(true)
}

func (imp *importer) file(path string) (pendingFile, error) {
	fd, err := os.Open(path)
	if err != nil {
		return pendingFile{}, err
	}
	defer fd.Close()
	info, err := fd.Stat()
	if err != nil {
		return pendingFile{}, err
	}
	return imp.read(info.Name(), info.Mode(), fd, chunking.ParamsFor(info.Name(), info.Size()))
}

// read cuts what r yields into chunks and hands them to the workers.
func (imp *importer) read(name string, mode os.FileMode, r io.Reader, p chunking.Params) (pendingFile, error) {
	f := pendingFile{File: File{Name: name, Mode: uint32(mode.Perm())}}
	ref := imp.ref.open(name)
	defer ref.close()
	// The page chunker's chunks are the importer's to keep (and pool);
	// the window chunker's are not, and are copied.
	var next func() (data []byte, pooled bool, err error)
	if p.Paged() {
		pc := chunking.NewPage(r)
		next = func() ([]byte, bool, error) {
			data, err := pc.Next()
			return data, true, err
		}
	} else {
		c := chunking.New(r, p)
		next = func() ([]byte, bool, error) {
			data, err := c.Next()
			return append([]byte(nil), data...), false, err
		}
	}
	for !imp.failed.Load() {
		data, pooled, err := next()
		if err == io.EOF {
			return f, nil
		}
		if err != nil {
			return pendingFile{}, err
		}
		ch := &Chunk{Size: int64(len(data))}
		known := ref.hashOf(f.Size, data)
		if known != "" {
			imp.reused.Add(1)
		}
		f.chunks = append(f.chunks, ch)
		f.Size += ch.Size
		imp.jobs <- job{chunk: ch, data: data, pooled: pooled, hash: known}
	}
	return pendingFile{}, errAborted
}

var errAborted = errors.New("aborted")

// finish waits for the workers. If all went well it makes the new chunks
// and their directory entries durable, so that a manifest saved afterwards cannot
// survive a power loss that its chunks do not; otherwise it drops the pins.
func (imp *importer) finish() error {
	close(imp.jobs)
	imp.wg.Wait()
	if imp.err == nil && imp.dirty {
		imp.err = atomicfile.SyncFS(imp.s.dir)
	}
	if imp.err != nil {
		imp.s.mu.Lock()
		imp.s.pins.unpinHashes(imp.pinned)
		imp.s.mu.Unlock()
	}
	return imp.err
}
