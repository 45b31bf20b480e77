package fs

import (
	"slices"
	"testing"
)

// TestReservedNames: the names no container may take are the tree's own,
// each once: the link in containers/, the entries of the root, of a
// container and of hosts/PEER/.
func TestReservedNames(t *testing.T) {
	names := ReservedNames()
	for _, want := range []string{"hosts", "info", "README", "ctl", "error", "events", "host", "templates",
		"containers", "status", "config", "criu", "log", "bugreport", "snapshots", "state"} {
		if !slices.Contains(names, want) {
			t.Errorf("ReservedNames lacks %q: %v", want, names)
		}
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("ReservedNames is not sorted or repeats a name: %v", names)
	}
}
