package stored

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"ctrfs/images"
	"ctrfs/ops/errkind"
)

// A snapshot is one manifest in the store under snapshots/NAME/SNAPSHOT:
// the rootfs as a tar archive, the LXC config, and for a stateful snapshot
// the CRIU images beside them. One manifest per snapshot makes taking one
// atomic (it exists once the manifest is saved, and a crash before leaves
// only chunks that GC frees) and makes a snapshot self-contained, so it can
// be sent to another host as it is.
const (
	SnapshotRootfs = "ctrfs-rootfs.tar" // CRIU never names an image like this
	SnapshotConfig = "ctrfs-config"
	// A stateful snapshot, and a container on its way to another host, also
	// have the changes to the rootfs since ctrfs-rootfs.tar (a GNU tar
	// listed-incremental archive then), made while it was frozen or
	// stopped: the whole tree is archived while it runs.
	RootfsChanges = "ctrfs-rootfs-changes.tar"
	// A container moving between btrfs hosts has its rootfs as btrfs
	// send streams instead (ops/moves/rootfsstream.go): the whole of a
	// snapshot made while it runs, and the differences of one made
	// while it is frozen or stopped.
	RootfsStream        = "ctrfs-rootfs.btrfs"
	RootfsStreamChanges = "ctrfs-rootfs-changes.btrfs"
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

// LoadSnapshot is the manifest of snapshot snap of the container name, a
// name that lxcpath.ValidateName took; ErrNotFound if there is none, and
// ErrFailed naming it if it is damaged.
func (s *Store) LoadSnapshot(name, snap string) (*images.Manifest, error) {
	mf, err := s.images.Load(SnapshotKey(name, snap))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errkind.New(errkind.ErrNotFound, fmt.Sprintf("%s has no snapshot %q", name, snap), nil)
	}
	if IsDamaged(err) {
		return nil, errkind.New(errkind.ErrFailed, fmt.Sprintf(
			"snapshot %s of %s cannot be used (rmdir discards it)", snap, name), err)
	}
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, fmt.Sprintf("load snapshot %s of %s", snap, name), err)
	}
	return mf, nil
}
