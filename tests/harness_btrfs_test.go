package tests

// Daemons whose LXC path is on btrfs (issue 22): each on a filesystem of
// its own in a loop-mounted file, made by the test and unmounted after
// the daemon's cleanup (internal/testenv.Btrfs), so that their
// containers' rootfs are subvolumes and their snapshots snapshot
// subvolumes.

import (
	"path/filepath"
	"testing"

	"ctrfs/internal/testenv"
)

// btrfsSize is each test filesystem's size: sparse, so what the
// containers write is what it takes of the disk.
const btrfsSize = 2 << 30

// btrfsLXCPath makes a btrfs filesystem for one daemon and returns the
// LXC path on it. Its unmount is registered before the daemon's
// cleanup, so it runs after it.
func btrfsLXCPath(t *testing.T) string {
	t.Helper()
	mnt := testenv.Btrfs(t, t.TempDir(), btrfsSize)
	searchable(t, mnt) // unprivileged roots pass through to their rootfs
	return filepath.Join(mnt, "lxc")
}

// StartBtrfsDaemon is StartDaemon on a btrfs filesystem of its own.
func StartBtrfsDaemon(t *testing.T, name string, extra ...string) *Daemon {
	t.Helper()
	d := newDaemonOn(t, name, btrfsLXCPath(t), extra...)
	d.Start()
	return d
}

// startBtrfsPeer is startPeer on a btrfs filesystem of its own.
func startBtrfsPeer(t *testing.T, name, ip, secret, join string, env ...string) *Peer {
	t.Helper()
	p := newPeerOn(t, name, ip, secret, join, btrfsLXCPath(t))
	p.Env = env
	p.Start()
	return p
}
