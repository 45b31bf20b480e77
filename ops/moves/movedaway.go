package moves

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"ctrfs/ops/storage"
	"ctrfs/ops/stored"
	"ctrfs/ops/testhooks"
)

// A container that moved to another host leaves its copy here, which goes
// once the target has committed. Removing a rootfs takes time in
// proportion to its files (seconds for a Debian container with a few
// services, more on a busy disk), and the move's ctl write waited for it
// after the move had ended. So the copy is killed and its directory
// renamed out of the LXC path at once (the name is free and listed only on
// the target when the write returns, and a move back can arrive at once),
// and the directory is removed after the answer.

// movedAwaySuffix ends the name of a moved-away copy's directory on the
// LXC path, ".NAME.TIME.moved-away": LXC and List skip the leading dot.
const movedAwaySuffix = ".moved-away"

// RemoveMovedAway removes the copy of a container that another host owns
// now: it is killed, its directory set aside and its store data dropped
// before this returns; the directory's files go in the background.
func (m *Moves) RemoveMovedAway(name string) error {
	if !m.containers.Exists(name) {
		return m.Remove(name)
	}
	if err := m.containers.Kill(name); err != nil {
		return err
	}
	aside := filepath.Join(m.lxcPath, fmt.Sprintf(".%s.%d%s", name, time.Now().UnixNano(), movedAwaySuffix))
	if err := os.Rename(filepath.Join(m.lxcPath, name), aside); err != nil {
		return m.Remove(name) // the slow way, but it goes
	}
	m.images.Delete(stored.MovingKey(name))
	err := m.stored.DropStoreData(name)
	go func() {
		testhooks.PausePoint("moved-away-remove")
		m.removeMovedAway(aside)
	}()
	return err
}

// removeMovedAway removes a moved-away copy's directory. rm stays on the
// rootfs's own filesystem: a mount left inside it (there should be none)
// is not emptied. Its subvolumes (on btrfs: the rootfs and snapshots'),
// which rm takes for other filesystems, go first.
func (m *Moves) removeMovedAway(dir string) {
	if err := storage.RemoveSubvolumes(dir, 2); err != nil {
		m.log.Error("cannot remove the subvolumes of a container that moved away", "dir", dir, "err", err)
	}
	if out, err := exec.Command("rm", "-rf", "--one-file-system", dir).CombinedOutput(); err != nil {
		m.log.Error("cannot remove the copy of a container that moved away", "dir", dir, "err", err, "output", strings.TrimSpace(string(out)))
	}
}

// RemoveMovedAwayLeft removes the moved-away copies that a daemon stopped
// or killed before it had removed them.
func (m *Moves) RemoveMovedAwayLeft() {
	dirs, _ := filepath.Glob(filepath.Join(m.lxcPath, ".*"+movedAwaySuffix))
	for _, dir := range dirs {
		m.removeMovedAway(dir)
	}
}
