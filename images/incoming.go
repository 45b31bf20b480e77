package images

import (
	"sync"

	"ctrfs/images/atomicfile"
	"ctrfs/images/chunking"
)

// Incoming receives chunks from another store for manifests that will be
// saved here. Every chunk it reports present or receives is protected from
// GC until Close, so a collection during a long transfer cannot take a
// chunk that a manifest about to be saved names.
type Incoming struct {
	s *Store

	mu     sync.Mutex
	pinned []string
	dirty  bool
}

func (s *Store) Incoming() *Incoming { return &Incoming{s: s} }

// Missing returns the hashes this store lacks, and pins those it has.
func (in *Incoming) Missing(hashes []string) []string {
	in.s.mu.Lock()
	defer in.s.mu.Unlock()
	in.mu.Lock()
	defer in.mu.Unlock()
	var missing []string
	for _, h := range hashes {
		if !chunking.ValidHash(h) {
			continue
		}
		in.s.pins.pin(h)
		in.pinned = append(in.pinned, h)
		if !in.s.Has(h) {
			missing = append(missing, h)
		}
	}
	return missing
}

// Put stores one chunk as ReadChunk on the other store returned it, after
// checking that it decompresses to content matching hash. It is durable
// after Sync.
func (in *Incoming) Put(hash string, compressed []byte) error {
	in.s.mu.Lock()
	in.s.pins.pin(hash)
	in.s.mu.Unlock()
	in.mu.Lock()
	in.pinned = append(in.pinned, hash)
	in.mu.Unlock()
	if in.s.Has(hash) {
		return nil
	}
	if _, err := in.s.chunks.decodeStrict(hash, compressed); err != nil {
		return err
	}
	if err := atomicfile.WriteRenamed(in.s.chunks.chunkPath(hash), compressed, false); err != nil {
		return err
	}
	in.mu.Lock()
	in.dirty = true
	in.mu.Unlock()
	return nil
}

// Sync makes the chunks received so far durable, so that a manifest saved
// afterwards never names a chunk a power loss could take.
func (in *Incoming) Sync() error {
	in.mu.Lock()
	dirty := in.dirty
	in.dirty = false
	in.mu.Unlock()
	if !dirty {
		return nil
	}
	return atomicfile.SyncFS(in.s.dir)
}

// Close ends the protection; chunks no saved manifest names are then free
// for GC.
func (in *Incoming) Close() {
	in.s.mu.Lock()
	defer in.s.mu.Unlock()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.s.pins.unpinHashes(in.pinned)
	in.pinned = nil
}
