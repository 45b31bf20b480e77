package images

import (
	"container/list"
	"sync"
)

// lru keeps recently decompressed chunks, because readers such as a FUSE
// mount issue many small sequential reads that land in the same chunk and
// would otherwise decompress and hash it again each time.
type lru struct {
	mu    sync.Mutex
	max   int
	order *list.List // front = most recent; values are *lruEntry
	items map[string]*list.Element
}

type lruEntry struct {
	hash string
	data []byte
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *lru) get(hash string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[hash]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry).data, true
}

func (c *lru) add(hash string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[hash]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[hash] = c.order.PushFront(&lruEntry{hash, data})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*lruEntry).hash)
	}
}

// remove drops a chunk GC deleted, so reads cannot succeed from memory for
// a chunk that no longer exists on disk.
func (c *lru) remove(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[hash]; ok {
		c.order.Remove(e)
		delete(c.items, hash)
	}
}
