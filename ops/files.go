package ops

import (
	"context"
	"fmt"
	"os"
	"strings"

	lxc "github.com/lxc/go-lxc"

	"ctrfs/ops/lxcpath"
)

// Files are a container's files that the tree reads and writes whole
// (its LXC config and its `criu` file) and the times it shows for them
// and for the container, apart from the Manager's operations: a write is
// recorded in the ledger as an operation of its own ("config", "criu"),
// under the container's lock, but starts nothing in LXC or CRIU.
type Files struct {
	lxcPath    string
	containers *lxcpath.Containers
	ledger     *ledger
	created    *createdCache
	opCtx      func() context.Context
}

// Files are the containers' files (files.go).
func (m *Manager) Files() *Files { return m.files }

// Config is the container's LXC config file.
func (f *Files) Config(name string) ([]byte, error) {
	if !f.containers.Exists(name) {
		return nil, newError(ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	b, err := os.ReadFile(f.containers.ConfigPath(name))
	if err != nil {
		return nil, newError(ErrFailed, "read config of "+name, err)
	}
	return b, nil
}

// CheckConfigWritable fails unless the container is stopped.
func (f *Files) CheckConfigWritable(name string) error {
	st, err := f.containers.Status(name)
	if err != nil {
		return err
	}
	if st != "STOPPED" {
		return newError(ErrBusy, fmt.Sprintf("config of %s is writable only while STOPPED (it is %s)", name, st), nil)
	}
	return nil
}

// SetConfig replaces the LXC config of a stopped container. LXC must be
// able to load it; otherwise the old one stays.
func (f *Files) SetConfig(name string, data []byte) error {
	return f.ledger.run(f.opCtx(), operation{name: name, what: "config", fn: func(context.Context, *opContext) error {
		if err := f.CheckConfigWritable(name); err != nil {
			return err
		}
		path := f.containers.ConfigPath(name)
		tmp := path + ".ctrfs-new"
		// Root's alone: it may hold secrets, and a leftover would keep its mode.
		os.Remove(tmp)
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return newError(ErrFailed, "write config of "+name, err)
		}
		if err := checkConfig(name, tmp); err != nil {
			os.Remove(tmp)
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return newError(ErrFailed, "write config of "+name, err)
		}
		return nil
	}})
}

// checkConfig loads a config file into a scratch container handle; LXC
// rejects unknown keys and bad values there.
func checkConfig(name, path string) error {
	c, err := lxc.NewContainer(name, os.TempDir())
	if err != nil {
		return newError(ErrFailed, "check config", err)
	}
	defer c.Release()
	c.ClearConfig()
	if err := c.LoadConfigFile(path); err != nil {
		msg := "LXC cannot load the new config"
		if line := refusedLine(c, path); line != "" {
			msg = "LXC refuses the new config at " + line
		}
		return newError(ErrInvalid, msg+"; it was not changed", nil)
	}
	return nil
}

// refusedLine replays a config that LXC would not load, one item at a
// time on a cleared handle, to name the first line LXC refuses
// (`line 3 (lxc.no.such.key = 1)`); LXC's own message goes to its log only.
func refusedLine(c *lxc.Container, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	c.ClearConfig()
	for i, line := range strings.Split(string(data), "\n") {
		text := strings.TrimSpace(line)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok || c.SetConfigItem(strings.TrimSpace(key), strings.TrimSpace(value)) != nil {
			if len(text) > 200 {
				text = text[:200] + "…"
			}
			return fmt.Sprintf("line %d (%s)", i+1, text)
		}
	}
	return ""
}
