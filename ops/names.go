package ops

import (
	"fmt"
	"slices"
	"strings"
)

// maxNameLen keeps names usable as LXC container names, veth names derived
// from them and hostnames (lxc.uts.name) alike.
const maxNameLen = 63

// ValidateName checks a container or snapshot name. Beyond what the path
// syntax already forbids, LXC derives paths and a hostname from it, so only
// letters, digits, '-', '_' and '.' are allowed and it may not start with a dot
// or a dash.
func ValidateName(name string) error {
	switch {
	case name == "":
		return newError(ErrInvalid, "empty name", nil)
	case len(name) > maxNameLen:
		return newError(ErrInvalid, fmt.Sprintf("name %q is longer than %d characters", name, maxNameLen), nil)
	case name == "." || name == ".." || strings.Contains(name, ".."):
		return newError(ErrInvalid, fmt.Sprintf("name %q may not contain '..'", name), nil)
	case strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-"):
		return newError(ErrInvalid, fmt.Sprintf("name %q may not start with '.' or '-'", name), nil)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return newError(ErrInvalid, fmt.Sprintf("name %q has the character %q; use letters, digits, '-', '_' and '.'", name, r), nil)
		}
	}
	return nil
}

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
