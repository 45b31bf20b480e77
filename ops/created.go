package ops

import (
	"bufio"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"ctrfs/ops/templates"
)

// createdCache keeps the creation time read from each config while the
// file is unchanged (inode, size, modification time): every stat of a
// container's directory, status or snapshots/ asks for it, and reading the
// config each time was most of what such a stat cost. It knows configs by
// their paths only, nothing of the containers they belong to.
type createdCache struct {
	mu     sync.Mutex
	byPath map[string]createdEntry
}

type createdEntry struct {
	ino   uint64
	size  int64
	mtime time.Time
	t     time.Time
}

// at reads the creation time that the template writes into the config at
// path; for containers made outside ctrfs, the config's modification time.
func (c *createdCache) at(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return c.from(path, fi)
}

// from is at of the config at path, whose stat is fi.
func (c *createdCache) from(path string, fi os.FileInfo) time.Time {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return createdIn(path, fi)
	}
	key := createdEntry{ino: st.Ino, size: fi.Size(), mtime: fi.ModTime()}
	c.mu.Lock()
	e, hit := c.byPath[path]
	c.mu.Unlock()
	if hit && e.ino == key.ino && e.size == key.size && e.mtime.Equal(key.mtime) {
		return e.t
	}
	key.t = createdIn(path, fi)
	c.mu.Lock()
	if c.byPath == nil {
		c.byPath = map[string]createdEntry{}
	}
	c.byPath[path] = key
	c.mu.Unlock()
	return key.t
}

// forget drops what is kept about the config at path, which is gone.
func (c *createdCache) forget(path string) {
	c.mu.Lock()
	delete(c.byPath, path)
	c.mu.Unlock()
}

// createdIn is the creation time written in the config at path, else fi's
// modification time.
func createdIn(path string, fi os.FileInfo) time.Time {
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), templates.CreatedComment); ok {
				if t, err := time.Parse(time.RFC3339, strings.TrimSpace(v)); err == nil {
					return t
				}
			}
		}
	}
	return fi.ModTime()
}
