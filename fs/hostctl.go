package fs

import (
	"sync"
	"time"

	"ctrfs/ops"
)

// hostCommands is the mount's top-level `ctl` and `error`: host-level
// commands (create NAME [--template T], evacuate [HOST]) and the error of
// the last one, empty once one succeeds (as a container's `error`). They
// name no container whose lock a second write could wait for, so there is
// no idle check at open.
type hostCommands struct {
	cl Cluster

	mu      sync.Mutex
	changed time.Time // of the last command; the mount's before any
	lastErr string
}

// run forwards one line to the router (cluster.DispatchHost) and keeps
// its outcome for `error`.
func (h *hostCommands) run(line string) error {
	return h.record(h.cl.DispatchHost(line))
}

// record makes err (nil for a success) the last command's outcome: a
// command of ctl, or a mkdir in containers/, which is a create.
func (h *hostCommands) record(err error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changed = time.Now()
	h.lastErr = ""
	if err != nil {
		h.lastErr = err.Error() + "\n"
	}
	return err
}

func (h *hostCommands) lastChange() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

func (h *hostCommands) ctl() *ctlFile {
	return &ctlFile{help: ops.HostCtlHelp, run: h.run, changed: h.lastChange}
}

func (h *hostCommands) errorFile() *genFile {
	return newGenFile(func() ([]byte, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return []byte(h.lastErr), nil
	}).changed(h.lastChange)
}
