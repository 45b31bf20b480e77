package ops

import (
	"sync"

	lxc "github.com/lxc/go-lxc"
)

// stateHandles keeps one go-lxc handle per container name for Status.
// Opening a handle parses the container's config, four times the cost of
// the state query itself (80 µs against 20), and `cat containers/*/status`
// asks for every container twice. A state query uses only the handle's
// name and LXC path (it asks LXC's command socket of that name), so a
// handle stays right whatever happens to the container: the state itself
// is asked of LXC every time, never kept, and a container started or
// stopped outside ctrfs shows at once.
type stateHandles struct {
	mu     sync.Mutex
	byName map[string]*lxc.Container
}

// state is the LXC state of the named container.
func (h *stateHandles) state(name, lxcpath string) (lxc.State, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.byName[name]
	if !ok {
		var err error
		if c, err = lxc.NewContainer(name, lxcpath); err != nil {
			return 0, err
		}
		if h.byName == nil {
			h.byName = map[string]*lxc.Container{}
		}
		h.byName[name] = c
	}
	return c.State(), nil
}

// forget releases the handle of a name that no container has any more.
func (h *stateHandles) forget(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.byName[name]; ok {
		c.Release()
		delete(h.byName, name)
	}
}
