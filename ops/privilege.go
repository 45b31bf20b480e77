package ops

import (
	"fmt"
	"os"
	"path/filepath"

	"ctrfs/ops/idmap"
	"ctrfs/ops/testhooks"
)

// DefaultPrivileged decides what `mkdir containers/NAME` and `create NAME`
// without --privileged or --unprivileged make. It is false (issue 21): an
// unprivileged container's root is an unprivileged host uid, so an escape
// from it is no host root; LXD has made the same choice since 2.0. Every
// stateful operation (checkpoint, snapshot, move, evacuate) works for both.
// Privileged (create --privileged) still gives a root that is host root:
// host directories bind-mounted writable as root, services whose tasks run
// as other users refused for lacking CAP_SYS_RESOURCE like on the host, and
// devices or kernel interfaces a user namespace denies. Choose it only for
// a workload that needs one of those. Containers whose config has no
// lxc.idmap (every one made before issue 21) stay privileged.
const DefaultPrivileged = false

// CreateOptions are what a create may choose beyond the name.
type CreateOptions struct {
	Template string // empty: the default template
	// Privilege is "privileged", "unprivileged", or empty for
	// DefaultPrivileged (HostCommand.Privilege).
	Privilege string
}

// privileged says whether a create with these options makes a privileged
// container.
func (o CreateOptions) privileged() bool {
	switch o.Privilege {
	case "privileged":
		return true
	case "unprivileged":
		return false
	}
	return DefaultPrivileged
}

// subIDFiles are the files root's id range comes from.
func subIDFiles() idmap.Files {
	u, g := testhooks.SubIDFiles(idmap.HostFiles.UID, idmap.HostFiles.GID)
	return idmap.Files{UID: u, GID: g}
}

// unprivilegedMap is the map of a new unprivileged container: the host's
// one shared map (see idmap), which the container's root must be able to
// reach its rootfs under.
func (m *Manager) unprivilegedMap() (idmap.Map, error) {
	im, err := subIDFiles().Root()
	if err != nil {
		return idmap.Map{}, newError(ErrFailed, "create an unprivileged container", err)
	}
	if err := reachable(m.cfg.LXCPath); err != nil {
		return idmap.Map{}, newError(ErrFailed, fmt.Sprintf("create an unprivileged container: its root (host uid %d) %v", im.UID, err), nil)
	}
	return im, nil
}

// reachable fails unless every directory from dir up may be searched by
// any user (o+x): LXC sets up an unprivileged container's rootfs as its
// mapped root, which is no owner or group of the directories above it.
// They stay root's (the trust rules), 0711 is enough.
func reachable(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("cannot reach its rootfs: %s is mode %#o; give every directory above the LXC path o+x (chmod o+x %s)", d, fi.Mode().Perm(), d)
		}
		if d == "/" {
			return nil
		}
	}
}

// privilegeInfo are info's privileged and idmap keys: a config without
// lxc.idmap (every container made before issue 21) is privileged.
func privilegeInfo(config []byte) []KeyValue {
	im, ok, err := idmap.FromConfig(config)
	switch {
	case !ok:
		return []KeyValue{{Key: "privileged", Value: "yes"}, {Key: "idmap", Value: ""}}
	case err != nil:
		return []KeyValue{{Key: "privileged", Value: "no"}, {Key: "idmap", Value: "unreadable: " + err.Error()}}
	}
	return []KeyValue{{Key: "privileged", Value: "no"}, {Key: "idmap", Value: im.String()}}
}
