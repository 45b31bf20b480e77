package images

import (
	"bytes"
	"os"
	"path/filepath"
)

// Why a reference: without the kernel's dirty-page tracking, every dump
// holds all of a container's memory, and the final dump of a live
// migration is taken while the container is down. The dump before it (a
// precopy) is still on /dev/shm with its manifest, and most of its bytes
// are the same at the same offsets; comparing a chunk with those bytes
// costs a fraction of hashing it, so the import of the final dump only
// hashes what changed.

// Reference is an earlier import of files that are still on disk as they
// were imported. Its manifest must stay held (unsaved, or saved and not
// deleted) while imports use it, so that its chunks exist.
type Reference struct {
	dir   string
	files map[string]map[int64]Chunk // file name -> chunk by offset
}

// NewReference describes the files of dir as m imported them.
func NewReference(dir string, m *Manifest) *Reference {
	r := &Reference{dir: dir, files: map[string]map[int64]Chunk{}}
	for _, f := range m.Files {
		at := map[int64]Chunk{}
		var off int64
		for _, c := range f.Chunks {
			at[off] = c
			off += c.Size
		}
		r.files[f.Name] = at
	}
	return r
}

// refFile is one file of a reference, open for one import.
type refFile struct {
	f   *os.File
	at  map[int64]Chunk
	buf []byte
}

func (r *Reference) open(name string) *refFile {
	if r == nil || r.files[name] == nil {
		return nil
	}
	f, err := os.Open(filepath.Join(r.dir, name))
	if err != nil {
		return nil
	}
	return &refFile{f: f, at: r.files[name]}
}

// hashOf returns the hash of the reference's chunk at off if data is that
// chunk byte for byte, or "".
func (rf *refFile) hashOf(off int64, data []byte) string {
	if rf == nil {
		return ""
	}
	c, ok := rf.at[off]
	if !ok || c.Size != int64(len(data)) {
		return ""
	}
	if cap(rf.buf) < len(data) {
		rf.buf = make([]byte, len(data))
	}
	buf := rf.buf[:len(data)]
	if n, _ := rf.f.ReadAt(buf, off); n != len(buf) {
		return ""
	}
	if !bytes.Equal(buf, data) {
		return ""
	}
	return c.Hash
}

func (rf *refFile) close() {
	if rf != nil {
		rf.f.Close()
	}
}
