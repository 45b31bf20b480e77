// Package manifest is the format of a stored image set: a Manifest lists
// files, each the concatenation of chunks named by their content
// (images/chunking), its version and checksum, its checks, and the chains
// of a dump and its pre-dump parents. It knows nothing of where manifests
// or chunks are stored, keys or GC: the images package does that.
package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	"ctrfs/images/chunking"
)

// Newest is the manifest version this ctrfs writes: versions let a host
// refuse a manifest from a newer ctrfs whose format it does not
// understand, instead of misreading it. Version 2 may
// name BLAKE3 chunks (see chunking/hash.go); version 1, written before them, names
// only SHA-256 ones, and is still read.
const (
	Newest         = 2
	oldestManifest = 1
	// ChecksummedSince is the first version whose manifests all carry a
	// checksum: checksums came before store format 2, so a manifest of
	// version 2 or later without one did not come from ctrfs.
	ChecksummedSince = 2
)

// Manifest lists the files of one image directory. It names chunks only by
// content hash, so it can be sent to another host that fetches the chunks it
// lacks.
type Manifest struct {
	Version int       `json:"version"`
	Files   []File    `json:"files"`
	Created time.Time `json:"created"`
	// Meta is the owner's description of what the files are (a snapshot's
	// kind, say), so that the manifest alone describes them to a peer.
	Meta map[string]string `json:"meta,omitempty"`
	// Checksum is the SHA-256 of the manifest's JSON without it (see
	// images' parseManifest): a manifest damaged at rest is then told from one
	// whose bytes merely parse. Version 1 manifests of older ctrfs may
	// have none.
	Checksum string `json:"checksum,omitempty"`
}

// File is one image file: its bytes are the concatenation of its chunks.
type File struct {
	Name   string  `json:"name"`
	Size   int64   `json:"size"`
	Mode   uint32  `json:"mode"` // permission bits
	Chunks []Chunk `json:"chunks"`
}

// Chunk names a stored chunk by the hash of its uncompressed content
// (see chunking/hash.go).
type Chunk struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"` // uncompressed length
}

// Size returns the logical (uncompressed) size of all files.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// File returns the file called name.
func (m *Manifest) File(name string) (File, bool) {
	for _, f := range m.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// Only is a copy of m with the files keep accepts, in order: a part of an
// image directory to export or browse on its own.
func (m *Manifest) Only(keep func(File) bool) *Manifest {
	c := m.Clone()
	c.Files = nil
	for _, f := range m.Files {
		if keep(f) {
			c.Files = append(c.Files, f)
		}
	}
	return c
}

// Hashes returns the distinct chunk hashes of m, in first-use order.
func (m *Manifest) Hashes() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range m.Files {
		for _, c := range f.Chunks {
			if !seen[c.Hash] {
				seen[c.Hash] = true
				out = append(out, c.Hash)
			}
		}
	}
	return out
}

// Validate rejects manifests that would make Export write outside its
// directory or make readers index past a chunk, since manifests may come
// from other hosts.
func (m *Manifest) Validate() error {
	if m.Version < oldestManifest || m.Version > Newest {
		return fmt.Errorf("images: unsupported manifest version %d", m.Version)
	}
	names := map[string]bool{}
	for _, f := range m.Files {
		if !validPathName(f.Name) {
			return fmt.Errorf("images: invalid file name %q in manifest", f.Name)
		}
		if names[f.Name] {
			return fmt.Errorf("images: file %q listed twice in manifest", f.Name)
		}
		names[f.Name] = true
		var sum int64
		for _, c := range f.Chunks {
			if !chunking.ValidHash(c.Hash) || (m.Version == 1 && !chunking.IsSHA256Name(c.Hash)) || c.Size <= 0 || c.Size > chunking.MaxDecoded {
				return fmt.Errorf("images: %s: invalid chunk %q size %d in manifest", f.Name, c.Hash, c.Size)
			}
			sum += c.Size
		}
		if sum != f.Size {
			return fmt.Errorf("images: %s: size %d but chunks add up to %d", f.Name, f.Size, sum)
		}
	}
	return nil
}

func validFileName(name string) bool {
	return name != "" && name != "." && name != ".." &&
		!strings.ContainsAny(name, "/\x00") && len(name) <= 255
}

// Sum is the SHA-256 of the manifest's JSON without its checksum.
func (m *Manifest) Sum() (string, error) {
	c := *m
	c.Checksum = ""
	data, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// Clone copies what a caller might change: the file list and the meta.
// Chunk lists are shared; nothing changes them once parsed.
func (m *Manifest) Clone() *Manifest {
	c := *m
	c.Files = append([]File(nil), m.Files...)
	c.Meta = maps.Clone(m.Meta)
	return &c
}
