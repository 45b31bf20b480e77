package ops

import (
	"errors"
	"strings"
	"testing"

	"ctrfs/ops/templates"
)

// TestReservedNamesRefused: a container made or arriving here may not take
// a name of the tree's own entries; other names, and names the tree does
// not use in another case, are fine.
func TestReservedNamesRefused(t *testing.T) {
	m := managerWith(t)
	m.cfg.ReservedNames = []string{"ctl", "hosts", "info"}
	for _, name := range []string{"hosts", "info", "ctl"} {
		err := m.validateNewName(name)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not a name for a container") {
			t.Errorf("validateNewName(%q) = %v, want EINVAL saying why", name, err)
		}
		if err := m.CreateWith(name, CreateOptions{Template: templates.DefaultName}); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateFrom(%q) = %v", name, err)
		}
		if _, err := m.Moves().Receive(name); !errors.Is(err, ErrInvalid) {
			t.Errorf("Receive(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"Hosts", "hosts2", "c1"} {
		if err := m.validateNewName(name); err != nil {
			t.Errorf("validateNewName(%q) = %v", name, err)
		}
	}
	if err := m.validateNewName("-x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("validateNewName checks the syntax too: %v", err)
	}
}
