package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// FileReader reads a stored file at any offset, decompressing only the
// chunks a read touches and checking each against its hash. A missing or
// corrupt chunk makes ReadAt fail with an error that wraps ErrCorrupt and
// names the file.
type FileReader struct {
	s     *Store
	f     File
	start []int64 // start[i] is the offset of chunk i in the file
}

// Open returns a reader for f. It does not touch the disk until read.
func (s *Store) Open(f File) *FileReader {
	start := make([]int64, len(f.Chunks))
	var off int64
	for i, c := range f.Chunks {
		start[i] = off
		off += c.Size
	}
	return &FileReader{s: s, f: f, start: start}
}

// Size returns the file's length.
func (r *FileReader) Size() int64 { return r.f.Size }

// ReadAt implements io.ReaderAt.
func (r *FileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset", r.f.Name)
	}
	if off >= r.f.Size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	// The chunk containing off is the last one starting at or before it.
	i := sort.Search(len(r.start), func(i int) bool { return r.start[i] > off }) - 1
	n := 0
	for n < len(p) && i < len(r.f.Chunks) {
		c := r.f.Chunks[i]
		data, err := r.s.chunks.get(c.Hash)
		if err == nil && int64(len(data)) != c.Size {
			err = &chunkError{hash: c.Hash, reason: fmt.Sprintf("size %d, manifest says %d", len(data), c.Size)}
		}
		if err != nil {
			return n, inFile(r.f.Name, err)
		}
		n += copy(p[n:], data[off+int64(n)-r.start[i]:])
		i++
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Verify reads every chunk m uses from disk, bypassing the cache, and checks
// it against its name: the full check, which also catches a chunk
// file swapped for another (reads and exports check zstd's checksum). The
// error wraps ErrCorrupt and names the first file found damaged.
func (s *Store) Verify(m *Manifest) error {
	checked := map[string]bool{}
	for _, f := range m.Files {
		for _, c := range f.Chunks {
			if checked[c.Hash] {
				continue
			}
			comp, err := s.chunks.readRaw(c.Hash)
			var data []byte
			if err == nil {
				data, err = s.chunks.decodeStrict(c.Hash, comp)
			}
			if err == nil && int64(len(data)) != c.Size {
				err = &chunkError{hash: c.Hash, reason: fmt.Sprintf("size %d, manifest says %d", len(data), c.Size)}
			}
			if err != nil {
				return inFile(f.Name, err)
			}
			checked[c.Hash] = true
		}
	}
	return nil
}

// Export writes m's files into dir (created if needed) with their modes,
// for a consumer on this machine (CRIU): nothing is fsynced, since a crash
// loses nothing that the store does not still hold.
// Each file is verified as it is written and only renamed into place when
// complete, so a corrupt chunk never leaves a truncated image that CRIU
// might try to restore from. A cancelled ctx stops it between files, with
// ctx's error.
func (s *Store) Export(ctx context.Context, m *Manifest, dir string) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.chunks.exportFile(f, dir); err != nil {
			return err
		}
	}
	return nil
}

func (s *chunkStore) exportFile(f File, dir string) (err error) {
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = s.writeChunks(tmp, f); err != nil {
		return err
	}
	if err = tmp.Chmod(os.FileMode(f.Mode) & os.ModePerm); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	path := filepath.Join(dir, f.Name)
	if err = os.MkdirAll(filepath.Dir(path), 0o755); err != nil { // a chain's parent (manifest/chain.go)
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeChunks writes f's content to w. It reads every chunk from disk, not
// from the cache, so what is exported has been checked just now; and
// workers decompress chunks and write each at its offset, one per CPU and
// with no step in lockstep, because an export is on the critical path of
// a restore.
func (s *chunkStore) writeChunks(w io.WriterAt, f File) error {
	return s.writePieces(w, f.Name, filePieces(f, nil))
}

// piece is a chunk of a file at its offset.
type piece struct {
	c   Chunk
	off int64
}

// filePieces are f's chunks at their offsets, but for those that keep
// says are already written.
func filePieces(f File, keep func(piece) bool) []piece {
	out := make([]piece, 0, len(f.Chunks))
	var off int64
	for _, c := range f.Chunks {
		if p := (piece{c, off}); keep == nil || !keep(p) {
			out = append(out, p)
		}
		off += c.Size
	}
	return out
}

// writePieces writes the pieces of the file called name to w, as
// writeChunks does.
func (s *chunkStore) writePieces(w io.WriterAt, name string, todo []piece) error {
	pieces := make(chan piece)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		failed   atomic.Bool
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		failed.Store(true)
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer boostThread()()
			var comp, data []byte // reused: see decodeInto
			for p := range pieces {
				if failed.Load() {
					continue
				}
				var err error
				if comp, data, err = s.readChunk(p.c, comp, data); err != nil {
					fail(inFile(name, err))
					continue
				}
				if _, err := w.WriteAt(data, p.off); err != nil {
					fail(err)
				}
			}
		}()
	}
	for _, p := range todo {
		if failed.Load() {
			break
		}
		pieces <- p
	}
	close(pieces)
	wg.Wait()
	return firstErr
}

// readChunk reads c from disk (not from the cache, so that it has been
// checked just now) and decompresses it, reusing comp's and data's space;
// it returns them for the next call.
func (s *chunkStore) readChunk(c Chunk, comp, data []byte) ([]byte, []byte, error) {
	comp, err := s.readRawInto(c.Hash, comp)
	if err != nil {
		return comp, data, err
	}
	decoded, err := s.decodeInto(c.Hash, comp, data)
	if err != nil {
		return comp, data, err
	}
	if int64(len(decoded)) != c.Size {
		return comp, decoded, &chunkError{hash: c.Hash, reason: fmt.Sprintf("size %d, manifest says %d", len(decoded), c.Size)}
	}
	return comp, decoded, nil
}
