package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"ctrfs/images"
)

// Keys of the image store. Saved state of a container lives under
// state/NAME; stateful snapshots under snapshots/NAME/SNAPSHOT.
func stateKey(name string) string { return "state/" + name }

func snapshotPrefix(name string) string { return "snapshots/" + name + "/" }

// HasState says whether the container has saved state (after
// stop-stateful), sound or not: saved state that cannot be read is still
// there until `stop` discards it.
func (m *Manager) HasState(name string) bool {
	_, err := m.images.Load(stateKey(name))
	return !errors.Is(err, fs.ErrNotExist)
}

// ImageFile is one CRIU image file of saved state, as the state/ directory
// lists it.
type ImageFile struct {
	Name string
	Size int64 // uncompressed
}

// ImageSet is one stored set of CRIU images (saved state, or a stateful
// snapshot's), readable file by file without unpacking it.
type ImageSet struct {
	store    *images.Store
	manifest *images.Manifest
}

// SavedState returns the container's saved state; ErrNotFound if it has none.
func (m *Manager) SavedState(name string) (*ImageSet, error) {
	mf, err := m.images.Load(stateKey(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, newError(ErrNotFound, name+" has no saved state", nil)
	}
	if IsDamaged(err) {
		return nil, newError(ErrFailed, fmt.Sprintf(
			"saved state of %s cannot be restored (`stop` discards it)", name), err)
	}
	if err != nil {
		return nil, newError(ErrFailed, "load saved state of "+name, err)
	}
	return &ImageSet{store: m.images, manifest: mf}, nil
}

// Created is when the images were stored.
func (s *ImageSet) Created() time.Time { return s.manifest.Created }

// Files lists the image files in CRIU's order of names.
func (s *ImageSet) Files() []ImageFile {
	out := make([]ImageFile, 0, len(s.manifest.Files))
	for _, f := range s.manifest.Files {
		out = append(out, ImageFile{Name: f.Name, Size: f.Size})
	}
	return out
}

// Open returns a random-access reader of one file: a read at an offset
// decompresses only the chunks it touches, each checked against its hash.
func (s *ImageSet) Open(name string) (io.ReaderAt, int64, error) {
	f, ok := s.manifest.File(name)
	if !ok {
		return nil, 0, newError(ErrNotFound, "no image file "+name, nil)
	}
	r := s.store.Open(f)
	return readerAt{r}, r.Size(), nil
}

// readerAt turns the store's corruption errors into ErrFailed (EIO).
type readerAt struct{ r io.ReaderAt }

func (ra readerAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := ra.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = newError(ErrFailed, "read image", err)
	}
	return n, err
}

// PS is the process tree of the images, decoded with go-criu's crit:
// one `PID PPID COMMAND` line per process under a header.
func (s *ImageSet) PS() ([]byte, error) {
	procs, err := images.ProcessTree(s.store.FS(s.manifest))
	if err != nil {
		return nil, newError(ErrFailed, "decode process tree", err)
	}
	return images.FormatPS(procs), nil
}

// StoredBytes is what the set takes in the store, compressed, counting
// chunks it shares with other sets.
func (s *ImageSet) StoredBytes() int64 {
	return s.store.StoredSize(s.manifest)
}

// storeInfo is the part of `info` about what the store keeps of a container.
// stateful is yes, no, or damaged (saved state that start cannot restore
// and only stop discards); damaged-manifests says where the damaged
// manifests of its saved state and snapshots are kept.
func (m *Manager) storeInfo(name string) []KeyValue {
	snaps, _ := m.Snapshots(name)
	kv := []KeyValue{{Key: "snapshots", Value: fmt.Sprint(len(snaps))}}
	st, err := m.SavedState(name)
	switch {
	case err == nil:
		kv = append(kv, KeyValue{Key: "stateful", Value: "yes"},
			KeyValue{Key: "state-raw-bytes", Value: fmt.Sprint(st.manifest.Size())},
			KeyValue{Key: "state-stored-bytes", Value: fmt.Sprint(st.StoredBytes())})
	case errors.Is(err, ErrNotFound):
		kv = append(kv, KeyValue{Key: "stateful", Value: "no"})
	default:
		kv = append(kv, KeyValue{Key: "stateful", Value: "damaged"})
	}
	return append(kv, KeyValue{Key: "damaged-manifests", Value: strings.Join(m.damagedPaths(name), " ")})
}

// dropState deletes saved state, if any, and frees its chunks.
func (m *Manager) dropState(name string) error {
	err := m.images.Delete(stateKey(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return newError(ErrFailed, "drop saved state of "+name, err)
	}
	m.collectGarbage()
	return nil
}

// dropStoreData deletes everything the store keeps of a destroyed container.
func (m *Manager) dropStoreData(name string) error {
	snaps, err := m.Snapshots(name)
	if err != nil {
		return err
	}
	keys := []string{stateKey(name)}
	for _, s := range snaps {
		keys = append(keys, snapshotKey(name, s))
	}
	for _, k := range keys {
		if err := m.images.Delete(k); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return newError(ErrFailed, "delete "+k, err)
		}
	}
	m.collectGarbage()
	return nil
}

// freeFailedImport frees the chunks of an import that failed before the
// command returns, not at some later collection: after "no space left on
// device" the next checkpoint must find the room it had before.
func (m *Manager) freeFailedImport(ctx context.Context) {
	freed, err := m.images.GC(ctx)
	if err != nil {
		m.log.Warn("cannot free the chunks of a failed import", "err", err)
		return
	}
	m.log.Info("freed the chunks of a failed import", "bytes", freed)
}

// gcState serialises garbage collection, which runs in the background so
// that it never adds to an operation's downtime.
type gcState struct {
	mu      sync.Mutex
	pending bool
	running bool
	runs    int64         // passes finished, for metrics
	last    time.Duration // the last pass's time, for metrics
}

// GCStats are how many garbage collection passes have finished and how
// long the last one took.
func (m *Manager) GCStats() (runs int64, last time.Duration) {
	m.gc.mu.Lock()
	defer m.gc.mu.Unlock()
	return m.gc.runs, m.gc.last
}

// collectGarbage frees chunks that no saved manifest uses any more. Calls
// made while a collection runs fold into one more run after it. It runs
// under the daemon's root context: at shutdown no sweep starts any more,
// since the process is about to exit anyway and the next daemon collects
// at its start.
func (m *Manager) collectGarbage() {
	m.gc.mu.Lock()
	if m.gc.running {
		m.gc.pending = true
		m.gc.mu.Unlock()
		return
	}
	m.gc.running = true
	m.gc.mu.Unlock()
	go func() {
		for {
			start := time.Now()
			if freed, err := m.images.GC(m.ctx); errors.Is(err, context.Canceled) {
				m.log.Debug("image store garbage collection stopped at shutdown")
			} else if err != nil {
				m.log.Warn("image store garbage collection failed", "err", err)
			} else if freed > 0 {
				m.log.Debug("image store garbage collected", "bytes", freed)
			}
			m.gc.mu.Lock()
			m.gc.runs++
			m.gc.last = time.Since(start)
			if !m.gc.pending {
				m.gc.running = false
				m.gc.mu.Unlock()
				return
			}
			m.gc.pending = false
			m.gc.mu.Unlock()
		}
	}()
}

// StoreUsage is what the image store holds, for metrics: kept from the
// last GC pass or scrape while the store has not changed.
func (m *Manager) StoreUsage() (images.Usage, error) { return m.images.Usage() }
