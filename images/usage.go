package images

import (
	"fmt"
	"os"
	"path/filepath"
)

// Usage is what the store holds, for metrics.
type Usage struct {
	Chunks        int   // chunk files
	StoredBytes   int64 // their compressed bytes on disk
	LogicalBytes  int64 // the files the manifests list, counted once per manifest
	UniqueBytes   int64 // the uncompressed bytes of the distinct chunks they name
	ManifestCount int
}

// DedupRatio is logical over unique bytes: how many times over the saved
// state and snapshots would fill the disk without sharing chunks (before
// compression); 1 for an empty store.
func (u Usage) DedupRatio() float64 {
	if u.UniqueBytes == 0 {
		return 1
	}
	return float64(u.LogicalBytes) / float64(u.UniqueBytes)
}

// Usage reads the manifests and lists the chunks. It takes no lock: a
// save or GC under way may be half counted, which a metric can bear.
func (s *Store) Usage() (Usage, error) {
	var u Usage
	seen := map[string]bool{}
	err := s.walkManifests(func(key, path string) error {
		m, err := s.loadPath(path, key)
		if err != nil {
			return nil // removed meanwhile, or not ours: not counted
		}
		u.ManifestCount++
		u.LogicalBytes += m.Size()
		for _, f := range m.Files {
			for _, c := range f.Chunks {
				if !seen[c.Hash] {
					seen[c.Hash] = true
					u.UniqueBytes += c.Size
				}
			}
		}
		return nil
	})
	if err != nil {
		return u, err
	}
	for i := 0; i < 256; i++ {
		entries, err := os.ReadDir(filepath.Join(s.dir, "chunks", fmt.Sprintf("%02x", i)))
		if err != nil {
			return u, err
		}
		for _, e := range entries {
			if !validHash(e.Name()) {
				continue
			}
			if info, err := e.Info(); err == nil {
				u.Chunks++
				u.StoredBytes += info.Size()
			}
		}
	}
	return u, nil
}
