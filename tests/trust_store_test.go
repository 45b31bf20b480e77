package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// otherUser is who plants directories in the tests below: nobody.
const otherUser = "65534:65534"

// memoryStagingName is the /dev/shm name a daemon of this store derives
// from its store path: used as it is by earlier daemons, with a random
// suffix by today's.
func (d *Daemon) memoryStagingName() string {
	sum := sha256.Sum256([]byte(d.Store))
	return "ctrfs-staging-" + hex.EncodeToString(sum[:6])
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TestTrustPlantedStaging: a complete dump planted by another user, or
// behind a symlink, at every path where ctrfs stages (or staged) CRIU
// images is never imported as a container's saved state, and the log names
// each such directory; checkpoints and restores go on in directories of
// the daemon's own and never touch the planted ones.
func TestTrustPlantedStaging(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	d.Kill()
	syscall.Unmount(d.Mount, syscall.MNT_DETACH)

	// A real, complete dump of c1, which leaves it STOPPED without
	// saved state: what a daemon would import if it trusted it.
	dump := filepath.Join(t.TempDir(), "dump")
	mustRun(t, "lxc-checkpoint", "-P", d.LXCPath, "-n", "c1", "-s", "-D", dump)

	name := d.memoryStagingName()
	roots := map[string]string{ // root -> the dump planted in it
		filepath.Join("/dev/shm", name):              "dump-c1-1",
		filepath.Join("/dev/shm", name+"-planted"):   "dump-c1-2",
		filepath.Join(d.Store, "staging"):            "dump-c1-3",
		filepath.Join("/dev/shm", name+"-symlinked"): "dump-c1-4",
	}
	var planted []string
	for root, sub := range roots {
		t.Cleanup(func() { os.RemoveAll(root) })
		target := root
		if strings.HasSuffix(root, "-symlinked") {
			// Root's own 0700 directory: only the symlink gives it away.
			target = filepath.Join(t.TempDir(), "elsewhere")
			if err := os.Symlink(target, root); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(target, 0o700); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "cp", "-a", dump, filepath.Join(target, sub))
		if target == root {
			mustRun(t, "chown", "-R", otherUser, root)
		}
		planted = append(planted, filepath.Join(root, sub))
	}
	mtimes := map[string]time.Time{}
	for root := range roots {
		fi, err := os.Stat(root)
		if err != nil {
			t.Fatal(err)
		}
		mtimes[root] = fi.ModTime()
	}

	d.Start()
	if st := d.Info("c1")["stateful"]; st != "no" {
		t.Fatalf("stateful: %s: a planted dump was imported\n%s", st, d.Log())
	}
	for root := range roots {
		if !strings.Contains(d.Log(), "ignoring a staging directory that is not ctrfs's own") ||
			!strings.Contains(d.Log(), root) {
			t.Errorf("the log does not report %s", root)
		}
	}

	// A checkpoint and a streamed restore work around the planted
	// directories, in fresh ones of the daemon's own.
	d.MustSh("echo start > containers/c1/ctl")
	time.Sleep(time.Second)
	before := Count(t, ip)
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	d.MustSh("echo start > containers/c1/ctl")
	countFrom(t, ip, before, "over stop-stateful and start")
	for root, mtime := range mtimes {
		if fi, err := os.Stat(root); err != nil || !fi.ModTime().Equal(mtime) {
			t.Errorf("the daemon used the planted %s (%v)", root, err)
		}
	}
	for _, p := range planted {
		if _, err := os.Stat(filepath.Join(p, "inventory.img")); err != nil {
			t.Errorf("planted %s was touched: %v", p, err)
		}
	}
	d.MustSh("echo stop > containers/c1/ctl")
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	// The daemon's own staging root on /dev/shm goes with it.
	left, _ := filepath.Glob(filepath.Join("/dev/shm", name+"-*"))
	for _, l := range left {
		if _, ok := roots[l]; !ok {
			t.Errorf("staging root %s left behind", l)
		}
	}
	d.Start() // for cleanup through the mount
}

// damagedChunks are the chunk names that appear in the damaged manifests
// kept aside: GC keeps them.
func (d *Daemon) damagedChunks() map[string]bool {
	out := map[string]bool{}
	filepath.Walk(filepath.Join(d.Store, "images", "damaged"), func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(path)
			// Whole names only: the cut may end inside one.
			for _, h := range regexp.MustCompile(`"([0-9a-f]{64}(?:\.b3)?)"`).FindAllSubmatch(b, -1) {
				out[string(h[1])] = true
			}
		}
		return nil
	})
	return out
}

// TestTrustDamagedState: a damaged manifest of saved state never turns
// into a cold boot. start fails with EIO naming it, the container stays
// STOPPED with its (damaged) saved state, across a daemon restart, until
// stop discards it; info and events report it; GC goes on for everything
// else and keeps the chunks it names. The same for a snapshot's manifest
// and restore.
func TestTrustDamagedState(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	manifest := filepath.Join(d.Store, "images", "manifests", "state", "c1.json")
	kept := filepath.Join(d.Store, "images", "damaged", "state", "c1.json")
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}

	events := d.readEvents()
	d.ShFails("echo start > containers/c1/ctl", "Input/output error")
	e := d.Read("containers/c1/error")
	if !strings.Contains(e, manifest+" is damaged") || !strings.Contains(e, kept) {
		t.Fatalf("error: %q", e)
	}
	events.waitFor(t, " c1 damaged-state failed ")
	events.waitFor(t, " c1 start failed ")
	info := d.Info("c1")
	if info["status"] != "STOPPED" || info["stateful"] != "damaged" || info["damaged-manifests"] != kept {
		t.Fatalf("info after start with a damaged manifest: %v", info)
	}
	if !bytes.Equal(readFile(t, kept), data[:len(data)/2]) {
		t.Fatal("the damaged manifest was not kept as it was")
	}

	// GC goes on: a deleted snapshot's chunks are freed, those the
	// damaged manifest names are kept.
	d.MustSh("mkdir containers/c1/snapshots/s0 && rmdir containers/c1/snapshots/s0")
	waitFor(t, "garbage collection", func() bool {
		want := d.liveChunks()
		for h := range d.damagedChunks() {
			want[h] = true
		}
		have := d.chunks()
		for h := range want {
			if !have[h] {
				t.Fatalf("chunk %s of a kept manifest is gone", h)
			}
		}
		return len(have) == len(want)
	})
	if len(d.damagedChunks()) == 0 {
		t.Fatal("the damaged manifest names no chunk: the test proves nothing")
	}

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d.Start()
	events = d.readEvents()
	d.ShFails("echo start > containers/c1/ctl", "Input/output error")
	if st := d.Info("c1")["stateful"]; st != "damaged" {
		t.Fatalf("stateful after a daemon restart: %s", st)
	}

	d.MustSh("echo stop > containers/c1/ctl")
	if info := d.Info("c1"); info["stateful"] != "no" || info["damaged-manifests"] != "" {
		t.Fatalf("info after stop: %v", info)
	}
	if _, err := os.Stat(kept); !os.IsNotExist(err) {
		t.Fatalf("stop left %s: %v", kept, err)
	}

	// A snapshot whose manifest was changed (a digit of its time) is
	// caught by its checksum; restore fails and leaves c1 running.
	d.MustSh("echo start > containers/c1/ctl")
	before := Count(t, ip)
	d.MustSh("echo 'snapshot s1 --stateful' > containers/c1/ctl")
	snap := filepath.Join(d.Store, "images", "manifests", "snapshots", "c1", "s1.json")
	data = readFile(t, snap)
	changed := regexp.MustCompile(`"created":"2`).ReplaceAll(data, []byte(`"created":"1`))
	if bytes.Equal(changed, data) {
		t.Fatal("no created time in the snapshot's manifest")
	}
	if err := os.WriteFile(snap, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	d.ShFails("echo restore s1 > containers/c1/ctl", "Input/output error")
	keptSnap := filepath.Join(d.Store, "images", "damaged", "snapshots", "c1", "s1.json")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, snap+" is damaged (checksum mismatch)") || !strings.Contains(e, keptSnap) {
		t.Fatalf("error: %q", e)
	}
	events.waitFor(t, " c1 damaged-snapshot failed ")
	countFrom(t, ip, before, "over the refused restore of a damaged snapshot")
	if info := d.Info("c1"); info["status"] != "RUNNING" || info["damaged-manifests"] != keptSnap || info["snapshots"] != "1" {
		t.Fatalf("info after restore of a damaged snapshot: %v", info)
	}
	d.MustSh("ls containers/c1/snapshots | grep -x s1")
	d.ShFails("cat containers/c1/snapshots/s1/info", "Input/output error")
	d.MustSh("rmdir containers/c1/snapshots/s1")
	if info := d.Info("c1"); info["damaged-manifests"] != "" || info["snapshots"] != "0" {
		t.Fatalf("info after rmdir: %v", info)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrustStoreFullFreesChunks: when stop-stateful fails because the
// store's disk is full, the chunks it wrote are freed before the command
// returns, so the next checkpoint has the room it had before.
func TestTrustStoreFullFreesChunks(t *testing.T) {
	d := NewDaemon(t, "dakara")
	chunks := filepath.Join(d.Store, "images", "chunks")
	if err := os.MkdirAll(chunks, 0o755); err != nil {
		t.Fatal(err)
	}
	// Root's alone, as the daemon requires of every directory of its store.
	mustRun(t, "mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "ctrfs-test-full", chunks)
	t.Cleanup(func() { syscall.Unmount(chunks, syscall.MNT_DETACH) })
	d.Start()
	statfs := func() (used, free int64) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(chunks, &st); err != nil {
			t.Fatal(err)
		}
		return int64(st.Blocks-st.Bfree) * st.Bsize, int64(st.Bavail) * st.Bsize
	}
	const filler = "filler" // not a chunk name: GC leaves it alone
	stored := func() int {
		n := 0
		for h := range d.chunks() {
			if h != filler {
				n++
			}
		}
		return n
	}

	// How much one checkpoint of c1 takes in the store.
	ip := d.CreateRunning("c1")
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	size, err := strconv.ParseInt(d.Info("c1")["state-stored-bytes"], 10, 64)
	if err != nil || size < 16<<10 {
		t.Fatalf("state-stored-bytes %d (%v)", size, err)
	}
	d.MustSh("echo start > containers/c1/ctl")
	Count(t, ip)
	waitFor(t, "the restored state's chunks to be freed", func() bool { return stored() == 0 })

	// Room for half of the next one.
	_, free := statfs()
	mustRun(t, "fallocate", "-l", strconv.FormatInt(free-size/2, 10), filepath.Join(chunks, filler))
	before, _ := statfs()
	d.ShFails("echo stop-stateful > containers/c1/ctl", "Input/output error")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, "no space left on device") {
		t.Fatalf("error: %q", e)
	}
	if n := stored(); n != 0 {
		t.Errorf("%d chunks of the failed checkpoint left in the store", n)
	}
	if after, _ := statfs(); after != before {
		t.Errorf("the store uses %d bytes after the failed checkpoint, %d before", after, before)
	}
	d.WantStatus("containers/c1", "RUNNING", "after the failed checkpoint")
	d.MustSh("echo stop > containers/c1/ctl")
}
