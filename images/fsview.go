package images

import (
	"errors"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// FS presents m's files as a read-only, flat fs.FS, so that code written for
// directories (fs.ReadFile, ProcessTree, os.DirFS in tests) can read a stored
// checkpoint without exporting it first. Files also implement io.ReaderAt
// and io.Seeker.
func (s *Store) FS(m *Manifest) fs.FS { return &manifestFS{s: s, m: m} }

type manifestFS struct {
	s *Store
	m *Manifest
}

func (mfs *manifestFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		var entries []fs.DirEntry
		for _, f := range mfs.m.Files {
			if strings.Contains(f.Name, "/") {
				continue // a chain's parent images (manifest/chain.go): not this directory's
			}
			entries = append(entries, fs.FileInfoToDirEntry(fileInfo{f, mfs.m.Created}))
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		return &dirFile{entries: entries, modTime: mfs.m.Created}, nil
	}
	f, ok := mfs.m.File(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	r := mfs.s.Open(f)
	return &storedFile{io.NewSectionReader(r, 0, r.Size()), fileInfo{f, mfs.m.Created}}, nil
}

type storedFile struct {
	*io.SectionReader
	info fileInfo
}

func (f *storedFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *storedFile) Close() error               { return nil }

// fileInfo reports the manifest's creation time as every file's mtime: the
// store does not keep per-file times, and the checkpoint time is what a
// reader wants to see.
type fileInfo struct {
	f       File
	modTime time.Time
}

func (i fileInfo) Name() string       { return i.f.Name }
func (i fileInfo) Size() int64        { return i.f.Size }
func (i fileInfo) Mode() fs.FileMode  { return fs.FileMode(i.f.Mode) & fs.ModePerm }
func (i fileInfo) ModTime() time.Time { return i.modTime }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }

type dirFile struct {
	entries []fs.DirEntry
	modTime time.Time
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return dirInfo{d.modTime}, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: ".", Err: errors.New("is a directory")}
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	out := d.entries[:n]
	d.entries = d.entries[n:]
	return out, nil
}

type dirInfo struct{ modTime time.Time }

func (dirInfo) Name() string         { return "." }
func (dirInfo) Size() int64          { return 0 }
func (dirInfo) Mode() fs.FileMode    { return fs.ModeDir | 0o555 }
func (i dirInfo) ModTime() time.Time { return i.modTime }
func (dirInfo) IsDir() bool          { return true }
func (dirInfo) Sys() any             { return nil }
