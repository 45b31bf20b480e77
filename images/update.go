package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Update makes dir, which holds the files have as Export wrote them, hold
// m's files instead, writing only what differs: a file of m whose chunk
// at an offset is the one have has there keeps those bytes, and only the
// other chunks are read, checked and written. Files of have that m lacks
// are removed. For a directory unpacked ahead from an earlier dump of the
// same processes (a migration's precopy), that is the little the final
// dump changed. It returns the bytes written. If it fails, dir is left
// part old, part new: the caller removes it. So it is when ctx is
// cancelled, which stops it between files.
func (s *Store) Update(ctx context.Context, dir string, have []File, m *Manifest) (int64, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	old := map[string]File{}
	for _, f := range have {
		old[f.Name] = f
	}
	var written int64
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		prev, ok := old[f.Name]
		delete(old, f.Name)
		if !ok {
			if err := s.chunks.exportFile(f, dir); err != nil {
				return written, err
			}
			written += f.Size
			continue
		}
		n, err := s.chunks.updateFile(filepath.Join(dir, f.Name), prev, f)
		written += n
		if err != nil {
			return written, err
		}
	}
	for name := range old {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
			return written, err
		}
	}
	// A chain's parent directories that m no longer has (manifest/chain.go):
	// CRIU would look for parent images in them. Deepest first; one
	// that still holds files stays.
	for name := range old {
		for d := filepath.Dir(name); d != "."; d = filepath.Dir(d) {
			os.Remove(filepath.Join(dir, d))
		}
	}
	return written, nil
}

// updateFile rewrites the chunks of the file at path (which holds prev)
// that are not prev's at the same offset, and sets its size and mode.
func (s *chunkStore) updateFile(path string, prev, f File) (int64, error) {
	same := map[piece]bool{}
	for _, p := range filePieces(prev, nil) {
		same[p] = true
	}
	todo := filePieces(f, func(p piece) bool { return same[p] })
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() != prev.Size {
		return 0, fmt.Errorf("images: %s is %d bytes, not the %d unpacked there", path, fi.Size(), prev.Size)
	}
	var n int64
	for _, p := range todo {
		n += p.c.Size
	}
	if err := file.Truncate(f.Size); err != nil {
		return 0, err
	}
	if err := s.writePieces(file, f.Name, todo); err != nil {
		return n, err
	}
	if err := file.Chmod(os.FileMode(f.Mode) & os.ModePerm); err != nil {
		return n, err
	}
	return n, file.Close()
}
