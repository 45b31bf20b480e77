package stored

import (
	"sort"
	"strings"

	"ctrfs/ops/errkind"
)

// Snapshots lists the container's snapshots by name, damaged ones too
// (they stay until rmdir).
func (s *Store) Snapshots(name string) ([]string, error) {
	keys, err := s.images.Keys(SnapshotPrefix(name))
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "list snapshots of "+name, err)
	}
	damaged, err := s.images.DamagedKeys(SnapshotPrefix(name))
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "list damaged snapshots of "+name, err)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(keys)+len(damaged))
	for _, k := range append(keys, damaged...) {
		snap := strings.TrimPrefix(k, SnapshotPrefix(name))
		if !seen[snap] && !strings.Contains(snap, "/") {
			seen[snap] = true
			out = append(out, snap)
		}
	}
	sort.Strings(out)
	return out, nil
}
