package tests

// The btrfs backend (issue 22): on a host whose LXC path is on btrfs a
// container's rootfs is a subvolume, a snapshot's rootfs a read-only
// snapshot subvolume, a restore a swap of subvolumes; moves to and from
// directory hosts go by archive. Each daemon has a loop-mounted btrfs of
// its own (harness_btrfs_test.go).

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ctrfs/ops/storage"
)

// snapshotSubvolume is where a daemon keeps a snapshot's rootfs subvolume.
func (d *Daemon) snapshotSubvolume(name, snap string) string {
	return filepath.Join(d.LXCPath, name, "ctrfs-snapshots", snap)
}

// subvolumes lists the subvolumes of the filesystem under path, as
// `btrfs subvolume list` does.
func subvolumes(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("btrfs", "subvolume", "list", "-o", path).CombinedOutput()
	if err != nil {
		t.Fatalf("btrfs subvolume list %s: %v: %s", path, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestBtrfsSnapshots: the life of a container and its snapshots on
// btrfs, stateless and stateful, through restore, stop-stateful, rmdir,
// rename and destroy, with the trust rules (subvolumes root's alone, snapshots
// read-only) and a damaged snapshot refused with the container as it was.
func TestBtrfsSnapshots(t *testing.T) {
	d := StartBtrfsDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	if got := d.Info("c1")["storage"]; got != "btrfs" {
		t.Fatalf("info storage: %q on btrfs", got)
	}
	if !storage.IsSubvolume(d.rootfs("c1")) {
		t.Fatal("the rootfs of a container made on btrfs is no subvolume")
	}
	marker := d.rootfs("c1", "root", "marker")
	if err := os.WriteFile(marker, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Stateless, of the running container: a subvolume, read-only and
	// root's alone.
	d.MustSh("mkdir containers/c1/snapshots/one")
	info := d.snapshotInfo("c1", "one")
	if info["storage"] != "btrfs" || info["kind"] != "stateless" {
		t.Errorf("snapshot info: %v", info)
	}
	sub := d.snapshotSubvolume("c1", "one")
	if !storage.IsSubvolume(sub) {
		t.Fatalf("%s is no subvolume", sub)
	}
	if got, _ := os.ReadFile(filepath.Join(sub, "root", "marker")); string(got) != "one" {
		t.Errorf("the snapshot's marker reads %q", got)
	}
	if err := os.WriteFile(filepath.Join(sub, "root", "marker"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("a write into the snapshot subvolume: %v, want EROFS", err)
	}
	if fi, err := os.Stat(filepath.Dir(sub)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the snapshots' directory: %v %v, want 0700", fi.Mode(), err)
	}

	// Stateful: files and memory of one instant.
	os.WriteFile(marker, []byte("two"), 0o644)
	time.Sleep(time.Second)
	d.MustSh("echo 'snapshot two --stateful' > containers/c1/ctl")
	atTwo := Count(t, ip)
	if info := d.snapshotInfo("c1", "two"); info["storage"] != "btrfs" || info["kind"] != "stateful" {
		t.Errorf("stateful snapshot info: %v", info)
	}
	if ls := d.MustSh("ls containers/c1/snapshots/two/state"); !strings.Contains(ls, "pstree.img") {
		t.Errorf("state/ of the stateful snapshot lists %q", ls)
	}
	if ls := d.MustSh("ls containers/c1/snapshots/two/state"); strings.Contains(ls, "ctrfs-rootfs") {
		t.Errorf("a snapshot kept in a subvolume has a rootfs archive: %q", ls)
	}
	os.WriteFile(marker, []byte("three"), 0o644)

	// Restore stateless: the marker as it was, running again, the
	// rootfs still a subvolume and nothing left beside it.
	d.MustSh("echo 'restore one' > containers/c1/ctl")
	if got, _ := os.ReadFile(marker); string(got) != "one" {
		t.Errorf("after restore one the marker reads %q", got)
	}
	d.WantStatus("containers/c1", "RUNNING", "after restoring a stateless snapshot of a running container")
	if !storage.IsSubvolume(d.rootfs("c1")) {
		t.Error("the restored rootfs is no subvolume")
	}
	if left, _ := filepath.Glob(d.rootfs("c1") + ".ctrfs-*"); len(left) > 0 {
		t.Errorf("left beside the rootfs: %v", left)
	}
	if got, _ := os.ReadFile(filepath.Join(sub, "root", "marker")); string(got) != "one" {
		t.Error("the restore changed the snapshot")
	}

	// Restore stateful: the processes of the snapshot with their files.
	before := CountsPast(t, ip, atTwo+3, "the counter moves on past the snapshot")
	d.MustSh("echo 'restore two' > containers/c1/ctl")
	d.WantStatus("containers/c1", "RUNNING", "after restoring a stateful snapshot")
	if got := Count(t, ip); got >= before || got < atTwo-10 {
		t.Errorf("count %d at the snapshot, %d before the restore, %d after: not the snapshot's processes", atTwo, before, got)
	}
	if got, _ := os.ReadFile(marker); string(got) != "two" {
		t.Errorf("after restore two the marker reads %q", got)
	}

	// Saved state: the rootfs stays where it is, a subvolume.
	n := Count(t, ip)
	d.MustSh("echo stop-stateful > containers/c1/ctl && echo start > containers/c1/ctl")
	countFrom(t, ip, n, "over stop-stateful and start on btrfs")

	// rmdir deletes the subvolume with the snapshot.
	d.MustSh("rmdir containers/c1/snapshots/one")
	if exists(sub) {
		t.Error("rmdir of the snapshot left its subvolume")
	}

	// A snapshot whose subvolume is gone is refused by restore, and
	// the container stays as it was.
	d.MustSh("mkdir containers/c1/snapshots/lost")
	if out, err := exec.Command("btrfs", "subvolume", "delete", d.snapshotSubvolume("c1", "lost")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	d.ShFails("echo 'restore lost' > containers/c1/ctl", "Input/output error")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, "subvolume") || !strings.Contains(e, "unchanged") {
		t.Errorf("error after restoring a snapshot without its subvolume: %q", e)
	}
	d.WantStatus("containers/c1", "RUNNING", "after a refused restore")
	CountsPast(t, ip, 0, "the container runs on after a refused restore")
	d.MustSh("rmdir containers/c1/snapshots/lost")

	// Rename: the snapshot subvolumes go with the container.
	d.MustSh("echo stop > containers/c1/ctl")
	d.MustSh("mv containers/c1 containers/c2")
	if !storage.IsSubvolume(d.snapshotSubvolume("c2", "two")) {
		t.Fatal("after mv c1 c2 the snapshot's subvolume is not under c2")
	}
	d.MustSh("echo 'restore two' > containers/c2/ctl")
	d.WantStatus("containers/c2", "RUNNING", "after restoring a stateful snapshot of the renamed container")
	d.MustSh("echo stop > containers/c2/ctl")

	// Destroy: no subvolume of it is left.
	d.MustSh("rmdir containers/c2")
	if left := subvolumes(t, filepath.Dir(d.LXCPath)); left != "" {
		t.Errorf("subvolumes left after rmdir of the container:\n%s", left)
	}
}

// TestBtrfsOrphanSubvolumes: a snapshot subvolume that no snapshot
// names (a take that a crash cut short) is removed when the daemon
// starts; those that snapshots name stay.
func TestBtrfsOrphanSubvolumes(t *testing.T) {
	d := StartBtrfsDaemon(t, "dakara")
	d.MustSh("mkdir containers/c1 && mkdir containers/c1/snapshots/kept")
	d.Kill()
	orphan := d.snapshotSubvolume("c1", "orphan")
	if err := storage.Snapshot(d.rootfs("c1"), orphan, true); err != nil {
		t.Fatal(err)
	}
	d.Start()
	if exists(orphan) {
		t.Error("the orphan subvolume survived the daemon's start")
	}
	if !storage.IsSubvolume(d.snapshotSubvolume("c1", "kept")) {
		t.Error("the start removed a snapshot's subvolume")
	}
	d.MustSh("echo 'restore kept' > containers/c1/ctl")
}

// TestBtrfsMoves: a container with a snapshot kept in a subvolume moves
// live from a btrfs host to another btrfs host (by send streams), to a
// directory host and back (by archives); the rootfs is what each host
// keeps (a subvolume on btrfs, a directory elsewhere) with the files as
// they were at the freeze, and the snapshot restores at the end.
func TestBtrfsMoves(t *testing.T) {
	// Every move pauses as the container freezes, after the precopy
	// sent the rootfs: what the test writes then must come in the
	// freeze's part.
	env, pause := pauseAt(t, "move-freeze")
	secret := newSecret(t)
	a := startBtrfsPeer(t, "dakara", loopback(2), secret, "", env)
	b := startBtrfsPeer(t, "tollana", loopback(3), secret, a.Addr, env)
	c := startPeer(t, "abydos", loopback(4), secret, a.Addr, env)
	a.waitHosts("dakara", "tollana", "abydos")
	for peer, want := range map[string]string{"tollana": "btrfs", "abydos": "dir"} {
		if got := peerInfo(a.Daemon, peer)["storage"]; got != want {
			t.Errorf("hosts/%s/info: storage %q, want %s", peer, got, want)
		}
	}

	ip := a.CreateRunning("c1")
	os.WriteFile(a.rootfs("c1", "root", "marker"), []byte("at snapshot"), 0o644)
	a.MustSh("echo 'snapshot s1' > containers/c1/ctl")
	os.WriteFile(a.rootfs("c1", "root", "marker"), []byte("after"), 0o644)
	before := Count(t, ip)

	hops := []struct {
		from, to          *Peer
		storage, transfer string
	}{{a, b, "btrfs", "btrfs-send"}, {b, c, "dir", "archive"}, {c, a, "btrfs", "archive"}}
	for _, h := range hops {
		move := h.from.Background("mv containers/c1 hosts/" + h.to.Name + "/")
		waitPaused(t, pause)
		late := "late to " + h.to.Name
		os.WriteFile(h.from.rootfs("c1", "root", "late"), []byte(late), 0o644)
		os.Remove(pause)
		if err := move.Wait(); err != nil {
			t.Fatalf("move to %s: %v; error: %s", h.to.Name, err, h.from.Read("containers/c1/error"))
		}
		wantMoved(t, "c1", h.from, h.to, "after the move from "+h.from.Name+" to "+h.to.Name)
		before = countFrom(t, ip, before, "over the move to "+h.to.Name)
		info := h.to.Info("c1")
		if info["storage"] != h.storage || info["move-rootfs"] != h.transfer {
			t.Errorf("on %s: info storage %q move-rootfs %q, want %s and %s", h.to.Name, info["storage"], info["move-rootfs"], h.storage, h.transfer)
		}
		if got := storage.KindOf(h.to.rootfs("c1")); string(got) != h.storage {
			t.Errorf("on %s the rootfs is kept as %s", h.to.Name, got)
		}
		if got, _ := os.ReadFile(h.to.rootfs("c1", "root", "marker")); string(got) != "after" {
			t.Errorf("on %s the marker reads %q", h.to.Name, got)
		}
		if got, _ := os.ReadFile(h.to.rootfs("c1", "root", "late")); string(got) != late {
			t.Errorf("on %s the file written during the precopy reads %q, want %q", h.to.Name, got, late)
		}
		if h.from.Name != "dakara" {
			continue
		}
		// What a move leaves of the container on the source: nothing,
		// once the copy that moved away is removed (in the background).
		waitFor(t, "the subvolumes of c1 to go from "+h.from.Name, func() bool {
			return subvolumes(t, filepath.Dir(h.from.LXCPath)) == ""
		})
	}
	// Back where it began, its snapshot restores.
	a.MustSh("echo 'restore s1' > containers/c1/ctl")
	if got, _ := os.ReadFile(a.rootfs("c1", "root", "marker")); string(got) != "at snapshot" {
		t.Errorf("after the moves, restore s1 gives the marker %q", got)
	}
	a.WantStatus("containers/c1", "RUNNING", "after restoring the moved snapshot")
	Count(t, ip)

	// Post-copy between btrfs hosts sends streams too (a privileged
	// container: an unprivileged one's post-copy depends on the kernel,
	// tests/unprivileged_moves_test.go).
	ip2 := a.CreatePrivilegedRunning("c2")
	n := Count(t, ip2)
	os.WriteFile(a.rootfs("c2", "root", "marker"), []byte("post-copy"), 0o644)
	if _, err := a.Sh("echo 'move tollana --post-copy' > containers/c2/ctl"); err != nil {
		t.Fatalf("post-copy move: %v; error: %s", err, a.Read("containers/c2/error"))
	}
	wantMoved(t, "c2", a, b, "after the post-copy move")
	countFrom(t, ip2, n, "over the post-copy move")
	if info := b.Info("c2"); info["move-mode"] != "post-copy" || info["move-rootfs"] != "btrfs-send" {
		t.Errorf("post-copy move: move-mode %q move-rootfs %q", info["move-mode"], info["move-rootfs"])
	}
	if got, _ := os.ReadFile(b.rootfs("c2", "root", "marker")); string(got) != "post-copy" {
		t.Errorf("after the post-copy move the marker reads %q", got)
	}
}

// TestBtrfsMoveTargetKilled: a btrfs target killed after it received the
// rootfs streams and created the container, before it restored it: the
// container runs on at the source, which keeps no snapshot of the move,
// and the restarted target keeps no subvolume of it; the next move goes.
func TestBtrfsMoveTargetKilled(t *testing.T) {
	lease := []string{"CTRFS_TEST_COMMIT_LEASE=5s", "CTRFS_TEST_INSTALL_SLACK=5s"}
	env, pause := pauseAt(t, "target-restore")
	secret := newSecret(t)
	a := startBtrfsPeer(t, "dakara", loopback(2), secret, "", lease...)
	b := startBtrfsPeer(t, "tollana", loopback(3), secret, a.Addr, append(lease, env)...)
	a.waitHosts("dakara", "tollana")
	ip := a.CreateRunning("c1")
	before := Count(t, ip)

	move := a.Background("echo 'move tollana' > containers/c1/ctl")
	waitPaused(t, pause)
	if subvolumes(t, filepath.Dir(b.LXCPath)) == "" {
		t.Fatal("the target paused before its restore has no subvolume")
	}
	b.Kill()
	os.Remove(pause)
	if err := move.Wait(); err == nil {
		t.Fatal("the move succeeded although the target died before the commit")
	}
	a.WantStatus("containers/c1", "RUNNING", "on the source after the target died")
	before = countFrom(t, ip, before, "over the move the target died in")
	if exists(filepath.Join(a.LXCPath, "c1", ".ctrfs-move")) {
		t.Error("the source kept the snapshots of the failed move")
	}
	b.Env = lease // no pause from here on
	b.Start()
	if b.has("c1") {
		t.Fatal("the restarted target kept its uncommitted copy of c1")
	}
	waitFor(t, "the target's subvolumes of c1 to go", func() bool {
		return subvolumes(t, filepath.Dir(b.LXCPath)) == ""
	})
	a.waitHosts("dakara", "tollana")
	// The next move goes through.
	a.MustSh("echo 'move tollana' > containers/c1/ctl")
	wantMoved(t, "c1", a, b, "after the move once the target came back")
	countFrom(t, ip, before, "over the second move")
	if got := b.Info("c1")["move-rootfs"]; got != "btrfs-send" {
		t.Errorf("move-rootfs %q, want btrfs-send", got)
	}
}

// TestStorageFlag: `serve --storage dir` on btrfs keeps new containers in
// directories, snapshots as archives; `--storage btrfs` where the LXC
// path is not on btrfs, and an unknown kind, stop the daemon saying why.
func TestStorageFlag(t *testing.T) {
	d := newDaemonOn(t, "dakara", btrfsLXCPath(t), "--storage", "dir")
	d.Start()
	d.MustSh("mkdir containers/c1 && mkdir containers/c1/snapshots/s1")
	if got := d.Info("c1")["storage"]; got != "dir" {
		t.Errorf("info storage %q under --storage dir", got)
	}
	if storage.IsSubvolume(d.rootfs("c1")) || exists(d.snapshotSubvolume("c1", "s1")) {
		t.Error("--storage dir made a subvolume")
	}
	if got := d.snapshotInfo("c1", "s1")["storage"]; got != "dir" {
		t.Errorf("snapshot info storage %q under --storage dir", got)
	}

	base := t.TempDir()
	serve := func(kind string) (int, string) {
		cmd := exec.Command(ctrfsBin, "serve", "--mount", filepath.Join(base, "mnt"), "--lxcpath", filepath.Join(base, "lxc"),
			"--store", filepath.Join(base, "store"), "--name", "abydos", "--bridge", testBridge, "--subnet", testSubnet, "--storage", kind)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := serve("btrfs"); code != 1 || !strings.Contains(out, "is not on a btrfs filesystem") {
		t.Errorf("serve --storage btrfs off btrfs: exit %d:\n%s", code, out)
	}
	if code, out := serve("zfs"); code != 2 || !strings.Contains(out, `unknown storage "zfs"`) {
		t.Errorf("serve --storage zfs: exit %d:\n%s", code, out)
	}
}
