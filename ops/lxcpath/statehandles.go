package lxcpath

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
//
// The lock guards the map alone: the state query runs outside it, so that a
// container whose LXC monitor is slow to answer holds up no other
// container's status. go-lxc's handle takes its own read lock for the
// query, and one released meanwhile (forget) answers STOPPED.
type stateHandles struct {
	mu     sync.Mutex
	byName map[string]*lxc.Container
}

// state is the LXC state of the named container.
func (h *stateHandles) state(name, lxcpath string) (lxc.State, error) {
	c, err := h.handle(name, lxcpath)
	if err != nil {
		return 0, err
	}
	return c.State(), nil
}

// handle is the kept handle of name, opened if there is none.
func (h *stateHandles) handle(name, lxcpath string) (*lxc.Container, error) {
	h.mu.Lock()
	c, ok := h.byName[name]
	h.mu.Unlock()
	if ok {
		return c, nil
	}
	// Opened unlocked: it parses the config.
	c, err := lxc.NewContainer(name, lxcpath)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if kept, ok := h.byName[name]; ok { // another query opened one first
		c.Release()
		return kept, nil
	}
	if h.byName == nil {
		h.byName = map[string]*lxc.Container{}
	}
	h.byName[name] = c
	return c, nil
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
