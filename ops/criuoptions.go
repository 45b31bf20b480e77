package ops

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"ctrfs/ops/configfile"
	"ctrfs/ops/lxchelper"
)

// A container's own CRIU options, its `criu` file: what the file holds and
// how CRIU gets it is lxchelper's (criuoptions.go); these read and write
// it for the tree.

// CriuOptions is the `criu` file: empty if the container has none.
func (f *Files) CriuOptions(name string) ([]byte, error) {
	if !f.containers.Exists(name) {
		return nil, newError(ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	b, err := os.ReadFile(lxchelper.CriuOptionsPath(f.lxcPath, name))
	if err != nil && !os.IsNotExist(err) {
		return nil, newError(ErrFailed, "read CRIU options of "+name, err)
	}
	return b, nil
}

// SetCriuOptions replaces the `criu` file, in any state: it takes effect at
// the next dump or restore (and `check` shows its effect at once). Options
// CRIU does not know are refused and the old file stays.
func (f *Files) SetCriuOptions(name string, data []byte) error {
	return f.ledger.run(f.opCtx(), operation{name: name, what: "criu", fn: func(context.Context, *opContext) error {
		dump, restore, err := lxchelper.ParseCriuOptions(data)
		if err == nil {
			err = lxchelper.CheckCriuOptions(append(dump, restore...))
		}
		if err != nil {
			return newError(ErrInvalid, fmt.Sprintf("CRIU options of %s not changed: %v", name, err), nil)
		}
		path := lxchelper.CriuOptionsPath(f.lxcPath, name)
		if len(bytes.TrimSpace(data)) == 0 {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				return newError(ErrFailed, "write CRIU options of "+name, err)
			}
			return nil
		}
		if err := configfile.WriteAtomic(path, data); err != nil {
			return newError(ErrFailed, "write CRIU options of "+name, err)
		}
		return nil
	}})
}
