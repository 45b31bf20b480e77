package stored

import (
	"errors"
	"strings"

	"ctrfs/images"
)

// A manifest of saved state or of a snapshot that the store finds damaged
// is moved aside (images/damaged.go) and never read as "no saved state":
// SavedState fails naming it, Info shows it, and only dropping the state
// or the snapshot discards it.

// IsDamaged says whether err comes from a damaged manifest. fs/ still
// shows such a snapshot, so that rmdir can discard it.
func IsDamaged(err error) bool { return errors.Is(err, images.ErrDamaged) }

// DamagedOwner names the container and the kind of a store key.
func DamagedOwner(key string) (container, what string) {
	if name, ok := strings.CutPrefix(key, "state/"); ok {
		return name, "damaged-state"
	}
	if rest, ok := strings.CutPrefix(key, "snapshots/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return name, "damaged-snapshot"
	}
	if name, ok := strings.CutPrefix(key, "moving/"); ok {
		return name, "damaged-manifest"
	}
	return "-", "damaged-manifest"
}

// DamagedPaths lists where the damaged manifests of a container are kept.
func (s *Store) DamagedPaths(name string) []string {
	out := s.images.DamagedPaths(StateKey(name))
	keys, _ := s.images.DamagedKeys(SnapshotPrefix(name))
	for _, k := range keys {
		out = append(out, s.images.DamagedPaths(k)...)
	}
	return out
}
