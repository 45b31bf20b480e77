// Package staging makes the directories in which CRIU images wait on their
// way into or out of the store, and those of a streamed restore's socket:
// in memory (tmpfs) when it has room, else under the store, each fresh and
// the daemon's own. It also says which a killed daemon left, and whether
// they can be trusted (recovery in ops reads them). It knows nothing of
// what goes into them.
package staging

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"ctrfs/images"
	"ctrfs/images/trust"
)

// Staging directories hold CRIU images on their way into or out of the
// store, and the socket a streamed restore reads its images from. What is
// in them becomes a container's processes (a dump left by a killed daemon
// is stored as saved state at the next start), so only directories that
// the daemon made itself and that no one else can write are used: each
// root is created by the daemon (mkdtemp-style on /dev/shm, so no one can
// have made it first), every directory is checked (owner, mode, not a
// symlink) before anything in it is trusted, and each dump gets a fresh
// directory of its own inside. A directory at a staging path that fails
// the check is left alone and reported in the log.

// Area is the staging of one daemon's store: its memory staging root is
// made on first use.
type Area struct {
	storeDir string
	log      *slog.Logger

	mu       sync.Mutex
	memory   string
	removals sync.WaitGroup // see RemoveLater
}

// New is the staging of the store in storeDir; it logs to log.
func New(storeDir string, log *slog.Logger) *Area { return &Area{storeDir: storeDir, log: log} }

const (
	shm        = "/dev/shm"
	tmpfsMagic = 0x01021994
)

// ownDir checks that dir is a directory (not a symlink to one) that
// belongs to the daemon's user and that no one else may enter or write.
func ownDir(dir string) error { return trust.PrivateDir(dir) }

// freshDir makes a new directory in parent, checked as ownDir.
func freshDir(parent, pattern string) (string, error) {
	dir, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return "", err
	}
	if err := ownDir(dir); err != nil {
		os.Remove(dir)
		return "", err
	}
	return dir, nil
}

// Dir makes a fresh directory for CRIU images of about size bytes
// on their way into or out of the store; the caller removes it. It is in
// memory (tmpfs) when that has room for twice the images: CRIU writes and
// reads there at memory speed, and the sync that makes the stored chunks
// durable does not also flush the raw images to disk. Otherwise it is under
// the store.
func (a *Area) Dir(name, purpose string, size int64) (string, error) {
	root, err := a.memoryRoot()
	if err != nil || root == "" || !roomFor(root, 2*size) {
		if err != nil {
			a.log.Warn("cannot stage in memory; staging on disk", "err", err)
		}
		if root, err = a.diskRoot(); err != nil {
			return "", err
		}
	}
	return freshDir(root, purpose+"-"+name+"-")
}

// StreamDir makes the directory of a restore whose images the daemon
// serves (images.ServeImages): it holds CRIU's socket, log and stats. A
// socket's path must fit in sun_path (108 bytes), which a staging
// directory named after a long container name does not.
func (a *Area) StreamDir() (string, error) {
	const room = len("/r-1234567890/") + len(images.StreamSocket)
	var roots []string
	if root, err := a.memoryRoot(); err == nil && root != "" {
		roots = append(roots, root)
	}
	if root, err := a.diskRoot(); err == nil {
		roots = append(roots, root)
	}
	for _, root := range roots {
		if len(root)+room < 108 {
			return freshDir(root, "r-")
		}
	}
	// A fresh directory of its own in the system's temporary directory,
	// which must be one whose entries others cannot rename (sticky).
	tmp := os.TempDir()
	if fi, err := os.Stat(tmp); err != nil || fi.Mode()&os.ModeSticky == 0 || len(tmp)+room+len("ctrfs-") >= 108 {
		return "", errors.New("no directory whose path leaves room for a socket")
	}
	return freshDir(tmp, "ctrfs-r-")
}

// diskRoot is the staging root under the store, made by the daemon.
func (a *Area) diskRoot() (string, error) {
	dir := a.DiskRoot()
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	if err := ownDir(dir); err != nil {
		a.log.Error("ignoring a staging directory that is not ctrfs's own", "dir", dir, "reason", err)
		return "", fmt.Errorf("staging directory: %w", err)
	}
	return dir, nil
}

// DiskRoot is the staging root under the store.
func (a *Area) DiskRoot() string { return filepath.Join(a.storeDir, "staging") }

// memoryRoot is this daemon's staging root on /dev/shm, made fresh by
// the first daemon run that needs it, or "" if /dev/shm is not a tmpfs.
func (a *Area) memoryRoot() (string, error) {
	var st syscall.Statfs_t
	if syscall.Statfs(shm, &st) != nil || st.Type != tmpfsMagic {
		return "", nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.memory != "" && ownDir(a.memory) == nil {
		return a.memory, nil
	}
	dir, err := freshDir(shm, a.MemoryName()+"-")
	if err != nil {
		return "", err
	}
	a.memory = dir
	return dir, nil
}

// MemoryName is the name of the memory staging root of this store
// (several daemons may share the machine). Earlier daemons used it as it
// is, a path anyone could make first; now a random suffix follows.
func (a *Area) MemoryName() string {
	sum := sha256.Sum256([]byte(a.storeDir))
	return "ctrfs-staging-" + hex.EncodeToString(sum[:6])
}

// RemoveLater removes a staging directory whose images are stored (or no
// longer needed) on a goroutine of its own: freeing a few hundred MiB of
// tmpfs takes tens of milliseconds, which a stop-stateful's caller, and a
// move's downtime, need not wait for. The directory is first renamed out
// of the names recovery reads (a "dump-" directory can become saved state,
// see ops/savedstate/checkpoint.go, recoverStagingIn), so a daemon killed before the removal ends leaves
// only rubbish. Close waits for the removals under way.
func (a *Area) RemoveLater(dir string) {
	trash := filepath.Join(filepath.Dir(dir), "removing-"+filepath.Base(dir))
	if err := os.Rename(dir, trash); err != nil {
		os.RemoveAll(dir)
		return
	}
	a.removals.Add(1)
	go func() {
		defer a.removals.Done()
		os.RemoveAll(trash)
	}()
}

// Close removes the memory staging root if it is empty (a dump
// left there is recovered at the next start).
func (a *Area) Close() {
	a.removals.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.memory != "" {
		os.Remove(a.memory)
		a.memory = ""
	}
}

// LeftRoots are the staging roots a daemon of this store may have
// left: the disk one, and on /dev/shm today's and the old fixed name.
func (a *Area) LeftRoots() []string {
	roots := []string{a.DiskRoot()}
	entries, _ := os.ReadDir(shm)
	name := a.MemoryName()
	for _, e := range entries {
		if e.Name() == name || strings.HasPrefix(e.Name(), name+"-") {
			roots = append(roots, filepath.Join(shm, e.Name()))
		}
	}
	return roots
}

// Trusted says whether a staging directory left by a daemon may be
// read; it logs one that may not.
func (a *Area) Trusted(dir string) bool {
	err := ownDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.log.Error("ignoring a staging directory that is not ctrfs's own: nothing in it is used",
			"dir", dir, "reason", err)
	}
	return err == nil
}

// Parse parses a staging directory's name, PURPOSE-NAME-RANDOM as
// Dir makes it.
func Parse(dirName string) (purpose, name string, ok bool) {
	purpose, rest, found := strings.Cut(dirName, "-")
	i := strings.LastIndex(rest, "-")
	if !found || i <= 0 {
		return "", "", false
	}
	return purpose, rest[:i], true
}

func roomFor(dir string, bytes int64) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return int64(st.Bavail)*st.Bsize >= bytes
}
