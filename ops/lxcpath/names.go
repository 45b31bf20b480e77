package lxcpath

import (
	"fmt"
	"strings"

	"ctrfs/ops/errkind"
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
		return errkind.New(errkind.ErrInvalid, "empty name", nil)
	case len(name) > maxNameLen:
		return errkind.New(errkind.ErrInvalid, fmt.Sprintf("name %q is longer than %d characters", name, maxNameLen), nil)
	case name == "." || name == ".." || strings.Contains(name, ".."):
		return errkind.New(errkind.ErrInvalid, fmt.Sprintf("name %q may not contain '..'", name), nil)
	case strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-"):
		return errkind.New(errkind.ErrInvalid, fmt.Sprintf("name %q may not start with '.' or '-'", name), nil)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return errkind.New(errkind.ErrInvalid, fmt.Sprintf("name %q has the character %q; use letters, digits, '-', '_' and '.'", name, r), nil)
		}
	}
	return nil
}
