package tests

// Unprivileged containers (issue 21): `create NAME --unprivileged` maps
// the container's ids 0-65535 to root's range in /etc/subuid and
// /etc/subgid, shifted once at create; so do plain mkdir and create,
// the default; `--privileged` makes privileged ones as before.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"ctrfs/ops/idmap"
)

// reachableBase opens the daemon's directories to the mapped root: a
// test's temporary directories are 0700, and an unprivileged container's
// root must pass through every directory above its rootfs (0711, still
// root's).
func (d *Daemon) reachableBase() {
	d.t.Helper()
	searchable(d.t, d.LXCPath)
}

// searchable adds o+x (and g+x) to dir and the directories above it up to
// the temporary directory, which is left alone, as is everything above
// it: only what the test made is changed, and its other mode bits kept.
func searchable(t *testing.T, dir string) {
	t.Helper()
	top := filepath.Clean(os.TempDir())
	for dir = filepath.Clean(dir); strings.HasPrefix(dir, top+"/"); dir = filepath.Dir(dir) {
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o001 == 0 {
			if err := syscall.Chmod(dir, st.Mode&0o7777|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// hostMap is the map the daemon gives unprivileged containers: root's
// range in the host's files, which the daemon adds at startup if missing.
func hostMap(t *testing.T) idmap.Map {
	t.Helper()
	m, err := idmap.HostFiles.Root()
	if err != nil {
		t.Fatalf("after the daemon's start: %v", err)
	}
	return m
}

// owner is the host uid and gid of a file.
func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid
}

// initUIDMap is /proc/PID/uid_map of the container's init, one line.
func (d *Daemon) initUIDMap(name string) string {
	d.t.Helper()
	b, err := os.ReadFile("/proc/" + d.Info(name)["pid"] + "/uid_map")
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// TestUnprivilegedBusybox: an unprivileged busybox container is made
// shifted into the host's map, says so in info, runs as the mapped ids,
// freezes, keeps its owners through a stateless snapshot and its restore,
// renames and goes; plain mkdir and create make unprivileged containers
// too (the default), `create --privileged` a privileged one.
func TestUnprivilegedBusybox(t *testing.T) {
	d := StartDaemon(t, "unpriv")
	d.reachableBase()
	m := hostMap(t)
	wantMap := fmt.Sprintf("u 0 %d 65536, g 0 %d 65536", m.UID, m.GID)

	d.MustSh("echo 'create u1 --unprivileged' > ctl")
	info := d.Info("u1")
	if info["privileged"] != "no" || info["idmap"] != wantMap {
		t.Fatalf("info of an unprivileged container: privileged %q, idmap %q; want no, %q", info["privileged"], info["idmap"], wantMap)
	}
	for _, p := range []string{"", "bin/busybox", "etc/passwd", "tmp"} {
		if u, g := owner(t, d.rootfs("u1", p)); u != m.UID || g != m.GID {
			t.Errorf("rootfs/%s is %d:%d on the host; want the mapped root %d:%d", p, u, g, m.UID, m.GID)
		}
	}
	if u, _ := owner(t, filepath.Join(d.LXCPath, "u1")); u != 0 {
		t.Errorf("the container's directory is uid %d's; want root's", u)
	}

	d.MustSh("echo start > containers/u1/ctl")
	ip := d.Info("u1")["ipv4"]
	n := Count(t, ip)
	if got, want := d.initUIDMap("u1"), fmt.Sprintf("0 %d 65536", m.UID); got != want {
		t.Errorf("uid_map of the container's init: %q; want %q", got, want)
	}
	d.MustSh("echo freeze > containers/u1/ctl")
	d.WantStatus("containers/u1", "FROZEN", "after freeze")
	d.MustSh("echo unfreeze > containers/u1/ctl")
	d.WantStatus("containers/u1", "RUNNING", "after unfreeze")
	CountsPast(t, ip, n, "after unfreeze")

	// A stateless snapshot and its restore keep the shifted owners: a
	// rootfs unpacked as root's would not start (its root could not write).
	d.MustSh("echo 'snapshot s1' > containers/u1/ctl")
	if out, err := d.attach("u1", "touch", "/root/after-s1"); err != nil {
		t.Fatalf("touch inside: %v: %s", err, out)
	}
	if u, _ := owner(t, d.rootfs("u1", "root/after-s1")); u != m.UID {
		t.Errorf("a file root made inside is uid %d's on the host; want %d", u, m.UID)
	}
	d.MustSh("echo 'restore s1' > containers/u1/ctl")
	d.WantStatus("containers/u1", "RUNNING", "after restore")
	if exists(d.rootfs("u1", "root/after-s1")) {
		t.Error("a file made after the snapshot survived its restore")
	}
	for _, p := range []string{"", "bin/busybox", "var/lib/counter"} {
		if u, g := owner(t, d.rootfs("u1", p)); u != m.UID || g != m.GID {
			t.Errorf("after restore, rootfs/%s is %d:%d; want %d:%d", p, u, g, m.UID, m.GID)
		}
	}
	Count(t, ip)
	if got := d.initUIDMap("u1"); !strings.HasPrefix(got, fmt.Sprintf("0 %d ", m.UID)) {
		t.Errorf("uid_map after restore: %q", got)
	}

	d.MustSh("echo stop > containers/u1/ctl")
	d.MustSh("cd containers && mv u1 u2")
	if d.Info("u2")["privileged"] != "no" {
		t.Error("the renamed container is no longer unprivileged")
	}
	d.MustSh("echo start > containers/u2/ctl")
	Count(t, ip)
	d.MustSh("echo stop > containers/u2/ctl && rmdir containers/u2")

	// The default (issue 21): plain mkdir and create are unprivileged.
	d.MustSh("mkdir containers/d1 && echo 'create d2' > ctl")
	for _, name := range []string{"d1", "d2"} {
		info := d.Info(name)
		if info["privileged"] != "no" || info["idmap"] != wantMap {
			t.Errorf("info of %s, made without a kind: privileged %q, idmap %q; want no, %q", name, info["privileged"], info["idmap"], wantMap)
		}
		if u, g := owner(t, d.rootfs(name, "bin/busybox")); u != m.UID || g != m.GID {
			t.Errorf("%s's rootfs/bin/busybox is %d:%d; want the mapped root %d:%d", name, u, g, m.UID, m.GID)
		}
	}

	// The privileged kind, asked for.
	d.MustSh("echo 'create p1 --privileged' > ctl")
	info = d.Info("p1")
	if info["privileged"] != "yes" || info["idmap"] != "" {
		t.Errorf("info of p1: privileged %q, idmap %q; want yes and none", info["privileged"], info["idmap"])
	}
	if u, _ := owner(t, d.rootfs("p1", "bin/busybox")); u != 0 {
		t.Errorf("p1's rootfs was shifted (uid %d)", u)
	}
}

// TestUnprivilegedRootCannotWriteHost: the security claim. Root inside a
// container writes a root-owned 0644 host file bind-mounted into it; it
// succeeds in a privileged container and fails in an unprivileged one,
// whose root is the mapped uid on the host.
func TestUnprivilegedRootCannotWriteHost(t *testing.T) {
	d := StartDaemon(t, "hostwrite")
	d.reachableBase()
	m := hostMap(t)
	for _, kind := range []string{"privileged", "unprivileged"} {
		t.Run(kind, func(t *testing.T) {
			host := filepath.Join(t.TempDir(), "shared")
			if err := os.Mkdir(host, 0o755); err != nil {
				t.Fatal(err)
			}
			searchable(t, host) // the bind's source must be reachable by the mapped root
			file := filepath.Join(host, "file")
			if err := os.WriteFile(file, []byte("host\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			name := "w" + kind[:1]
			d.MustSh("echo 'create " + name + " --" + kind + "' > ctl")
			conf := d.Read("containers", name, "config") + "\nlxc.mount.entry = " + host + " mnt/shared none bind,create=dir 0 0\n"
			if err := os.WriteFile(d.Path("containers", name, "config"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			d.MustSh("echo start > containers/" + name + "/ctl")
			defer d.MustSh("echo stop > containers/" + name + "/ctl && rmdir containers/" + name)
			out, err := d.attach(name, "sh", "-c", "echo container > /mnt/shared/file")
			b, _ := os.ReadFile(file)
			if kind == "privileged" {
				if err != nil || string(b) != "container\n" {
					t.Fatalf("privileged root could not write the host file (%v: %s): %q", err, out, b)
				}
				return
			}
			if err == nil || !strings.Contains(out, "Permission denied") || string(b) != "host\n" {
				t.Fatalf("unprivileged root wrote the host's 0644 file: %v: %s; it holds %q", err, out, b)
			}
			if got, want := d.initUIDMap(name), fmt.Sprintf("0 %d 65536", m.UID); got != want {
				t.Errorf("uid_map of init: %q; want %q", got, want)
			}
			if out, err := d.attach(name, "touch", "/mnt/made-inside"); err != nil {
				t.Fatalf("touch inside: %v: %s", err, out)
			}
			if u, g := owner(t, d.rootfs(name, "mnt/made-inside")); u != m.UID || g != m.GID {
				t.Errorf("a file the container's root made is %d:%d on the host; want %d:%d", u, g, m.UID, m.GID)
			}
		})
	}
}

// TestUnprivilegedWithoutRange: where root's range is too small, `create
// --unprivileged` and plain mkdir (unprivileged by default) fail, the error
// names the file, and nothing is left; privileged creates go on.
func TestUnprivilegedWithoutRange(t *testing.T) {
	dir := t.TempDir()
	uid, gid := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	os.WriteFile(uid, []byte("root:1000000:1000\n"), 0o644)
	os.WriteFile(gid, []byte("root:1000000:65536\n"), 0o644)
	d := NewDaemon(t, "norange")
	d.Env = append(d.Env, "CTRFS_TEST_SUBID="+uid+":"+gid)
	d.Start()
	d.reachableBase()
	d.ShFails("echo 'create u1 --unprivileged' > ctl", "Input/output error")
	if e := d.Read("error"); !strings.Contains(e, uid) || !strings.Contains(e, "too small") {
		t.Errorf("error after create --unprivileged without a range: %q", e)
	}
	if exists(d.Path("containers", "u1")) {
		t.Error("the failed create left a container")
	}
	if b, _ := os.ReadFile(uid); string(b) != "root:1000000:1000\n" {
		t.Errorf("the daemon changed a file whose root range is too small: %q", b)
	}
	d.ShFails("mkdir containers/u2", "Input/output error")
	if e := d.Read("error"); !strings.Contains(e, uid) || !strings.Contains(e, "too small") {
		t.Errorf("error after plain mkdir without a range: %q", e)
	}
	if exists(d.Path("containers", "u2")) {
		t.Error("the failed mkdir left a container")
	}
	d.MustSh("echo 'create p1 --privileged' > ctl")
	if got := d.Info("p1")["privileged"]; got != "yes" {
		t.Errorf("create --privileged made privileged: %q", got)
	}
}

// TestUnprivilegedDebian: the debian template, unprivileged by default
// (plain create --template debian), boots systemd
// to `running` (the same units as privileged: none failed), stops, and
// starts again from a stateless snapshot's restore with its owners.
func TestUnprivilegedDebian(t *testing.T) {
	d := StartDaemon(t, "undeb")
	d.reachableBase()
	m := hostMap(t)
	d.MustSh("echo 'create deb1 --template debian' > ctl")
	if info := d.Info("deb1"); info["privileged"] != "no" {
		t.Fatalf("privileged: %q", info["privileged"])
	}
	for _, p := range []string{"usr/bin/passwd", "etc/shadow", "var/log/journal"} {
		if u, _ := owner(t, d.rootfs("deb1", p)); u < m.UID || u >= m.UID+idmap.Size {
			t.Errorf("rootfs/%s is uid %d on the host; want within the map from %d", p, u, m.UID)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(d.rootfs("deb1", "usr/bin/passwd"), &st); err != nil || st.Mode&syscall.S_ISUID == 0 {
		t.Errorf("passwd lost its setuid bit in the shift: %o %v", st.Mode, err)
	}
	ip := d.startDebian("deb1")
	if got := d.initUIDMap("deb1"); got != fmt.Sprintf("0 %d 65536", m.UID) {
		t.Errorf("uid_map of systemd: %q", got)
	}
	if got := httpStatus(t, ip); !strings.Contains(got, "200") {
		t.Errorf("nginx: %q", got)
	}
	d.MustSh("echo 'snapshot s1' > containers/deb1/ctl")
	d.MustSh("echo 'restore s1' > containers/deb1/ctl")
	d.systemRunning("deb1")
	d.MustSh("echo stop > containers/deb1/ctl && rmdir containers/deb1")
}

// TestConvertToUnprivileged: `convert` makes a stopped privileged
// container unprivileged, its rootfs shifted; it refuses one running, one
// with saved state (dumped privileged) and one unprivileged already.
func TestConvertToUnprivileged(t *testing.T) {
	d := StartDaemon(t, "convert")
	d.reachableBase()
	m := hostMap(t)
	// convert is of a privileged container: made so explicitly, since
	// plain mkdir makes unprivileged ones.
	d.MustSh("echo 'create c1 --privileged' > ctl && echo start > containers/c1/ctl")
	ip := d.Info("c1")["ipv4"]
	Count(t, ip)
	d.ShFails("echo convert > containers/c1/ctl", "Device or resource busy")
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	d.ShFails("echo convert > containers/c1/ctl", "Device or resource busy")
	if e := d.Read("containers", "c1", "error"); !strings.Contains(e, "saved state") {
		t.Errorf("error of convert with saved state: %q", e)
	}
	d.MustSh("echo start > containers/c1/ctl && echo stop > containers/c1/ctl")
	d.MustSh("echo convert > containers/c1/ctl")
	if info := d.Info("c1"); info["privileged"] != "no" || info["idmap"] != fmt.Sprintf("u 0 %d 65536, g 0 %d 65536", m.UID, m.GID) {
		t.Fatalf("after convert: privileged %q, idmap %q", info["privileged"], info["idmap"])
	}
	if u, g := owner(t, d.rootfs("c1", "bin/busybox")); u != m.UID || g != m.GID {
		t.Errorf("rootfs/bin/busybox is %d:%d after convert", u, g)
	}
	d.MustSh("echo start > containers/c1/ctl")
	Count(t, ip)
	if got := d.initUIDMap("c1"); got != fmt.Sprintf("0 %d 65536", m.UID) {
		t.Errorf("uid_map after convert: %q", got)
	}
	d.MustSh("echo stop > containers/c1/ctl")
	d.ShFails("echo convert > containers/c1/ctl", "Invalid argument")
	d.MustSh("rmdir containers/c1")
}
