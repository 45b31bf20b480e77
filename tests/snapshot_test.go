package tests

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ctrfs/internal/tree"
)

// snapshotInfo parses containers/NAME/snapshots/SNAP/info.
func (d *Daemon) snapshotInfo(name, snap string) map[string]string {
	d.t.Helper()
	return tree.ParseKV(d.Read("containers", name, "snapshots", snap, "info"))
}

func (d *Daemon) snapshotStored(name, snap string) int64 {
	d.t.Helper()
	n, err := strconv.ParseInt(d.snapshotInfo(name, snap)["stored"], 10, 64)
	if err != nil {
		d.t.Fatalf("snapshot %s: stored: %v", snap, err)
	}
	return n
}

// TestSnapshotStateless: mkdir and `snapshot NAME` take a snapshot of rootfs
// and config; restore rolls both back and brings a running container back
// running, a stopped one stopped; names and errors behave as docs/ctrfs.5.md says.
func TestSnapshotStateless(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")

	d.MustSh("mkdir containers/c1/snapshots/first")
	info := d.snapshotInfo("c1", "first")
	if info["kind"] != "stateless" {
		t.Errorf("kind: %q", info["kind"])
	}
	taken, err := time.Parse(time.RFC3339, info["taken"])
	if err != nil || !strings.HasSuffix(info["taken"], "Z") || time.Since(taken) > time.Minute {
		t.Errorf("taken: %q (%v)", info["taken"], err)
	}
	if size, _ := strconv.ParseInt(info["size"], 10, 64); size < 100<<10 {
		t.Errorf("size %q: too small for a rootfs", info["size"])
	}
	if d.snapshotStored("c1", "first") <= 0 {
		t.Errorf("stored: %q", info["stored"])
	}
	if ls := d.MustSh("ls containers/c1/snapshots/first"); strings.TrimSpace(ls) != "info" {
		t.Errorf("a stateless snapshot lists %q", ls)
	}
	if got := d.Info("c1")["snapshots"]; got != "1" {
		t.Errorf("info snapshots: %q", got)
	}

	// Files and config written after the snapshot are gone after restore.
	if err := os.WriteFile(d.rootfs("c1", "root", "after-first"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.MustSh("echo 'snapshot second' > containers/c1/ctl")
	if !exists(d.rootfs("c1", "root", "after-first")) {
		t.Fatal("taking a snapshot changed the rootfs")
	}
	d.MustSh("echo 'restore first' > containers/c1/ctl")
	if exists(d.rootfs("c1", "root", "after-first")) {
		t.Error("a file written after the snapshot survived its restore")
	}
	d.WantStatus("containers/c1", "RUNNING", "a running container after restoring a stateless snapshot")
	Count(t, d.Info("c1")["ipv4"])

	d.MustSh("echo stop > containers/c1/ctl")
	d.MustSh("echo 'lxc.environment = SNAPSHOT_TEST=1' >> containers/c1/config")
	d.MustSh("echo 'restore second' > containers/c1/ctl")
	d.WantStatus("containers/c1", "STOPPED", "a stopped container after restoring a stateless snapshot")
	if !exists(d.rootfs("c1", "root", "after-first")) {
		t.Error("restore of the second snapshot lacks the file it was taken with")
	}
	if strings.Contains(d.Read("containers/c1/config"), "SNAPSHOT_TEST") {
		t.Error("the config was not rolled back")
	}

	// Errors.
	d.ShFails("mkdir containers/c1/snapshots/first", "File exists")
	d.ShFails("echo 'snapshot second' > containers/c1/ctl", "File exists")
	d.ShFails("mkdir containers/c1/snapshots/.hidden", "Invalid argument")
	d.ShFails("echo 'snapshot a/b' > containers/c1/ctl", "Invalid argument")
	d.ShFails("echo 'snapshot ..' > containers/c1/ctl", "Invalid argument")
	d.ShFails("echo 'restore nothere' > containers/c1/ctl", "No such file or directory")
	d.ShFails("rmdir containers/c1/snapshots/nothere", "No such file or directory")
	d.ShFails("echo 'snapshot s --stateful' > containers/c1/ctl", "Device or resource busy")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, "STOPPED") {
		t.Errorf("error of a stateful snapshot of a stopped container: %q", e)
	}
	d.ShFails("ls containers/c1/snapshots/nothere", "No such file or directory")

	d.MustSh("rmdir containers/c1/snapshots/first")
	if ls := strings.Fields(d.MustSh("ls containers/c1/snapshots")); len(ls) != 1 || ls[0] != "second" {
		t.Errorf("snapshots after rmdir: %v", ls)
	}
	d.MustSh("rmdir containers/c1/snapshots/second")
	d.MustSh("rmdir containers/c1")
}

// TestSnapshotStateful: a stateful snapshot leaves the container running;
// its state/ shows CRIU's files; restoring it brings the counter back to
// its value at snapshot time; snapshots of an idle container share chunks.
func TestSnapshotStateful(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	time.Sleep(time.Second)

	d.MustSh("echo 'snapshot first --stateful' > containers/c1/ctl")
	atSnapshot := Count(t, ip)
	d.WantStatus("containers/c1", "RUNNING", "after a stateful snapshot")
	info := d.snapshotInfo("c1", "first")
	if info["kind"] != "stateful" {
		t.Errorf("kind: %q", info["kind"])
	}
	ls := strings.Fields(d.MustSh("ls containers/c1/snapshots/first/state"))
	for _, want := range []string{"inventory.img", "pstree.img", "ps"} {
		if !contains(ls, want) {
			t.Errorf("state/ lacks %s: %v", want, ls)
		}
	}
	if !anyPrefix(ls, "pages-") || contains(ls, "ctrfs-rootfs.tar") || contains(ls, "ctrfs-rootfs-changes.tar") {
		t.Errorf("state/ lists %v", ls)
	}
	images := criuFiles(d.manifest("snapshots/c1/first"))
	if len(images.Files) != len(ls)-1 {
		t.Errorf("state/ lists %d files, the snapshot holds %d CRIU files", len(ls)-1, len(images.Files))
	}
	d.checkImageFiles("containers/c1/snapshots/first/state", images)
	if ps := d.Read("containers/c1/snapshots/first/state/ps"); !strings.Contains(ps, "counter") {
		t.Errorf("state/ps does not list the counter:\n%s", ps)
	}

	// Deduplication: more snapshots of the idle container add little.
	first := d.snapshotStored("c1", "first")
	total := first
	for i := 2; i <= 10; i++ {
		d.MustSh(fmt.Sprintf("echo 'snapshot s%d --stateful' > containers/c1/ctl", i))
		stored := d.snapshotStored("c1", fmt.Sprintf("s%d", i))
		if i == 2 && stored*4 > first {
			t.Errorf("the second snapshot of an idle container stored %d bytes, the first %d", stored, first)
		}
		total += stored
	}
	t.Logf("stored bytes: first snapshot %d, ten snapshots %d (%.2fx)", first, total, float64(total)/float64(first))
	if total > 2*first {
		t.Errorf("ten stateful snapshots stored %d bytes, more than twice the first's %d", total, first)
	}
	if got := d.Info("c1")["snapshots"]; got != "10" {
		t.Errorf("info snapshots: %q", got)
	}

	// Restore: the counter goes back to where it was and goes on.
	beforeRestore := CountsPast(t, ip, atSnapshot+5, "the counter moves on past the snapshot")
	d.MustSh("echo 'restore first' > containers/c1/ctl")
	d.WantStatus("containers/c1", "RUNNING", "after restoring a stateful snapshot")
	restored := Count(t, ip)
	if restored >= beforeRestore || restored < atSnapshot-10 {
		t.Fatalf("count %d at the snapshot, %d before restore, %d after: not the snapshot's processes",
			atSnapshot, beforeRestore, restored)
	}
	CountsPast(t, ip, restored, "the restored counter counts")
	if !strings.Contains(d.Read("containers/c1/log"), "restore.log") {
		t.Errorf("log does not hold CRIU's restore log")
	}
	// The replaced rootfs went after the restore, out of the downtime,
	// but it went.
	if _, ok := d.Info("c1")["remove-old-rootfs-seconds"]; !ok {
		t.Errorf("info has no remove-old-rootfs-seconds after restore NAME:\n%s", d.Read("containers/c1/info"))
	}
	if left, _ := filepath.Glob(d.rootfs("c1") + ".ctrfs-*"); len(left) > 0 {
		t.Errorf("left beside the rootfs after restore NAME: %v", left)
	}

	// A stateful snapshot restores into a stopped container too.
	d.MustSh("echo stop > containers/c1/ctl")
	d.MustSh("echo 'restore s2' > containers/c1/ctl")
	d.WantStatus("containers/c1", "RUNNING", "after restoring a stateful snapshot into a stopped container")
	Count(t, ip)
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestSnapshotDeleteAnyOrder: deleting snapshots frees their chunks and
// never breaks the others: after each deletion every survivor restores.
func TestSnapshotDeleteAnyOrder(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")

	// s1 and s3 stateless, s2 and s4 stateful; marker-N is written before sN.
	counts := map[string]int{}
	for i := 1; i <= 4; i++ {
		snap := fmt.Sprintf("s%d", i)
		if err := os.WriteFile(d.rootfs("c1", "root", "marker-"+snap), []byte(snap), 0o644); err != nil {
			t.Fatal(err)
		}
		flag := ""
		if i%2 == 0 {
			flag = " --stateful"
			time.Sleep(time.Second) // let the counter move on between snapshots
		}
		d.MustSh("echo 'snapshot " + snap + flag + "' > containers/c1/ctl")
		counts[snap] = Count(t, ip)
	}
	d.MustSh("echo stop-stateful > containers/c1/ctl") // saved state shares chunks too

	survivors := []string{"s1", "s2", "s3", "s4"}
	for _, victim := range []string{"s3", "s2", "s4"} {
		d.MustSh("rmdir containers/c1/snapshots/" + victim)
		survivors = remove(survivors, victim)
		d.waitForGC()
		for _, snap := range survivors {
			d.checkRestore("c1", ip, snap, counts[snap])
		}
	}
	d.MustSh("rmdir containers/c1/snapshots/s1 && echo stop > containers/c1/ctl")
	d.waitForGC()
	if left := d.chunks(); len(left) != 0 {
		t.Errorf("%d chunks left in the store after every snapshot and state is gone", len(left))
	}
}

// checkRestore restores snap and checks that the rootfs holds exactly the
// markers written before it and, for a stateful snapshot, that the counter
// is back near its count at the snapshot.
func (d *Daemon) checkRestore(name, ip, snap string, count int) {
	d.t.Helper()
	d.MustSh(fmt.Sprintf("echo 'restore %s' > containers/%s/ctl", snap, name))
	n, _ := strconv.Atoi(strings.TrimPrefix(snap, "s"))
	for i := 1; i <= 4; i++ {
		if has := exists(d.rootfs(name, "root", fmt.Sprintf("marker-s%d", i))); has != (i <= n) {
			d.t.Errorf("after restore %s: marker-s%d present = %v", snap, i, has)
		}
	}
	if d.snapshotInfo(name, snap)["kind"] == "stateful" {
		got := Count(d.t, ip)
		if got < count-10 || got > count+10 {
			d.t.Errorf("after restore %s the count is %d; it was %d at the snapshot", snap, got, count)
		}
	}
}

func remove(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// chunks lists the chunk files of the store.
func (d *Daemon) chunks() map[string]bool {
	d.t.Helper()
	out := map[string]bool{}
	filepath.WalkDir(filepath.Join(d.Store, "images", "chunks"), func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			out[e.Name()] = true
		}
		return nil
	})
	return out
}

// liveChunks are the chunks that the saved manifests name.
func (d *Daemon) liveChunks() map[string]bool {
	d.t.Helper()
	out := map[string]bool{}
	root := filepath.Join(d.Store, "images", "manifests")
	filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".json") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			d.t.Fatal(err)
		}
		var m storedManifest
		if err := json.Unmarshal(b, &m); err != nil {
			d.t.Fatalf("%s: %v", path, err)
		}
		for _, f := range m.Files {
			for _, c := range f.Chunks {
				out[c.Hash] = true
			}
		}
		return nil
	})
	return out
}

// waitForGC waits until the store holds exactly the chunks its manifests
// name: the daemon collects garbage in the background.
func (d *Daemon) waitForGC() {
	d.t.Helper()
	var extra []string // files the store holds beyond the live chunks
	defer func() {
		if d.t.Failed() && len(extra) > 0 {
			d.t.Logf("not collected: %v", extra)
		}
	}()
	waitFor(d.t, "garbage collection", func() bool {
		have, live := d.chunks(), d.liveChunks()
		extra = extra[:0]
		for h := range have {
			if !live[h] {
				extra = append(extra, h)
			}
		}
		for h := range live {
			if !have[h] {
				d.t.Fatalf("chunk %s of a saved manifest is missing", h)
			}
		}
		return len(extra) == 0
	})
}

// TestSnapshotDaemonKilled: a daemon killed in the middle of a stateful
// snapshot leaves the store consistent: on restart the snapshot is either
// whole or absent, unused chunks are freed, the container runs, and every
// snapshot restores.
func TestSnapshotDaemonKilled(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	d.MustSh("echo 'snapshot base --stateful' > containers/c1/ctl")
	baseCount := Count(t, ip)

	// Kill at different points of the snapshot: during CRIU's dump, and
	// later, during the import into the store.
	for i, delay := range []time.Duration{50 * time.Millisecond, 250 * time.Millisecond, 400 * time.Millisecond} {
		snap := fmt.Sprintf("k%d", i)
		write := d.Background("echo 'snapshot " + snap + " --stateful' > containers/c1/ctl")
		time.Sleep(delay)
		d.Kill()
		write.Wait()
		// What a killed import leaves: a chunk no manifest names, and
		// one killed while being written, under a temporary name. The
		// kill lands in a chunk write only now and then, so both are
		// made here; the restarted daemon must free them at once.
		orphan := strings.Repeat("ab", 32)
		os.MkdirAll(filepath.Join(d.Store, "images", "chunks", "ab"), 0o755)
		for _, f := range []string{orphan, ".tmp-1234567890"} {
			if err := os.WriteFile(filepath.Join(d.Store, "images", "chunks", "ab", f), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d.waitForHelpers()
		d.Start()

		d.waitForGC()
		if d.chunks()[orphan] {
			t.Errorf("an orphan chunk survived the restart")
		}
		d.WantStatus("containers/c1", "RUNNING", fmt.Sprintf("kill after %v, after the restart", delay))
		snaps := strings.Fields(d.MustSh("ls containers/c1/snapshots"))
		t.Logf("kill after %v: snapshots %v", delay, snaps)
		if contains(snaps, snap) {
			d.checkImageFiles("containers/c1/snapshots/"+snap+"/state", criuFiles(d.manifest("snapshots/c1/"+snap)))
		} else {
			// The name is free again.
			d.MustSh("echo 'snapshot " + snap + " --stateful' > containers/c1/ctl")
		}
		Count(t, ip)
	}
	d.MustSh("echo 'restore base' > containers/c1/ctl")
	if got := Count(t, ip); got < baseCount-10 || got > baseCount+10 {
		t.Errorf("after restore base the count is %d; it was %d at the snapshot", got, baseCount)
	}
	d.MustSh("echo 'restore k2' > containers/c1/ctl")
	Count(t, ip)
	d.MustSh("echo stop > containers/c1/ctl")
}

func criuFiles(m storedManifest) storedManifest {
	out := m
	out.Files = nil
	for _, f := range m.Files {
		if !strings.HasPrefix(f.Name, "ctrfs-") {
			out.Files = append(out.Files, f)
		}
	}
	return out
}

// TestSnapshotCorruptAndRename: a damaged snapshot fails to restore with
// EIO and leaves the container as it was; snapshots follow a renamed
// container and restore into it under its new name.
func TestSnapshotCorruptAndRename(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")
	d.MustSh("mkdir containers/c1/snapshots/good")
	if err := os.WriteFile(d.rootfs("c1", "root", "marker"), []byte("marker"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.MustSh("mkdir containers/c1/snapshots/bad")

	shared := map[string]bool{}
	for _, f := range d.manifest("snapshots/c1/good").Files {
		for _, c := range f.Chunks {
			shared[c.Hash] = true
		}
	}
	var victim string
	for _, f := range d.manifest("snapshots/c1/bad").Files {
		for _, c := range f.Chunks {
			if !shared[c.Hash] {
				victim = c.Hash
			}
		}
	}
	if victim == "" {
		t.Fatal("the second snapshot has no chunk of its own")
	}
	chunk := filepath.Join(d.Store, "images", "chunks", victim[:2], victim)
	if err := os.WriteFile(chunk, []byte("not zstd at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(d.rootfs("c1", "root", "marker")); err != nil {
		t.Fatal(err)
	}
	d.ShFails("echo 'restore bad' > containers/c1/ctl", "Input/output error")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, "damaged") || !strings.Contains(e, "bad") {
		t.Errorf("error of a damaged snapshot: %q", e)
	}
	d.WantStatus("containers/c1", "RUNNING", "after a failed restore")
	if exists(d.rootfs("c1", "root", "marker")) {
		t.Error("a failed restore changed the rootfs")
	}

	d.MustSh("echo stop > containers/c1/ctl && mv containers/c1 containers/c2")
	if ls := strings.Fields(d.MustSh("ls containers/c2/snapshots")); strings.Join(ls, " ") != "bad good" {
		t.Fatalf("snapshots after rename: %v", ls)
	}
	d.MustSh("echo 'restore good' > containers/c2/ctl")
	config := d.Read("containers/c2/config")
	if !strings.Contains(config, "lxc.uts.name = c2") || !strings.Contains(config, "/c2/rootfs") {
		t.Errorf("the restored config does not name c2:\n%s", config)
	}
	d.MustSh("echo start > containers/c2/ctl")
	Count(t, d.Info("c2")["ipv4"])
	d.MustSh("echo stop > containers/c2/ctl")
}
