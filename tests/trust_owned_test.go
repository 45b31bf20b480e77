package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// asOther runs a shell script as otherUser, in dir, with stdin as its
// input: its working directory is reached while root's 0700 directories
// of t.TempDir above it are not.
func asOther(t *testing.T, dir, script, stdin string) {
	t.Helper()
	uid, _, _ := strings.Cut(otherUser, ":")
	cmd := exec.Command("setpriv", "--reuid="+uid, "--regid="+uid, "--clear-groups", "sh", "-ec", script)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as %s in %s: %q: %v\n%s", otherUser, dir, script, err, out)
	}
}

// openedFor lets another user write dir (mode 1777, as a plain tmpfs is)
// while fn runs, and makes it root's alone again after.
func openedFor(t *testing.T, dir string, fn func()) {
	t.Helper()
	if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	fn()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestTrustUnsafeDirsRefused (issue 18, item 1): the daemon refuses to
// start on a store, LXC path or template cache that another user can
// write or that root does not own, or that sits in a directory of
// another user's, and says why and what to do. With the store on a plain
// tmpfs, a rename journal that another user planted there is not
// "finished".
func TestTrustUnsafeDirsRefused(t *testing.T) {
	// The case: a container f1, then the store on a tmpfs.
	d := StartDaemon(t, "dakara")
	d.MustSh("mkdir containers/f1")
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "mount", "-t", "tmpfs", "-o", "size=16m", "ctrfs-test-store", d.Store)
	t.Cleanup(func() { syscall.Unmount(d.Store, syscall.MNT_DETACH) })
	asOther(t, d.Store, `mkdir renames; echo '{"old":"f1","new":"pwned"}' > renames/f1.json`, "")
	log := d.startFails()
	for _, want := range []string{"the store " + d.Store + " is not safe", "has mode 1777: group or others can write it",
		"chmod go-w", "mount it with -o mode=0755"} {
		if !strings.Contains(log, want) {
			t.Errorf("the daemon refusing a store on a tmpfs does not say %q:\n%s", want, log)
		}
	}
	if !exists(filepath.Join(d.LXCPath, "f1")) || exists(filepath.Join(d.LXCPath, "pwned")) {
		t.Errorf("the planted rename journal was followed")
	}

	base := t.TempDir()
	dir := func(name string, mode os.FileMode, owner string) string {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "chown", owner, p)
		return p
	}
	theirs := dir("theirs", 0o755, otherUser)
	for _, c := range []struct {
		what, flag, dir, want string
	}{
		{"an LXC path others can write", "--lxcpath", dir("lxc-open", 0o777, "0:0"), "has mode 0777: group or others can write it"},
		{"an LXC path of another user", "--lxcpath", dir("lxc-theirs", 0o755, otherUser), "belongs to uid 65534"},
		{"a group-writable template cache", "--template-cache", dir("cache-group", 0o775, "0:0"), "has mode 0775"},
		{"a template cache of another user", "--template-cache", dir("cache-theirs", 0o755, otherUser), "belongs to uid 65534"},
		{"a store in a directory of another user", "--store", dir("theirs/store", 0o755, "0:0"), theirs + " belongs to uid 65534, not to root"},
	} {
		d := NewDaemon(t, "dakara", c.flag, c.dir)
		log := d.startFails()
		if !strings.Contains(log, c.dir+" is not safe") || !strings.Contains(log, c.want) || !strings.Contains(log, "chmod go-w") {
			t.Errorf("%s: the daemon does not refuse it saying %q and how to fix it:\n%s", c.what, c.want, log)
		}
	}
}

// TestTrustPlantedStore (issue 18, item 1): what another user planted in
// the store while it was open to them (a rename journal, a migration
// marker, manifests: each in a directory of theirs or as a file of
// theirs) is never acted on: no container is renamed or removed, and a
// planted manifest is damaged (kept aside, named in info and the error),
// never saved state or a snapshot. The daemon starts, names each in its
// log, and leaves the planted files where they are.
func TestTrustPlantedStore(t *testing.T) {
	d := newPeer(t, "dakara", loopback(2), newSecret(t), "")
	d.Start()
	for _, n := range []string{"f1", "f2", "f3", "f4"} {
		d.MustSh("mkdir containers/" + n)
	}
	d.MustSh("mkdir containers/f4/snapshots/s0")
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	manifests := filepath.Join(d.Store, "images", "manifests")
	// A sound manifest of another container's, for another user to copy.
	sound := string(readFile(t, filepath.Join(manifests, "snapshots", "f4", "s0.json")))

	openedFor(t, d.Store, func() {
		asOther(t, d.Store, `mkdir renames; echo '{"old":"f1","new":"pwned"}' > renames/f1.json
mkdir -p cluster/incoming; echo '{"source":"abydos","token":"x"}' > cluster/incoming/f2.json`, "")
	})
	openedFor(t, manifests, func() {
		asOther(t, manifests, "mkdir state; cat > state/f3.json", sound)
	})
	openedFor(t, filepath.Join(manifests, "snapshots", "f4"), func() {
		asOther(t, filepath.Join(manifests, "snapshots", "f4"), "cat > s9.json", sound)
	})
	planted := []string{filepath.Join(d.Store, "renames", "f1.json"), filepath.Join(d.Store, "cluster", "incoming", "f2.json"),
		filepath.Join(manifests, "state", "f3.json"), filepath.Join(manifests, "snapshots", "f4", "s9.json")}

	d.Start()
	log := d.Log()
	for _, want := range []string{
		"ignoring rename journals in a directory that is not ctrfs's own",
		filepath.Join(d.Store, "renames") + " belongs to uid 65534",
		"cluster: ignoring migration journals in a directory that is not ctrfs's own",
		filepath.Join(d.Store, "cluster") + " belongs to uid 65534",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	for _, n := range []string{"f1", "f2", "f3", "f4"} {
		if !exists(filepath.Join(d.LXCPath, n)) {
			t.Errorf("%s is gone", n)
		}
	}
	if exists(filepath.Join(d.LXCPath, "pwned")) {
		t.Errorf("the planted rename journal was followed")
	}
	for _, p := range planted[:2] {
		if !exists(p) {
			t.Errorf("the planted %s was removed", p)
		}
	}

	// The planted manifests: damaged, kept aside, never state or a snapshot.
	kept := filepath.Join(d.Store, "images", "damaged", "state", "f3.json")
	if info := d.Info("f3"); info["stateful"] != "damaged" || info["damaged-manifests"] != kept {
		t.Errorf("f3 with a planted manifest of saved state: stateful %q, damaged-manifests %q",
			info["stateful"], info["damaged-manifests"])
	}
	d.ShFails("echo start > containers/f3/ctl", "Input/output error")
	if e := d.Read("containers/f3/error"); !strings.Contains(e, planted[2]+" is damaged") || !strings.Contains(e, kept) {
		t.Errorf("f3's error: %q", e)
	}
	// Why, in the log: the first to read it (GC at start, or info) moved
	// it aside, and logs it once it has (a reader may see it aside first).
	if !d.logSays("not ctrfs's own: " + filepath.Join(manifests, "state") + " belongs to uid 65534") {
		t.Errorf("the log does not say why f3's saved state is damaged")
	}
	d.WantStatus("containers/f3", "STOPPED", "with its saved state damaged")
	d.ShFails("cat containers/f4/snapshots/s9/info", "Input/output error")
	keptSnap := filepath.Join(d.Store, "images", "damaged", "snapshots", "f4", "s9.json")
	if info := d.Info("f4"); info["damaged-manifests"] != keptSnap {
		t.Errorf("f4 with a planted snapshot: damaged-manifests %q", info["damaged-manifests"])
	}
	if !d.logSays("not ctrfs's own: " + planted[3] + " belongs to uid 65534") {
		t.Errorf("the log does not say why f4's snapshot s9 is damaged")
	}
	d.MustSh("cat containers/f4/snapshots/s0/info")

	// A rename needs a journal, which is not written where another user
	// could change it: it fails, saying why, and f1 keeps its name.
	if _, err := d.Sh("mv containers/f1 containers/f5"); err == nil {
		t.Errorf("a rename with the journal directory of another user succeeded")
	}
	if e := d.Read("containers/f1/error"); !strings.Contains(e, filepath.Join(d.Store, "renames")+" belongs to uid 65534") {
		t.Errorf("f1's error after a refused rename: %q", e)
	}
	if !exists(filepath.Join(d.LXCPath, "f1")) || exists(filepath.Join(d.LXCPath, "f5")) {
		t.Errorf("the refused rename moved f1")
	}
}

// TestTrustManifestWithoutChecksum (issue 18, item 5): a manifest of
// saved state whose checksum was deleted is damaged: start fails with
// EIO saying so, and the container stays STOPPED with its saved state
// kept aside.
func TestTrustManifestWithoutChecksum(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	manifest := filepath.Join(d.Store, "images", "manifests", "state", "c1.json")
	var m map[string]any
	if err := json.Unmarshal(readFile(t, manifest), &m); err != nil {
		t.Fatal(err)
	}
	if m["checksum"] == nil {
		t.Fatal("the manifest has no checksum to delete")
	}
	delete(m, "checksum")
	data, _ := json.Marshal(m)
	if err := os.WriteFile(manifest, data, 0o600); err != nil {
		t.Fatal(err)
	}
	d.ShFails("echo start > containers/c1/ctl", "Input/output error")
	kept := filepath.Join(d.Store, "images", "damaged", "state", "c1.json")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, manifest+" is damaged") || !strings.Contains(e, kept) {
		t.Fatalf("error: %q", e)
	}
	// Why, in the log: start, or a GC pass before it, moved it aside.
	if !strings.Contains(d.Log(), `reason="no checksum"`) {
		t.Errorf("the log does not say that the manifest has no checksum")
	}
	if info := d.Info("c1"); info["status"] != "STOPPED" || info["stateful"] != "damaged" || info["damaged-manifests"] != kept {
		t.Fatalf("info: %v", info)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}
