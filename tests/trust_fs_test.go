package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fingerprint is what must survive a tool that tries to remove a
// container: its status, its snapshots with their state/ listings, its
// saved state's listing and the store's manifests behind them.
func (d *Daemon) fingerprint(name string) string {
	d.t.Helper()
	var b strings.Builder
	ls := func(parts ...string) {
		entries, err := os.ReadDir(d.Path(parts...))
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", filepath.Join(parts...), err)
			return
		}
		fmt.Fprintf(&b, "%s:", filepath.Join(parts...))
		for _, e := range entries {
			fmt.Fprintf(&b, " %s", e.Name())
		}
		b.WriteString("\n")
	}
	c := []string{"containers", name}
	fmt.Fprintf(&b, "status: %s\n", d.Read("containers", name, "status"))
	ls(c...)
	ls(append(c, "snapshots")...)
	snaps, _ := os.ReadDir(d.Path(append(c, "snapshots")...))
	for _, s := range snaps {
		ls(append(c, "snapshots", s.Name())...)
		if exists(d.Path(append(c, "snapshots", s.Name(), "state")...)) {
			ls(append(c, "snapshots", s.Name(), "state")...)
		}
	}
	if exists(d.Path(append(c, "state")...)) {
		ls(append(c, "state")...)
	}
	manifests, _ := filepath.Glob(filepath.Join(d.Store, "images", "manifests", "*", name+"*"))
	snapManifests, _ := filepath.Glob(filepath.Join(d.Store, "images", "manifests", "snapshots", name, "*"))
	all := append(manifests, snapManifests...)
	sort.Strings(all)
	for _, m := range all {
		rel, _ := filepath.Rel(d.Store, m)
		fmt.Fprintf(&b, "manifest %s\n", rel)
	}
	return b.String()
}

// TestRemovalToolsKeepContainers (issue 10, item 1): rm -r, rm -rf, mv to
// another filesystem, find -delete and rsync --remove-source-files all fail
// on a container's directory, and leave it, its snapshots and its saved
// state whole, STOPPED or RUNNING; the control files refuse unlink, chmod,
// chown, utimes and truncation with EPERM. The deliberate rmdir of a
// snapshot and of the container still work.
func TestRemovalToolsKeepContainers(t *testing.T) {
	d := StartDaemon(t, "dakara")
	outside := t.TempDir() // another filesystem: rename(2) into it is EXDEV

	// c1: STOPPED with a stateful and a stateless snapshot and saved state.
	ip1 := d.CreateRunning("c1")
	d.MustSh("echo 'snapshot s1 --stateful' > containers/c1/ctl && mkdir containers/c1/snapshots/s2")
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	// c2: RUNNING with a stateful snapshot.
	ip2 := d.CreateRunning("c2")
	d.MustSh("echo 'snapshot r1 --stateful' > containers/c2/ctl")

	for _, name := range []string{"c1", "c2"} {
		before := d.fingerprint(name)
		if !strings.Contains(before, "manifest images/manifests/snapshots/"+name) {
			t.Fatalf("%s has no snapshot manifests:\n%s", name, before)
		}
		if name == "c1" && !strings.Contains(before, "manifest images/manifests/state/c1") {
			t.Fatalf("c1 has no saved state:\n%s", before)
		}
		tools := []string{
			"rm -r containers/" + name,
			"rm -rf containers/" + name,
			"rm -rf containers/" + name + "/snapshots containers/" + name + "/state",
			"mv containers/" + name + " " + filepath.Join(outside, "mv") + "/",
			"find containers/" + name + " -delete",
			"find containers/" + name + "/snapshots -delete",
			"rsync -a --remove-source-files containers/" + name + " " + filepath.Join(outside, "rsync") + "/",
			"rm containers/" + name + "/ctl containers/" + name + "/config",
			"rmdir containers/" + name + "/snapshots",
		}
		for _, tool := range tools {
			os.MkdirAll(filepath.Join(outside, "mv"), 0o755)
			os.MkdirAll(filepath.Join(outside, "rsync"), 0o755)
			if out, err := d.Sh(tool); err == nil {
				t.Errorf("%s on %s exited 0: %s", tool, name, out)
			}
			if after := d.fingerprint(name); after != before {
				t.Fatalf("%s changed %s:\nbefore:\n%s\nafter:\n%s", tool, name, before, after)
			}
			os.RemoveAll(filepath.Join(outside, "mv"))
			os.RemoveAll(filepath.Join(outside, "rsync"))
		}
	}
	Count(t, ip2) // c2 kept running through all of it

	// Attributes of control files and directories cannot be changed.
	for _, cmd := range []string{
		"chmod 600 containers/c1/status", "chmod 700 containers/c1", "chmod 755 containers/c1/state",
		"chown nobody containers/c1/info", "chown nobody containers/c1/snapshots/s1",
		"touch -c -d 2020-01-01 containers/c1/status", "touch -c -d 2020-01-01 containers/c1",
		"touch -c -d 2020-01-01 containers/c1/state/pstree.img",
		truncatePath("containers/c1/status", 0), truncatePath("containers/c1/state/pstree.img", 0),
		truncatePath("containers/c1/ctl", 0), "truncate -s 5 containers/c1/ctl",
		"rm containers/c1/state/pstree.img",
		"rm containers/c1/snapshots/s1/info", "rm containers/hosts", "rm README",
	} {
		d.ShFails(cmd, "Operation not permitted")
	}
	// `>` opens ctl with O_TRUNC, which must keep working.
	d.ShFails("echo bogus > containers/c1/ctl", "Invalid argument")

	// The saved state is whole: c1 comes back with its processes.
	d.MustSh("echo start > containers/c1/ctl")
	Count(t, ip1)
	d.MustSh("echo stop > containers/c1/ctl")

	// A deliberate rmdir deletes a snapshot, and destroys the container.
	d.MustSh("rmdir containers/c1/snapshots/s2")
	if ls := d.MustSh("ls containers/c1/snapshots"); strings.TrimSpace(ls) != "s1" {
		t.Fatalf("after rmdir s2: %q", ls)
	}
	d.MustSh("rmdir containers/c1")
	if exists(d.Path("containers", "c1")) || exists(filepath.Join(d.LXCPath, "c1")) {
		t.Fatalf("rmdir containers/c1 left it")
	}
	d.MustSh("echo stop > containers/c2/ctl")
}

// truncatePath is a command that calls truncate(2) on a path (coreutils'
// truncate opens the file and calls ftruncate).
func truncatePath(path string, size int) string {
	return fmt.Sprintf(`perl -e 'truncate($ARGV[0], %d) or die "$!\n"' %s`, size, path)
}

// probeUser is a temporary unprivileged user; it is removed at cleanup.
func probeUser(t *testing.T) (uid string) {
	t.Helper()
	name := fmt.Sprintf("ctrfsprobe%d", testLane)
	exec.Command("userdel", name).Run() // left by a killed run
	if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// asUser runs a command in the mount as uid, with no supplementary groups.
func (d *Daemon) asUser(uid, script string) (string, error) {
	return d.Sh(fmt.Sprintf("setpriv --reuid=%s --regid=%s --clear-groups bash -c %q", uid, uid, script))
}

// TestMemoryIsRootsAlone (issue 10, item 2): image files under state/ and
// snapshots/*/state/, ps, config and log are root's: another user gets
// EACCES reading them, while status and info stay readable to all.
func TestMemoryIsRootsAlone(t *testing.T) {
	d := StartDaemon(t, "dakara")
	// The user's commands run in the mount (Sh's working directory), so
	// the 0700 directories of t.TempDir above it do not stop them.
	uid := probeUser(t)

	d.CreateRunning("c1")
	d.MustSh("echo 'snapshot s1 --stateful' > containers/c1/ctl")
	d.MustSh("echo stop-stateful > containers/c1/ctl")

	for _, f := range []string{"status", "info", "error", "snapshots/s1/info"} {
		if _, err := d.asUser(uid, "cat containers/c1/"+f); err != nil {
			t.Errorf("another user cannot read %s: %v", f, err)
		}
	}
	secret := []string{"config", "log", "state/ps", "state/pstree.img", "state/pages-1.img",
		"state/inventory.img", "snapshots/s1/state/ps", "snapshots/s1/state/pages-1.img"}
	for _, f := range secret {
		_, err := d.asUser(uid, "cat containers/c1/"+f+" > /dev/null")
		if err == nil || !strings.Contains(err.Error(), "Permission denied") {
			t.Errorf("another user reading %s: %v; want Permission denied", f, err)
		}
	}
	// Nor around the mount: the LXC path is world-readable, so the config
	// (and CRIU options) ctrfs writes there must be root's alone too.
	d.MustSh("echo 'dump: tcp-established' > containers/c1/criu")
	for _, f := range []string{"config", "ctrfs-criu.conf"} {
		path := filepath.Join(d.LXCPath, "c1", f)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s on disk is %v; want no access for group and others", path, fi.Mode())
		}
	}
	for _, dir := range []string{"state", "snapshots/s1/state"} {
		_, err := d.asUser(uid, "ls containers/c1/"+dir)
		if err == nil || !strings.Contains(err.Error(), "Permission denied") {
			t.Errorf("another user listing %s: %v; want Permission denied", dir, err)
		}
	}
	modes := map[string]os.FileMode{
		"config": 0o600, "log": 0o400, "ctl": 0o644, "status": 0o444, "info": 0o444,
		"state": os.ModeDir | 0o500, "state/pstree.img": 0o400, "state/ps": 0o400,
		"snapshots/s1/state": os.ModeDir | 0o500, "snapshots/s1/state/pages-1.img": 0o400,
	}
	for f, want := range modes {
		fi, err := os.Stat(d.Path("containers", "c1", f))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; fi.Mode() != want || uid != 0 {
			t.Errorf("%s: mode %v uid %d; want %v, root's", f, fi.Mode(), uid, want)
		}
	}
	// root reads all of it.
	d.MustSh("cat containers/c1/config containers/c1/log containers/c1/state/ps containers/c1/state/pages-1.img > /dev/null")
}

// TestConfigWrites (issue 10, item 6): config takes exactly what was
// written: truncation at open, ftruncate and truncate(2) work; a config
// past 1 MiB or a write past it is EFBIG and the daemon lives on; a config
// LXC refuses is EINVAL at close, `error` names the line, the old stays.
func TestConfigWrites(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.MustSh("mkdir containers/c1")
	conf := d.Path("containers", "c1", "config")
	orig, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(orig), "\n")
	if len(lines) < 8 {
		t.Fatalf("the template's config is short:\n%s", orig)
	}
	scratch := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(scratch, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	expect := func(what, want string) {
		t.Helper()
		if got, err := os.ReadFile(conf); err != nil || string(got) != want {
			t.Fatalf("%s: config is\n%q\nwant\n%q (%v)", what, got, want, err)
		}
	}

	// Truncation at open: a shorter config replaces the whole file.
	short := strings.Join(lines[:5], "")
	d.MustSh("cat " + write("short", short) + " > containers/c1/config")
	expect("cat short > config", short)
	d.MustSh("echo '# one line' > containers/c1/config")
	expect("echo > config", "# one line\n")
	full := write("full", string(orig))
	d.MustSh("cat " + full + " > containers/c1/config")
	expect("cat full > config", string(orig))

	// ftruncate(2) of an open descriptor, and truncate(2) of the path.
	cut := len(strings.Join(lines[:6], ""))
	d.MustSh(fmt.Sprintf(`perl -e 'open(F, "+<", $ARGV[0]) or die $!; truncate(F, %d) or die $!; close(F) or die $!' containers/c1/config`, cut)) // ftruncate
	expect("ftruncate", string(orig[:cut]))
	d.MustSh("cat " + full + " > containers/c1/config")
	cut = len(strings.Join(lines[:4], ""))
	d.MustSh(truncatePath("containers/c1/config", cut))
	expect("truncate", string(orig[:cut]))
	d.MustSh("cat " + full + " > containers/c1/config")

	// Past the limit: EFBIG, and the daemon keeps its memory.
	d.ShFails("dd if=/dev/zero of=containers/c1/config bs=1 count=1 seek=1T conv=notrunc status=none", "File too large")
	d.ShFails("truncate -s 2M containers/c1/config", "File too large")
	d.ShFails(truncatePath("containers/c1/config", 2<<20), "File too large")
	d.ShFails(`perl -e 'open(F, "+<", $ARGV[0]) or die $!; truncate(F, 2<<20) or die "$!\n"' containers/c1/config`, "File too large")
	d.ShFails("head -c 1100000 /dev/zero | tr '\\0' '#' | cat > containers/c1/config", "File too large")
	select {
	case err := <-d.exited:
		d.exited <- err
		t.Fatalf("the daemon died: %v\n%s", err, d.Log())
	default:
	}
	expect("after the refused writes", string(orig))

	// A config LXC refuses: EINVAL at close, error says why, the old stays.
	d.ShFails("printf '# fine\\nlxc.no.such.key = 1\\n' | cat > containers/c1/config", "Invalid argument")
	expect("after a refused config", string(orig))
	if e := d.Read("containers/c1/error"); !strings.Contains(e, "line 2") || !strings.Contains(e, "lxc.no.such.key = 1") {
		t.Fatalf("error does not say which line LXC refused: %q", e)
	}

	// The container still starts with its config.
	d.MustSh("echo start > containers/c1/ctl")
	Count(t, d.Info("c1")["ipv4"])
	d.MustSh("echo stop > containers/c1/ctl")
}

// markTime returns a file whose mtime is now, once the kernel's clock for
// file times has passed it too: files written after it are newer.
func markTime(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	marker, probe := filepath.Join(dir, "marker"), filepath.Join(dir, "probe")
	now := time.Now()
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(marker, now, now); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "file times to pass the marker", func() bool {
		os.WriteFile(probe, []byte(time.Now().String()), 0o644)
		fi, err := os.Stat(probe)
		return err == nil && fi.ModTime().After(now)
	})
	return marker
}

// TestRealTimes (issue 13, item 3): a container's directory, status and
// info change with its operations, a snapshot has the time it was taken,
// `events` is now: ls -lt lists the newest first and find -newer works.
func TestRealTimes(t *testing.T) {
	d := StartDaemon(t, "dakara")
	start := time.Now()
	d.MustSh("mkdir containers/c1")
	for _, s := range []string{"a", "b", "c"} {
		d.MustSh("mkdir containers/c1/snapshots/" + s)
	}
	if ls := strings.Fields(d.MustSh("ls -t containers/c1/snapshots")); strings.Join(ls, " ") != "c b a" {
		t.Fatalf("ls -t snapshots: %v; want the newest first", ls)
	}
	marker := markTime(t)

	// After the marker: c1's config is rewritten, c2 is made.
	d.MustSh("echo '# later' >> containers/c1/config")
	d.MustSh("mkdir containers/c2")

	if ls := strings.Fields(d.MustSh("ls -t containers")); strings.Join(ls, " ") != "c2 c1 hosts" {
		t.Fatalf("ls -t containers: %v; want c2 c1 hosts", ls)
	}
	newer := strings.Fields(d.MustSh("find containers -newer " + marker))
	for _, want := range []string{"containers/c1", "containers/c1/status", "containers/c1/info",
		"containers/c1/config", "containers/c1/ctl", "containers/c2", "containers/c2/status",
		"containers/c2/config", "containers/c2/snapshots"} {
		if !contains(newer, want) {
			t.Errorf("find -newer does not list %s: %v", want, newer)
		}
	}
	for _, old := range []string{"containers", "containers/hosts", "containers/c1/snapshots/a",
		"containers/c1/snapshots/c", "containers/c1/snapshots/c/info", "containers/c1/error", "containers/c1/log"} {
		if contains(newer, old) {
			t.Errorf("find -newer lists %s, which did not change: %v", old, newer)
		}
	}
	// Every time is of this run, not 1970.
	out := d.MustSh("find . -printf '%T@ %p\\n'")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var secs float64
		var path string
		fmt.Sscanf(line, "%f %s", &secs, &path)
		if when := time.Unix(int64(secs), 0); when.Before(start.Add(-time.Minute)) && path != "." {
			t.Errorf("%s has time %v", path, when)
		}
	}
	if fi, err := os.Stat(d.Path("events")); err != nil || !fi.ModTime().After(start) {
		t.Errorf("events: %v, %v; want now", fi.ModTime(), err)
	}
}
