package images

import (
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"ctrfs/images/trust"
)

// manifestCache keeps manifests as parsed (and checksum-verified) by path,
// with the identity of the file they were read from: listing a thousand
// snapshots or a GC pass then costs a stat per manifest, not a read, a
// JSON parse and a SHA-256. Manifests are only ever replaced by a rename
// (a new inode) or removed, so a file whose device, inode, size and
// modification time are those cached holds what was parsed; anything else
// (a damaged rewrite in place included) changes one of them and is read
// again.
type manifestCache struct {
	mu    sync.Mutex
	byPth map[string]cachedManifest
	bytes int // of the JSON the cached manifests were parsed from
}

// maxManifestCache bounds the cache by the bytes of JSON it stands for;
// past it the cache starts again empty (simple, and rare: a thousand
// stateless snapshots of small containers take about 10 MiB).
const maxManifestCache = 64 << 20

type fileID struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

type cachedManifest struct {
	id   fileID
	size int
	m    *Manifest
}

func idOf(st os.FileInfo) (fileID, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(sys.Dev), ino: sys.Ino, size: st.Size(), mtime: st.ModTime()}, true
}

// load returns the manifest at path, from the cache while the file is the
// one it was parsed from: a hit costs one stat(2), no open (which, with its
// close, was a quarter of the daemon's time in `ls -R` over a thousand
// snapshots). A miss reads the file through the descriptor that was
// stat'ed, so what is cached is what that file held.
func (c *manifestCache) load(path, key string) (*Manifest, error) {
	if st, err := os.Lstat(path); err == nil && trust.TrustedInfo(path, st) == nil {
		if m := c.hit(path, st); m != nil {
			return m, nil
		}
	}
	// Not through a symlink, and only a file that no other user could
	// have written (images/trust).
	f, st, err := trust.OpenTrusted(path)
	if err != nil {
		return nil, notOurs(key, err)
	}
	defer f.Close()
	if m := c.hit(path, st); m != nil {
		return m, nil
	}
	id, ok := idOf(st)
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("images: manifest %s: %w", key, err)
	}
	m, err := parseManifest(data, key)
	if err != nil || !ok {
		return m, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byPth == nil || c.bytes+len(data) > maxManifestCache {
		c.byPth, c.bytes = map[string]cachedManifest{}, 0
	}
	if old, had := c.byPth[path]; had {
		c.bytes -= old.size
	}
	c.byPth[path] = cachedManifest{id: id, size: len(data), m: m.Clone()}
	c.bytes += len(data)
	return m, nil
}

// drop forgets the manifest of path, which was deleted or moved: its
// entry could never be hit again, yet would hold its share of the budget
// until the cache starts again.
func (c *manifestCache) drop(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, had := c.byPth[path]; had {
		c.bytes -= old.size
		delete(c.byPth, path)
	}
}

// hit is a copy of the cached manifest of path if st is the file it was
// parsed from, else nil.
func (c *manifestCache) hit(path string, st os.FileInfo) *Manifest {
	id, ok := idOf(st)
	if !ok {
		return nil
	}
	c.mu.Lock()
	e, hit := c.byPth[path]
	c.mu.Unlock()
	if !hit || e.id != id {
		return nil
	}
	return e.m.Clone()
}
