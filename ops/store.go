package ops

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"ctrfs/images"
)

// Keys of the image store. Saved state of a container lives under
// state/NAME; stateful snapshots under snapshots/NAME/SNAPSHOT.
func stateKey(name string) string { return "state/" + name }

func snapshotPrefix(name string) string { return "snapshots/" + name + "/" }

// stagingDir makes a directory for CRIU images of about size bytes on
// their way into or out of the store; the caller removes it. It is in
// memory (tmpfs) when that has room for twice the images: CRIU writes and
// reads there at memory speed, and the sync that makes the stored chunks
// durable does not also flush the raw images to disk. Otherwise it is under
// the store.
func (m *Manager) stagingDir(name, purpose string, size int64) (string, error) {
	root := m.diskStaging()
	if fast := m.memoryStaging(); fast != "" && roomFor(filepath.Dir(fast), 2*size) {
		root = fast
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(root, purpose+"-"+name+"-")
}

// streamDir makes the directory of a restore whose images the daemon
// serves (images.ServeImages): it holds CRIU's socket, log and stats. A
// socket's path must fit in sun_path (108 bytes), which a staging
// directory named after a long container name does not.
func (m *Manager) streamDir() (string, error) {
	const room = len("/r-1234567890/") + len(images.StreamSocket)
	for _, root := range []string{m.memoryStaging(), m.diskStaging(), os.TempDir()} {
		if root == "" || len(root)+room >= 108 {
			continue
		}
		if err := os.MkdirAll(root, 0o700); err != nil {
			continue
		}
		return os.MkdirTemp(root, "r-")
	}
	return "", errors.New("no directory whose path leaves room for a socket")
}

func (m *Manager) diskStaging() string { return filepath.Join(m.cfg.StoreDir, "staging") }

// memoryStaging is this daemon's own staging directory on /dev/shm (named
// after the store, since several daemons may share the machine), or "" if
// /dev/shm is not a tmpfs.
func (m *Manager) memoryStaging() string {
	var st syscall.Statfs_t
	if syscall.Statfs("/dev/shm", &st) != nil || st.Type != tmpfsMagic {
		return ""
	}
	sum := sha256.Sum256([]byte(m.cfg.StoreDir))
	return filepath.Join("/dev/shm", "ctrfs-staging-"+hex.EncodeToString(sum[:6]))
}

const tmpfsMagic = 0x01021994

func roomFor(dir string, bytes int64) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return int64(st.Bavail)*st.Bsize >= bytes
}

// imagesSizeHint guesses the size of a container's CRIU images from its
// memory use, plus room for everything else CRIU writes.
func (m *Manager) imagesSizeHint(name string) int64 {
	const extra = 64 << 20
	c, err := m.container(name)
	if err != nil {
		return extra
	}
	defer c.Release()
	mem, err := c.MemoryUsage()
	if err != nil {
		return 1 << 30 // unknown: only a roomy tmpfs will do
	}
	return int64(mem) + extra
}

// HasState says whether the container has saved state (after stop-stateful).
func (m *Manager) HasState(name string) bool {
	_, err := m.images.Load(stateKey(name))
	return err == nil
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
func (m *Manager) storeInfo(name string) []KeyValue {
	snaps, _ := m.images.Keys(snapshotPrefix(name))
	kv := []KeyValue{{"snapshots", fmt.Sprint(len(snaps))}}
	st, err := m.SavedState(name)
	if err != nil {
		return append(kv, KeyValue{"stateful", "no"})
	}
	return append(kv, KeyValue{"stateful", "yes"},
		KeyValue{"state-raw-bytes", fmt.Sprint(st.manifest.Size())},
		KeyValue{"state-stored-bytes", fmt.Sprint(st.StoredBytes())})
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
	keys, err := m.images.Keys(snapshotPrefix(name))
	if err != nil {
		return newError(ErrFailed, "list snapshots of "+name, err)
	}
	for _, k := range append(keys, stateKey(name)) {
		if err := m.images.Delete(k); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return newError(ErrFailed, "delete "+k, err)
		}
	}
	m.collectGarbage()
	return nil
}

// renameStoreData moves saved state and snapshots to the container's new name.
func (m *Manager) renameStoreData(oldName, newName string) error {
	keys, err := m.images.Keys(snapshotPrefix(oldName))
	if err != nil {
		return newError(ErrFailed, "list snapshots of "+oldName, err)
	}
	keys = append(keys, stateKey(oldName))
	for _, k := range keys {
		nk := stateKey(newName)
		if strings.HasPrefix(k, snapshotPrefix(oldName)) {
			nk = snapshotPrefix(newName) + strings.TrimPrefix(k, snapshotPrefix(oldName))
		}
		if err := m.images.Rename(k, nk); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return newError(ErrFailed, fmt.Sprintf("move %s to %s", k, nk), err)
		}
	}
	return nil
}

// gcState serialises garbage collection, which runs in the background so
// that it never adds to an operation's downtime.
type gcState struct {
	mu      sync.Mutex
	pending bool
	running bool
}

// collectGarbage frees chunks that no saved manifest uses any more. Calls
// made while a collection runs fold into one more run after it.
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
			if freed, err := m.images.GC(); err != nil {
				m.log.Warn("image store garbage collection failed", "err", err)
			} else if freed > 0 {
				m.log.Debug("image store garbage collected", "bytes", freed)
			}
			m.gc.mu.Lock()
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

// StoreUsage is what the image store holds, for metrics.
func (m *Manager) StoreUsage() (images.Usage, error) { return m.images.Usage() }
