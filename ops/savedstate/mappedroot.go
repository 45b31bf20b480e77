package savedstate

import (
	"os"

	"ctrfs/ops/idmap"
)

// An unprivileged container's restored tasks open most of CRIU's images
// themselves, from inside its user namespace, where root's 0700 directory
// and 0400 images are closed to them ("Unable to open tty-info.img:
// Permission denied"). A streamed restore (start: images.ServeImages) needs
// nothing, every image comes over CRIU's socket; every restore from files
// (check's rehearsal, a stateful snapshot's restore, a state over
// pre-dumps, a move's target) opens the images to the container's mapped
// root group first (idmap.Map.LetRootRead: root:GID 0750 and 0440). The
// directory is a fresh one in 0700 staging, removed after the restore.

// letRootRead opens the images in dir to name's mapped root if it is
// unprivileged; a privileged container's stay root's alone.
func (k *Keeper) letRootRead(name, dir string) error {
	config, err := os.ReadFile(k.containers.ConfigPath(name))
	if err != nil {
		return err
	}
	m, unprivileged, err := idmap.FromConfig(config)
	if err != nil || !unprivileged {
		return err
	}
	return m.LetRootRead(dir)
}
