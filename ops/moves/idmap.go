package moves

import (
	"fmt"
	"os"

	"ctrfs/ops/errkind"
	"ctrfs/ops/idmap"
	"ctrfs/ops/lazypages"
	"ctrfs/ops/savedstate"
)

// An unprivileged container moves with its map (its config's lxc.idmap
// lines) and its rootfs owned by the mapped host ids, as on the source:
// the source checks that the target's root has a range over them
// (cluster/, members.CanHold), and the target lets the container's root
// read the images it restores from (letRootRead).

// IDMap is the container's id map; ok is false for a privileged one. A map
// ctrfs does not make is an error: it cannot be checked against the
// target's ranges.
func (o *Outgoing) IDMap() (m idmap.Map, ok bool, err error) {
	return o.m.idMap(o.name)
}

// IDMap is Outgoing.IDMap of a container whose move is not under way (an
// evacuation's plan).
func (m *Moves) IDMap(name string) (idmap.Map, bool, error) { return m.idMap(name) }

func (m *Moves) idMap(name string) (idmap.Map, bool, error) {
	config, err := os.ReadFile(m.containers.ConfigPath(name))
	if err != nil {
		return idmap.Map{}, false, errkind.New(errkind.ErrFailed, "read the config of "+name, err)
	}
	im, ok, err := idmap.FromConfig(config)
	if err != nil {
		return idmap.Map{}, true, errkind.New(errkind.ErrUnsupported, fmt.Sprintf("cannot move %s: %v", name, err), nil)
	}
	return im, ok, nil
}

// closeUnprivilegedDir gives a received unprivileged container's
// directory the mode create gives it (0711: its root only passes through
// to its rootfs); a privileged one's stays as made.
func closeUnprivilegedDir(dir string, config []byte) error {
	if _, ok, _ := idmap.FromConfig(config); ok {
		return os.Chmod(dir, 0o711)
	}
	return nil
}

// letRootRead opens the images in dir, from which the installed container
// is about to be restored from files (not streamed), to its mapped root
// if it is unprivileged (idmap.Map.LetRootRead); a privileged one's stay
// root's 0700/0400.
func (in *Incoming) letRootRead(dir string) error {
	im, ok, err := in.m.idMap(in.name)
	if err != nil || !ok {
		return err
	}
	if err := im.LetRootRead(dir); err != nil {
		return errkind.New(errkind.ErrFailed, "let the container's root read the images of "+in.name, err)
	}
	return nil
}

// localRestoreFrom is how the target restores from the precopy it
// unpacked: lazily, unless the container is unprivileged and its restored
// tasks may not open a userfaultfd here (lazypages.InUserNamespace); then
// CRIU reads all of the memory from the files before they run, and the
// container is down for that much longer.
func (in *Incoming) localRestoreFrom() savedstate.RestoreFrom {
	if _, unprivileged, _ := in.m.idMap(in.name); unprivileged && lazypages.InUserNamespace() != nil {
		return savedstate.RestoreFrom{}
	}
	return savedstate.RestoreFrom{Lazy: savedstate.LocalLazyPages}
}
