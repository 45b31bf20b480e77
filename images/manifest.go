package images

import (
	"os"

	"ctrfs/images/chunking"
	"ctrfs/images/manifest"
)

// The manifest format is images/manifest's; these names keep its types and
// the chains' helpers where the store's callers have always found them.
type (
	Manifest = manifest.Manifest
	File     = manifest.File
	Chunk    = manifest.Chunk
)

// ParentDir is the entry through which CRIU finds a dump's parent images
// (see manifest.ParentDir).
const ParentDir = manifest.ParentDir

// Chain is own's files with parent's under ParentDir (see manifest.Chain).
func Chain(own, parent *Manifest) *Manifest { return manifest.Chain(own, parent) }

// AsParent is m's files under ParentDir (see manifest.AsParent).
func AsParent(m *Manifest) *Manifest { return manifest.AsParent(m) }

// StoreFormat is the newest store format this ctrfs reads and writes (see
// chunking/hash.go), for peers to compare before they send chunks.
const StoreFormat = manifest.Newest

// StoredSize returns the compressed bytes of the distinct chunks m uses,
// counting chunks shared with other manifests in full.
func (s *Store) StoredSize(m *Manifest) int64 {
	var n int64
	for _, h := range m.Hashes() {
		if !chunking.ValidHash(h) {
			continue
		}
		if fi, err := os.Stat(s.chunks.chunkPath(h)); err == nil {
			n += fi.Size()
		}
	}
	return n
}
