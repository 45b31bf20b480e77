// Package stored is what this host keeps of its containers in the image
// store (images/), and under which keys: saved state under state/NAME,
// snapshots under snapshots/NAME/SNAP, the rootfs archive of a move on
// its way out under moving/NAME. It reads the CRIU images of saved state
// and snapshots file by file (ImageSet), drops what a container no longer
// has, and runs the garbage collection that frees the chunks no key holds
// any more. It knows nothing of LXC, CRIU, operations' locks or moves.
package stored

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"ctrfs/images"
	"ctrfs/images/critview"
	"ctrfs/ops/errkind"
	"ctrfs/ops/opctx"
)

// Keys of the image store. Saved state of a container lives under
// state/NAME; stateful snapshots under snapshots/NAME/SNAPSHOT.
func StateKey(name string) string { return "state/" + name }

func SnapshotPrefix(name string) string { return "snapshots/" + name + "/" }

func SnapshotKey(name, snap string) string { return SnapshotPrefix(name) + snap }

// MovingKey holds the rootfs archive and config of a container on its way
// out, saved so that its chunks are safe from GC while they are sent.
func MovingKey(name string) string { return "moving/" + name }

// Store is what this host keeps of its containers in images.
type Store struct {
	images *images.Store
	ctx    context.Context // the daemon's root context: GC stops with it
	log    *slog.Logger
	gc     gcState
}

// New keeps this host's containers in images; ctx is the daemon's root
// context, which ends background collections at shutdown.
func New(images *images.Store, ctx context.Context, log *slog.Logger) *Store {
	return &Store{images: images, ctx: ctx, log: log}
}

// Images is the image store itself.
func (s *Store) Images() *images.Store { return s.images }

// HasState says whether the container has saved state (after
// stop-stateful), sound or not: saved state that cannot be read is still
// there until `stop` discards it.
func (s *Store) HasState(name string) bool {
	_, err := s.images.Load(StateKey(name))
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
func (s *Store) SavedState(name string) (*ImageSet, error) {
	mf, err := s.images.Load(StateKey(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errkind.New(errkind.ErrNotFound, name+" has no saved state", nil)
	}
	if IsDamaged(err) {
		return nil, errkind.New(errkind.ErrFailed, fmt.Sprintf(
			"saved state of %s cannot be restored (`stop` discards it)", name), err)
	}
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "load saved state of "+name, err)
	}
	return &ImageSet{store: s.images, manifest: mf}, nil
}

// Created is when the images were stored.
func (set *ImageSet) Created() time.Time { return set.manifest.Created }

// Files lists the image files in CRIU's order of names.
func (set *ImageSet) Files() []ImageFile {
	out := make([]ImageFile, 0, len(set.manifest.Files))
	for _, f := range set.manifest.Files {
		out = append(out, ImageFile{Name: f.Name, Size: f.Size})
	}
	return out
}

// Open returns a random-access reader of one file: a read at an offset
// decompresses only the chunks it touches, each checked against its hash.
func (set *ImageSet) Open(name string) (io.ReaderAt, int64, error) {
	f, ok := set.manifest.File(name)
	if !ok {
		return nil, 0, errkind.New(errkind.ErrNotFound, "no image file "+name, nil)
	}
	r := set.store.Open(f)
	return readerAt{r}, r.Size(), nil
}

// readerAt turns the store's corruption errors into ErrFailed (EIO).
type readerAt struct{ r io.ReaderAt }

func (ra readerAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := ra.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = errkind.New(errkind.ErrFailed, "read image", err)
	}
	return n, err
}

// PS is the process tree of the images, decoded with go-criu's crit:
// one `PID PPID COMMAND` line per process under a header.
func (set *ImageSet) PS() ([]byte, error) {
	procs, err := critview.ProcessTree(set.store.FS(set.manifest))
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "decode process tree", err)
	}
	return critview.FormatPS(procs), nil
}

// StoredBytes is what the set takes in the store, compressed, counting
// chunks it shares with other sets.
func (set *ImageSet) StoredBytes() int64 {
	return set.store.StoredSize(set.manifest)
}

// Info is the part of `info` about what the store keeps of a container.
// stateful is yes, no, or damaged (saved state that start cannot restore
// and only stop discards); damaged-manifests says where the damaged
// manifests of its saved state and snapshots are kept.
func (s *Store) Info(name string) []opctx.KeyValue {
	snaps, _ := s.Snapshots(name)
	kv := []opctx.KeyValue{{Key: "snapshots", Value: fmt.Sprint(len(snaps))}}
	st, err := s.SavedState(name)
	switch {
	case err == nil:
		kv = append(kv, opctx.KeyValue{Key: "stateful", Value: "yes"},
			opctx.KeyValue{Key: "state-raw-bytes", Value: fmt.Sprint(st.manifest.Size())},
			opctx.KeyValue{Key: "state-stored-bytes", Value: fmt.Sprint(st.StoredBytes())})
	case errors.Is(err, errkind.ErrNotFound):
		kv = append(kv, opctx.KeyValue{Key: "stateful", Value: "no"})
	default:
		kv = append(kv, opctx.KeyValue{Key: "stateful", Value: "damaged"})
	}
	return append(kv, opctx.KeyValue{Key: "damaged-manifests", Value: strings.Join(s.DamagedPaths(name), " ")})
}

// DropState deletes saved state, if any, and frees its chunks.
func (s *Store) DropState(name string) error {
	err := s.images.Delete(StateKey(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errkind.New(errkind.ErrFailed, "drop saved state of "+name, err)
	}
	s.CollectGarbage()
	return nil
}

// DropStoreData deletes everything the store keeps of a destroyed container.
func (s *Store) DropStoreData(name string) error {
	snaps, err := s.Snapshots(name)
	if err != nil {
		return err
	}
	keys := []string{StateKey(name)}
	for _, s := range snaps {
		keys = append(keys, SnapshotKey(name, s))
	}
	for _, k := range keys {
		if err := s.images.Delete(k); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errkind.New(errkind.ErrFailed, "delete "+k, err)
		}
	}
	s.CollectGarbage()
	return nil
}

// FreeFailedImport frees the chunks of an import that failed before the
// command returns, not at some later collection: after "no space left on
// device" the next checkpoint must find the room it had before.
func (s *Store) FreeFailedImport(ctx context.Context) {
	freed, err := s.images.GC(ctx)
	if err != nil {
		s.log.Warn("cannot free the chunks of a failed import", "err", err)
		return
	}
	s.log.Info("freed the chunks of a failed import", "bytes", freed)
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
func (s *Store) GCStats() (runs int64, last time.Duration) {
	s.gc.mu.Lock()
	defer s.gc.mu.Unlock()
	return s.gc.runs, s.gc.last
}

// CollectGarbage frees chunks that no saved manifest uses any more. Calls
// made while a collection runs fold into one more run after it. It runs
// under the daemon's root context: at shutdown no sweep starts any more,
// since the process is about to exit anyway and the next daemon collects
// at its start.
func (s *Store) CollectGarbage() {
	s.gc.mu.Lock()
	if s.gc.running {
		s.gc.pending = true
		s.gc.mu.Unlock()
		return
	}
	s.gc.running = true
	s.gc.mu.Unlock()
	go func() {
		for {
			start := time.Now()
			if freed, err := s.images.GC(s.ctx); errors.Is(err, context.Canceled) {
				s.log.Debug("image store garbage collection stopped at shutdown")
			} else if err != nil {
				s.log.Warn("image store garbage collection failed", "err", err)
			} else if freed > 0 {
				s.log.Debug("image store garbage collected", "bytes", freed)
			}
			s.gc.mu.Lock()
			s.gc.runs++
			s.gc.last = time.Since(start)
			if !s.gc.pending {
				s.gc.running = false
				s.gc.mu.Unlock()
				return
			}
			s.gc.pending = false
			s.gc.mu.Unlock()
		}
	}()
}

// NewImageSet is the files of mf, read from store.
func NewImageSet(store *images.Store, mf *images.Manifest) *ImageSet {
	return &ImageSet{store: store, manifest: mf}
}

// Manifest is the set's manifest.
func (set *ImageSet) Manifest() *images.Manifest { return set.manifest }
