package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ctrfs/images/atomicfile"
	"ctrfs/images/chunking"
)

// staleTemp is how old a temporary file of this process must be before GC
// treats it as left over; younger ones may belong to a write in progress,
// which runs outside s.mu. Those of other processes go at once (atomicfile.TempPrefix):
// waiting an hour for them left a daemon restarted after a kill holding the
// half-written chunk of the killed import, and the store never matched its
// manifests.
const staleTemp = time.Hour

// pins are the chunks GC must keep although no saved manifest names them
// yet: those of imports and transfers in progress, and of manifests
// imported but not yet saved. They know hashes and manifests only, not
// the store; the Store's mu guards them, and every method here must be
// called with it held.
type pins struct {
	count map[string]int         // chunk hash -> imports that still need it
	held  map[*Manifest][]string // hashes pinned on behalf of an unsaved manifest
}

// pin protects a chunk from GC before the manifest that will name it is
// saved. It must be taken before checking whether the chunk exists, otherwise
// GC could delete an existing copy after the check.
func (p *pins) pin(hash string) { p.count[hash]++ }

func (p *pins) unpinHashes(hashes []string) {
	for _, h := range hashes {
		if p.count[h]--; p.count[h] <= 0 {
			delete(p.count, h)
		}
	}
}

func (p *pins) unpin(m *Manifest) {
	if hashes, ok := p.held[m]; ok {
		delete(p.held, m)
		p.unpinHashes(hashes)
	}
}

// Release ends the GC protection ImportDir gave m's chunks, for a manifest
// that will not be saved. It does nothing for other manifests.
func (s *Store) Release(m *Manifest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pins.unpin(m)
}

// GC deletes every chunk that no saved manifest names and no unsaved import
// still holds, plus temporary files left by a killed process, and returns the bytes
// freed. A damaged manifest is moved aside (see damaged.go) and the chunks
// it names are kept. If any other manifest cannot be read it deletes
// nothing: sweeping with an incomplete mark would destroy chunks of a live
// checkpoint. Saves, deletes and imports wait while GC runs. A ctx
// cancelled before the sweep deletes nothing either.
func (s *Store) GC(ctx context.Context) (int64, error) {
	s.mu.Lock()
	freed, damaged, err := s.gcLocked(ctx)
	s.mu.Unlock()
	s.reportDamaged(damaged)
	return freed, err
}

func (s *Store) gcLocked(ctx context.Context) (int64, []*DamagedError, error) {
	live := map[string]bool{}
	for h := range s.pins.count {
		live[h] = true
	}
	var damaged []*DamagedError
	var count usageCount // for metrics: what Usage would count
	err := s.walkManifests(func(key, path string) error {
		m, err := s.loadPath(path, key)
		if errors.Is(err, ErrDamaged) {
			var de *DamagedError
			m, de, err = s.quarantineLocked(key)
			if de != nil {
				damaged = append(damaged, de)
				return nil
			}
		}
		if err != nil {
			return err
		}
		for _, h := range m.Hashes() {
			live[h] = true
		}
		count.manifest(m)
		return nil
	})
	if err == nil {
		err = s.markDamagedLocked(live)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return 0, damaged, fmt.Errorf("images: gc: not sweeping: %w", err)
	}
	freed, err := s.sweepLocked(live, &count)
	if err == nil {
		s.usage.changed()
		s.usage.keep(count.u, s.usage.gen.Load())
	}
	return freed, damaged, err
}

// sweepLocked deletes the chunks not in live, and stale temporary files,
// and counts the chunks it keeps.
func (s *Store) sweepLocked(live map[string]bool, count *usageCount) (int64, error) {
	var freed int64
	cutoff := time.Now().Add(-staleTemp)
	for i := 0; i < 256; i++ {
		dir := filepath.Join(s.dir, "chunks", fmt.Sprintf("%02x", i))
		entries, err := os.ReadDir(dir)
		if err != nil {
			return freed, err
		}
		for _, e := range entries {
			name := e.Name()
			temp := strings.HasPrefix(name, ".tmp-")
			if !temp && !chunking.ValidHash(name) {
				continue // not ours to delete
			}
			if !temp && live[name] {
				if info, err := e.Info(); err == nil {
					count.chunk(info.Size())
				}
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // already gone
			}
			if temp && strings.HasPrefix(name, atomicfile.TempPrefix) && info.ModTime().After(cutoff) {
				continue // ours, and maybe still being written
			}
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return freed, err
			}
			s.chunks.cache.remove(name)
			freed += info.Size()
		}
	}
	return freed, nil
}
