package images

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"ctrfs/images/chunking"
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

// usageCache keeps the last Usage counted, by Usage or by a GC pass (which
// reads every manifest and lists every chunk anyway), with the store's
// generation it counted: a metrics scrape of a store that did not change
// since costs nothing, where it walked the whole store.
type usageCache struct {
	// gen counts the changes of the manifests (Save, Delete, a damaged
	// one moved aside) and GC's sweeps. Chunks an import writes before
	// its manifest is saved count from that save on.
	gen atomic.Uint64

	mu    sync.Mutex
	valid bool
	at    uint64 // the gen u was counted at
	u     Usage
}

// changed marks the usage counted so far as stale.
func (c *usageCache) changed() { c.gen.Add(1) }

// keep remembers u, counted at generation gen.
func (c *usageCache) keep(u Usage, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || gen >= c.at {
		c.u, c.at, c.valid = u, gen, true
	}
}

// fresh is the usage kept, if the store has not changed since.
func (c *usageCache) fresh() (Usage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.u, c.valid && c.at == c.gen.Load()
}

// usageCount adds up a Usage as manifests and chunks are met.
type usageCount struct {
	u    Usage
	seen map[string]bool // chunks counted in UniqueBytes
}

func (c *usageCount) manifest(m *Manifest) {
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	c.u.ManifestCount++
	c.u.LogicalBytes += m.Size()
	for _, f := range m.Files {
		for _, ch := range f.Chunks {
			if !c.seen[ch.Hash] {
				c.seen[ch.Hash] = true
				c.u.UniqueBytes += ch.Size
			}
		}
	}
}

func (c *usageCount) chunk(stored int64) {
	c.u.Chunks++
	c.u.StoredBytes += stored
}

// Usage is what the store holds: as the last GC pass or Usage counted it
// if nothing changed since, else read from the manifests and the chunk
// directories. It takes no lock: a save or GC under way may be half
// counted, which a metric can bear.
func (s *Store) Usage() (Usage, error) {
	if u, ok := s.usage.fresh(); ok {
		return u, nil
	}
	gen := s.usage.gen.Load()
	var c usageCount
	err := s.walkManifests(func(key, path string) error {
		m, err := s.loadPath(path, key)
		if err != nil {
			return nil // removed meanwhile, or not ours: not counted
		}
		c.manifest(m)
		return nil
	})
	if err != nil {
		return c.u, err
	}
	for i := 0; i < 256; i++ {
		entries, err := os.ReadDir(filepath.Join(s.dir, "chunks", fmt.Sprintf("%02x", i)))
		if err != nil {
			return c.u, err
		}
		for _, e := range entries {
			if !chunking.ValidHash(e.Name()) {
				continue
			}
			if info, err := e.Info(); err == nil {
				c.chunk(info.Size())
			}
		}
	}
	s.usage.keep(c.u, gen)
	return c.u, nil
}
