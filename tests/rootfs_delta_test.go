package tests

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A stateful snapshot archives the rootfs while the container runs and
// only what changed since while it is frozen; a move unpacks the rootfs on
// the target during the precopy and applies only what changed at the
// handover. These tests change the rootfs in between, at a pause that
// CTRFS_PAUSE_AT holds the operation in, and want the rootfs exactly as it
// was at the freeze afterwards.

// pauseAt is CTRFS_PAUSE_AT for the daemon's environment, and the file
// whose existence shows the pause and whose removal ends it.
func pauseAt(t *testing.T, step string) (env, file string) {
	file = filepath.Join(t.TempDir(), "paused")
	return "CTRFS_PAUSE_AT=" + step + ":" + file, file
}

// waitPaused waits until the daemon pauses at the step.
func waitPaused(t *testing.T, file string) {
	t.Helper()
	waitLong(t, "the daemon to pause", 90*time.Second, func() bool { return exists(file) })
}

// rootfsChanges sets up files in a rootfs that change between the archive
// made while the container runs and the freeze.
type rootfsChanges struct {
	t    *testing.T
	root string // the rootfs
}

func (r rootfsChanges) path(name string) string { return filepath.Join(r.root, "root", "delta", name) }

func (r rootfsChanges) write(name, content string) {
	r.t.Helper()
	if err := os.MkdirAll(filepath.Dir(r.path(name)), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(r.path(name), []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r rootfsChanges) remove(name string) {
	r.t.Helper()
	if err := os.RemoveAll(r.path(name)); err != nil {
		r.t.Fatal(err)
	}
}

// before is the rootfs when the whole tree is archived.
func (r rootfsChanges) before() {
	r.write("kept", "kept")
	r.write("changed", "old")
	r.write("deleted", "deleted")
	r.write("gonedir/inside", "inside")
}

// during changes it after that archive, before the freeze: what the
// restored or moved container must have.
func (r rootfsChanges) during() {
	r.write("changed", "new, and longer than before")
	r.write("created", "created")
	r.write("newdir/inside", "new inside")
	r.remove("deleted")
	r.remove("gonedir")
}

// check wants the rootfs root as it was after during.
func (r rootfsChanges) check(root, when string) {
	r.t.Helper()
	r = rootfsChanges{r.t, root}
	for name, want := range map[string]string{"kept": "kept", "changed": "new, and longer than before",
		"created": "created", "newdir/inside": "new inside"} {
		if b, err := os.ReadFile(r.path(name)); err != nil || string(b) != want {
			r.t.Errorf("%s: %s is %q (%v), want %q", when, name, b, err, want)
		}
	}
	for _, name := range []string{"deleted", "gonedir"} {
		if exists(r.path(name)) {
			r.t.Errorf("%s: %s exists; it was deleted before the freeze", when, name)
		}
	}
}

// TestSnapshotRootfsChangedBeforeFreeze: files changed, created and deleted
// after the snapshot archived the running container's rootfs and before it
// froze it are as at the freeze after restoring the snapshot, however the
// rootfs changed after the snapshot.
func TestSnapshotRootfsChangedBeforeFreeze(t *testing.T) {
	env, pause := pauseAt(t, "snapshot-freeze")
	d := NewDaemon(t, "dakara")
	d.Env = []string{env}
	d.Start()
	ip := d.CreateRunning("c1")
	r := rootfsChanges{t, d.rootfs("c1")}
	r.before()

	// The dumped count is at least this one: the freeze comes after. A
	// count well past a fresh boot's tells the restored processes apart.
	beforeSnapshot := CountsPast(t, ip, 10, "the counter counts")
	snap := d.Background("echo 'snapshot s1 --stateful' > containers/c1/ctl")
	waitPaused(t, pause)
	r.during()
	if err := os.Remove(pause); err != nil {
		t.Fatal(err)
	}
	if err := snap.Wait(); err != nil {
		t.Fatalf("snapshot s1 --stateful: %v; error: %s", err, d.Read("containers/c1/error"))
	}
	// What changed while it was frozen is an archive of its own.
	var names []string
	for _, f := range d.manifest("snapshots/c1/s1").Files {
		names = append(names, f.Name)
	}
	if !contains(names, "ctrfs-rootfs.tar") || !contains(names, "ctrfs-rootfs-changes.tar") {
		t.Errorf("the snapshot holds %v; want the rootfs and the changes made before the freeze", names)
	}

	// Undo it all, then roll back.
	r.write("changed", "after the snapshot")
	r.remove("created")
	r.remove("newdir")
	r.write("deleted", "back again")
	r.write("gonedir/inside", "back again")
	r.write("later", "after the snapshot")
	d.MustSh("echo 'restore s1' > containers/c1/ctl")
	r.check(d.rootfs("c1"), "after restoring the snapshot")
	if exists(r.path("later")) {
		t.Error("a file created after the snapshot survived its restore")
	}
	if n := Count(t, ip); n < beforeSnapshot {
		t.Errorf("count after the restore %d, before the snapshot %d: not the snapshot's processes", n, beforeSnapshot)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestMigrationRootfsChangedDuringPrecopy: the target unpacks the rootfs
// during the precopy (before the source freezes the container); a target
// killed then keeps nothing of it, and the container runs on at the
// source. Files changed, created and deleted after the precopy archived
// the rootfs are as at the freeze on the target after a move.
func TestMigrationRootfsChangedDuringPrecopy(t *testing.T) {
	secret := newSecret(t)
	env, pause := pauseAt(t, "move-freeze")
	a := startPeer(t, "dakara", loopback(2), secret, "", env)
	b := startPeer(t, "tollana", loopback(3), secret, a.Addr)
	a.waitHosts("dakara", "tollana")
	ip := a.CreateRunning("c1")
	r := rootfsChanges{t, a.rootfs("c1")}
	r.before()
	creating := filepath.Join(b.LXCPath, ".c1.creating")

	// The target dies with the rootfs unpacked, before the freeze.
	before := Count(t, ip)
	move := a.Background("echo 'move tollana' > containers/c1/ctl")
	waitPaused(t, pause)
	if b, err := os.ReadFile(filepath.Join(creating, "rootfs", "root", "delta", "changed")); err != nil || string(b) != "old" {
		t.Fatalf("the target has not unpacked the rootfs by the freeze: %q %v", b, err)
	}
	b.Kill()
	os.Remove(pause)
	if err := move.Wait(); err == nil {
		t.Fatal("the move succeeded although the target died")
	}
	stillHere(t, a, b, ip, before)
	b.Start()
	if exists(creating) || b.has("c1") {
		t.Fatalf("the restarted target kept the rootfs it unpacked (%v) or a container (%v)", exists(creating), b.has("c1"))
	}
	a.waitHosts("dakara", "tollana")

	// The rootfs changes between the precopy and the freeze.
	before = Count(t, ip)
	move = a.Background("echo 'move tollana' > containers/c1/ctl")
	waitPaused(t, pause)
	r.during()
	os.Remove(pause)
	if err := move.Wait(); err != nil {
		t.Fatalf("move: %v; error: %s", err, a.Read("containers/c1/error"))
	}
	wantMoved(t, "c1", a, b, "after the move")
	countFrom(t, ip, before, "over the move")
	r.check(b.rootfs("c1"), "on the target after the move")
	if exists(creating) {
		t.Error("the target left .c1.creating behind")
	}
	info := b.Info("c1")
	if info["target-prepare-seconds"] == "" {
		t.Errorf("the target's info lacks target-prepare-seconds:\n%v", info)
	}
	b.MustSh("echo stop > containers/c1/ctl")
}
