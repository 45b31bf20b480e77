package ops

import (
	"fmt"
	"slices"
	"strings"

	"ctrfs/ops/lxcpath"
)

// ValidateName checks a container or snapshot name (lxcpath.ValidateName).
func ValidateName(name string) error { return lxcpath.ValidateName(name) }

// validateNewName checks the name of a container about to be made here
// (create, mkdir, a rename, an incoming move): ValidateName, and none of
// the tree's own names (Config.ReservedNames), which would hide it or
// be hidden by it. A container that has such a name already (made by
// LXC's tools) is still shown, and can be renamed.
func (m *Manager) validateNewName(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if slices.Contains(m.cfg.ReservedNames, name) {
		return newError(ErrInvalid, fmt.Sprintf("%q is the name of an entry of the tree, not a name for a container (the tree's names: %s)",
			name, strings.Join(m.cfg.ReservedNames, " ")), nil)
	}
	return nil
}
