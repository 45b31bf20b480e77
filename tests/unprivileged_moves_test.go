package tests

// Moves of unprivileged containers (issue 21): the source refuses, before
// anything moves, a target whose root has no range over the container's
// id map; the target restores from received files that stay root's yet
// readable by the container's mapped root alone; the container keeps its
// map, and its files their owners, file capabilities and ACLs.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"ctrfs/internal/tree"
	"ctrfs/ops/idmap"
)

// logCRIU says in the test's log which criu the daemons run (they get the
// test's PATH): restoring an unprivileged container with a veth needs
// ctrfs's patch 0007 (the usernsd veth), which the host's criu may lack.
func logCRIU(t *testing.T) {
	t.Helper()
	path, err := exec.LookPath("criu")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(path, "--version").Output()
	t.Logf("criu: %s, %s", path, strings.Join(strings.Fields(string(out)), " "))
}

// createUnprivileged makes and starts an unprivileged busybox container
// and waits until its counter answers.
func (d *Daemon) createUnprivileged(name string) (ip string) {
	d.t.Helper()
	d.reachableBase()
	d.MustSh("echo 'create " + name + " --unprivileged' > ctl && echo start > containers/" + name + "/ctl")
	ip = d.Info(name)["ipv4"]
	Count(d.t, ip)
	return ip
}

// ownedFiles are files of a shifted rootfs whose owners, file capability
// and ACL a move must keep, as root of the host sees them.
type ownedFiles struct {
	t *testing.T
	m idmap.Map
}

func (o ownedFiles) cap() []byte { // v3: cap_net_raw, its rootid the mapped root
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b, 0x03000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<13)
	binary.LittleEndian.PutUint32(b[20:], o.m.UID)
	return b
}

func (o ownedFiles) acl() []byte { // user::rw- user:(mapped 1000):rw- group::r-- mask::rw- other::r--
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range [][3]uint32{{0x01, 6, ^uint32(0)}, {0x02, 6, o.m.UID + 1000}, {0x04, 4, ^uint32(0)}, {0x10, 6, ^uint32(0)}, {0x20, 4, ^uint32(0)}} {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

// make puts them in rootfs: root/owned (uid 1000, gid 100 inside) with an
// ACL, bin/ping-cap with a file capability.
func (o ownedFiles) make(rootfs string) {
	o.t.Helper()
	owned, capped := filepath.Join(rootfs, "root", "owned"), filepath.Join(rootfs, "bin", "ping-cap")
	for _, p := range []string{owned, capped} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			o.t.Fatal(err)
		}
	}
	must(o.t, os.Lchown(owned, int(o.m.UID)+1000, int(o.m.GID)+100))
	must(o.t, os.Lchown(capped, int(o.m.UID), int(o.m.GID)))
	must(o.t, unix.Lsetxattr(owned, "system.posix_acl_access", o.acl(), 0))
	must(o.t, unix.Lsetxattr(capped, "security.capability", o.cap(), 0))
}

// check fails the test unless rootfs has them as make left them, and its
// root directory is the mapped root's.
func (o ownedFiles) check(rootfs, when string) {
	o.t.Helper()
	for p, want := range map[string][2]uint32{"": {o.m.UID, o.m.GID}, "bin/busybox": {o.m.UID, o.m.GID},
		"root/owned": {o.m.UID + 1000, o.m.GID + 100}, "bin/ping-cap": {o.m.UID, o.m.GID}} {
		if u, g := owner(o.t, filepath.Join(rootfs, p)); u != want[0] || g != want[1] {
			o.t.Errorf("%s: rootfs/%s is %d:%d; want %d:%d", when, p, u, g, want[0], want[1])
		}
	}
	for _, x := range []struct{ path, attr string }{{"root/owned", "system.posix_acl_access"}, {"bin/ping-cap", "security.capability"}} {
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(filepath.Join(rootfs, x.path), x.attr, buf)
		want := o.acl()
		if x.path == "bin/ping-cap" {
			want = o.cap()
		}
		if err != nil || !bytes.Equal(buf[:n], want) {
			o.t.Errorf("%s: %s of rootfs/%s is %x (%v); want %x", when, x.attr, x.path, buf[:max(n, 0)], err, want)
		}
	}
}

// peerInfo parses hosts/PEER/info.
func peerInfo(d *Daemon, peer string) map[string]string {
	d.t.Helper()
	return tree.ParseKV(d.Read("hosts", peer, "info"))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestUnprivilegedMoves: an unprivileged busybox container, its counter
// in memory and its TCP service over the veth going on, moves live with
// `mv` (the target restoring from the precopy it unpacked, with images
// another local user cannot read), back post-copy (or, where the target's
// kernel does not let its tasks open a userfaultfd, refused so, and
// pre-copy with `move`), then away by evacuate;
// each time it keeps its count, its map and its files' owners, file
// capabilities and ACLs; last it moves cold.
func TestUnprivilegedMoves(t *testing.T) {
	logCRIU(t)
	env, pause := pauseAt(t, "target-restore")
	secret := newSecret(t)
	a := startPeer(t, "dakara", loopback(2), secret, "", env)
	b := startPeer(t, "tollana", loopback(3), secret, a.Addr)
	a.waitHosts("dakara", "tollana")
	a.reachableBase()
	m := hostMap(t)
	wantMap := fmt.Sprintf("u 0 %d 65536, g 0 %d 65536", m.UID, m.GID)
	if got, want := peerInfo(a.Daemon, "tollana")["root-id-ranges"], "u "; !strings.HasPrefix(got, want) || !strings.Contains(got, ", g ") {
		t.Errorf("hosts/tollana/info: root-id-ranges %q", got)
	}

	ip := b.createUnprivileged("c1")
	files := ownedFiles{t, m}
	files.make(b.rootfs("c1"))
	n := Count(t, ip)

	// Live, with mv: the target pauses with the images unpacked, just
	// before CRIU restores from them.
	move := b.Background("mv containers/c1 hosts/dakara/")
	waitPaused(t, pause)
	imagesReadableByMappedRootOnly(t, pausedDir(t, pause), m)
	os.Remove(pause)
	if err := move.Wait(); err != nil {
		t.Fatalf("live move: %v; error: %s", err, b.Read("containers/c1/error"))
	}
	releasePauses(t, pause) // moves to dakara from here on
	wantMoved(t, "c1", b, a, "after the live move")
	n = countFrom(t, ip, n, "over the live move")
	movedUnprivileged(t, a.Daemon, "c1", wantMap, files)
	lazy := unprivilegedLazyHere(t)
	if _, restoredLazily := a.Info("c1")["target-lazy-wait-seconds"]; restoredLazily != lazy {
		t.Errorf("the live move's target restored lazily: %v; want %v (info: %v)", restoredLazily, lazy, a.Info("c1"))
	}

	// Post-copy: its restored tasks open their userfaultfd inside its
	// user namespace, which vm.unprivileged_userfaultfd or (ctrfs's CRIU)
	// /dev/userfaultfd must allow on the target; where neither does, the
	// move is refused before anything moves, and a pre-copy move goes
	// instead.
	if lazy {
		a.MustSh("echo 'move tollana --post-copy' > containers/c1/ctl")
		if mode := b.Info("c1")["move-mode"]; mode != "post-copy" {
			t.Errorf("move-mode after the post-copy move: %q", mode)
		}
	} else {
		a.ShFails("echo 'move tollana --post-copy' > containers/c1/ctl", "Operation not supported")
		if e := a.Read("containers/c1/error"); !strings.Contains(e, "vm.unprivileged_userfaultfd is 0") {
			t.Errorf("error of a post-copy move refused: %q", e)
		}
		a.WantStatus("containers/c1", "RUNNING", "after the post-copy move was refused")
		if b.has("c1") {
			t.Fatal("the refused post-copy move left a copy on tollana")
		}
		t.Log("vm.unprivileged_userfaultfd is 0 and no /dev/userfaultfd: post-copy refused; moving pre-copy")
		a.MustSh("echo 'move tollana' > containers/c1/ctl")
	}
	wantMoved(t, "c1", a, b, "after the move to tollana")
	n = countFrom(t, ip, n, "over the move to tollana")
	movedUnprivileged(t, b.Daemon, "c1", wantMap, files)

	b.MustSh("echo evacuate > ctl")
	wantMoved(t, "c1", b, a, "after evacuate")
	countFrom(t, ip, n, "over evacuate")
	movedUnprivileged(t, a.Daemon, "c1", wantMap, files)

	// Cold, stopped: its files and map go as they are, and it starts there.
	a.MustSh("echo stop > containers/c1/ctl && echo 'move tollana' > containers/c1/ctl")
	b.MustSh("echo start > containers/c1/ctl")
	Count(t, ip)
	movedUnprivileged(t, b.Daemon, "c1", wantMap, files)
	b.MustSh("echo stop > containers/c1/ctl")
}

// unprivilegedLazyHere says whether this host must restore an
// unprivileged container's tasks lazily: where vm.unprivileged_userfaultfd
// is 1, or /dev/userfaultfd exists (Linux 6.1 and later) for ctrfs's CRIU
// (scripts/criu-patches/0008; the tests run with the CRIU ctrfs builds)
// to open for them.
func unprivilegedLazyHere(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/vm/unprivileged_userfaultfd")
	must(t, err)
	_, noDev := os.Stat("/dev/userfaultfd")
	t.Logf("vm.unprivileged_userfaultfd %s, /dev/userfaultfd: %v", strings.TrimSpace(string(b)), noDev == nil)
	return strings.TrimSpace(string(b)) == "1" || noDev == nil
}

// pausedDir is the directory a pause file names on its second line.
func pausedDir(t *testing.T, pause string) string {
	t.Helper()
	lines := strings.Split(fileText(pause), "\n")
	if len(lines) < 2 || !filepath.IsAbs(lines[1]) {
		t.Fatalf("the pause names no directory: %q", lines)
	}
	return lines[1]
}

// imagesReadableByMappedRootOnly checks the images a target restores an
// unprivileged container from: root's, open to the mapped gid only
// (directory 0710, files 0440), and nobody, a local user, reads none.
func imagesReadableByMappedRootOnly(t *testing.T, dir string, m idmap.Map) {
	t.Helper()
	imgs, _ := filepath.Glob(filepath.Join(dir, "*.img"))
	if dir == "" || len(imgs) == 0 {
		t.Fatalf("no images in the lazy-pages daemon's directory %q", dir)
	}
	for _, p := range append([]string{dir}, imgs...) {
		var st unix.Stat_t
		must(t, unix.Stat(p, &st))
		want := uint32(0o440)
		if p == dir {
			want = 0o750
		}
		if st.Uid != 0 || st.Gid != m.GID || st.Mode&0o7777 != want {
			t.Errorf("%s is %d:%d %o; want 0:%d %o", p, st.Uid, st.Gid, st.Mode&0o7777, m.GID, want)
		}
	}
	// The staging directories above stay 0700: nobody gets no further
	// than them, even to a file's name.
	script := "for f in " + strings.Join(imgs[:min(len(imgs), 5)], " ") + "; do cat $f >/dev/null 2>&1 && echo READ $f; done; ls " + dir + " 2>&1 | head -1"
	out, _ := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script).CombinedOutput()
	if strings.Contains(string(out), "READ") || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("another local user (nobody) reads the images of an unprivileged container's restore:\n%s", out)
	}
}

// movedUnprivileged checks a container on d after a move: unprivileged
// with the same map, its init in the map, its files as on the source, its
// directory root's and 0711 as create makes it.
func movedUnprivileged(t *testing.T, d *Daemon, name, wantMap string, files ownedFiles) {
	t.Helper()
	info := d.Info(name)
	if info["privileged"] != "no" || info["idmap"] != wantMap {
		t.Errorf("on %s: privileged %q, idmap %q; want no, %q", d.Name, info["privileged"], info["idmap"], wantMap)
	}
	if got, want := d.initUIDMap(name), fmt.Sprintf("0 %d 65536", files.m.UID); got != want {
		t.Errorf("on %s: uid_map of init %q; want %q", d.Name, got, want)
	}
	files.check(d.rootfs(name), "on "+d.Name)
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(d.LXCPath, name), &st))
	if st.Uid != 0 || st.Mode&0o777 != 0o711 {
		t.Errorf("on %s: the container's directory is uid %d's, mode %o; want root's, 0711", d.Name, st.Uid, st.Mode&0o777)
	}
}

// TestUnprivilegedMoveRefused: to a host whose root's range cannot hold
// the container's map, or one that does not say (here: its files cannot
// be read, as from an older ctrfs), a move of an unprivileged container is
// refused with EOPNOTSUPP before anything moves, `error` says why, and it
// runs on here; evacuate finds no peer for it; a privileged container
// still moves there.
func TestUnprivilegedMoveRefused(t *testing.T) {
	dir := t.TempDir()
	uid, gid := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	must(t, os.WriteFile(uid, []byte("root:1000000:1000\n"), 0o644))
	must(t, os.WriteFile(gid, []byte("root:1000000:1000000000\n"), 0o644))
	secret := newSecret(t)
	a := startPeer(t, "dakara", loopback(2), secret, "")
	b := startPeer(t, "tollana", loopback(3), secret, a.Addr, "CTRFS_TEST_SUBID="+uid+":"+gid)
	c := startPeer(t, "abydos", loopback(4), secret, a.Addr, "CTRFS_TEST_SUBID="+dir+":"+dir)
	a.waitHosts("abydos", "dakara", "tollana")
	if got := peerInfo(a.Daemon, "tollana")["root-id-ranges"]; got != "u 1000000:1000, g 1000000:1000000000" {
		t.Errorf("hosts/tollana/info: root-id-ranges %q", got)
	}
	if got := peerInfo(a.Daemon, "abydos")["root-id-ranges"]; got != "unknown" {
		t.Errorf("hosts/abydos/info: root-id-ranges %q", got)
	}
	ip := a.createUnprivileged("c1")
	m := hostMap(t)
	before := Count(t, ip)

	a.ShFails("echo 'move tollana' > containers/c1/ctl", "Operation not supported")
	e := a.Read("containers/c1/error")
	if want := fmt.Sprintf("uids %d-%d", m.UID, m.UID+65535); !strings.Contains(e, want) || !strings.Contains(e, "1000000:1000") || strings.Contains(e, "gids") {
		t.Errorf("error of a move to a host whose range is too small: %q; want it to name %s and the range", e, want)
	}
	stillHere(t, a, b, ip, before)
	if b.chunkCount() != 0 {
		t.Errorf("the refused move sent %d chunks", b.chunkCount())
	}

	a.ShFails("mv containers/c1 hosts/abydos/", "Operation not supported")
	if e := a.Read("containers/c1/error"); !strings.Contains(e, "does not say which ids") {
		t.Errorf("error of a move to a host that does not say its ranges: %q", e)
	}
	stillHere(t, a, c, ip, before)

	// Evacuate plans it onto neither, and says so.
	a.ShFails("echo evacuate > ctl", "Input/output error")
	if e := a.Read("error"); !strings.Contains(e, "c1") || !strings.Contains(e, "id map") {
		t.Errorf("error of an evacuation no peer can take: %q", e)
	}
	stillHere(t, a, b, ip, before)
	if c.has("c1") {
		t.Error("abydos has a copy of c1 after the evacuation")
	}
	a.MustSh("echo stop > containers/c1/ctl")

	// Stopped, it is refused too: its rootfs's owners are the map's.
	a.ShFails("echo 'move tollana' > containers/c1/ctl", "Operation not supported")
	if b.has("c1") {
		t.Error("tollana has a copy of the stopped c1")
	}
	a.MustSh("rmdir containers/c1")

	// A privileged container moves there as before.
	a.MustSh("echo 'create p1 --privileged' > ctl")
	a.MustSh("echo 'move tollana' > containers/p1/ctl")
	if !b.has("p1") || a.has("p1") {
		t.Error("a privileged container did not move to tollana")
	}
}

// TestUnprivilegedDebianMove: an unprivileged Debian container moves live;
// systemd runs on there, nginx answers, the counter goes on, and it keeps
// its map.
func TestUnprivilegedDebianMove(t *testing.T) {
	logCRIU(t)
	a, b := twoHosts(t)
	a.reachableBase()
	b.reachableBase()
	m := hostMap(t)
	a.MustSh("echo 'create deb1 --template debian --unprivileged' > ctl")
	ip := a.startDebian("deb1")
	CountsPast(t, ip, 3, "before the move")
	a.MustSh("mv containers/deb1 hosts/tollana/")
	wantMoved(t, "deb1", a, b, "after the move")
	CountsPast(t, ip, 0, "after the move")
	b.systemRunning("deb1")
	httpStatus(t, ip)
	if got := b.initUIDMap("deb1"); got != fmt.Sprintf("0 %d 65536", m.UID) {
		t.Errorf("uid_map of systemd after the move: %q", got)
	}
	if u, _ := owner(t, b.rootfs("deb1", "usr/bin/passwd")); u != m.UID {
		t.Errorf("usr/bin/passwd is uid %d's after the move; want %d", u, m.UID)
	}
	b.MustSh("echo stop > containers/deb1/ctl")
}

// TestUnprivilegedMoveFailsBack: a live move of an unprivileged container
// whose restore fails on the target leaves it RUNNING here, the same
// processes in the same map, and no copy there.
func TestUnprivilegedMoveFailsBack(t *testing.T) {
	a, b := twoHostsTargetEnv(t, fakeCRIU(t, "", true))
	b.reachableBase()
	ip := a.createUnprivileged("c1")
	m := hostMap(t)
	pid := a.Info("c1")["pid"]
	before := Count(t, ip)
	a.ShFails("mv containers/c1 hosts/tollana/", "Input/output error")
	if e := a.Read("containers/c1/error"); !strings.Contains(e, "RUNNING here") {
		t.Errorf("error of a failed restore on the target: %q", e)
	}
	stillHere(t, a, b, ip, before)
	if got := a.Info("c1")["pid"]; got != pid {
		t.Errorf("init's pid went from %s to %s: not the same processes", pid, got)
	}
	if got, want := a.initUIDMap("c1"), fmt.Sprintf("0 %d 65536", m.UID); got != want {
		t.Errorf("uid_map after the failed move: %q; want %q", got, want)
	}
	a.MustSh("echo stop > containers/c1/ctl")
}
