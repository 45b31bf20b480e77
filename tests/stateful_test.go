package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

// storedManifest is the part of the store's manifest format the tests
// check against: the sizes of the files as CRIU wrote them and the hash
// of each of their chunks (see chunkName), taken when ctrfs read them out of CRIU's
// directory.
type storedManifest struct {
	Files []struct {
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		Chunks []struct {
			Hash string `json:"hash"`
			Size int64  `json:"size"`
		} `json:"chunks"`
	} `json:"files"`
}

func (d *Daemon) manifest(key string) storedManifest {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.Store, "images", "manifests", key+".json"))
	if err != nil {
		d.t.Fatalf("manifest %s: %v", key, err)
	}
	var m storedManifest
	if err := json.Unmarshal(b, &m); err != nil {
		d.t.Fatal(err)
	}
	return m
}

// TestStatefulStopStart: the counter's in-memory count survives
// stop-stateful / start, across a restart of the daemon; state/ shows
// CRIU's files byte for byte, and its process tree.
func TestStatefulStopStart(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	time.Sleep(2 * time.Second)
	before := Count(t, ip)

	d.MustSh("echo stop-stateful > containers/c1/ctl")
	d.WantStatus("containers/c1", "STOPPED", "after stop-stateful")
	if e := d.Read("containers/c1/error"); e != "" {
		t.Fatalf("error after a successful stop-stateful: %q", e)
	}
	info := d.Info("c1")
	if info["stateful"] != "yes" || info["last-op"] != "stop-stateful" || info["criu-frozen-seconds"] == "" {
		t.Fatalf("info after stop-stateful:\n%v", info)
	}
	if !strings.Contains(d.Read("containers/c1/log"), "dump.log") {
		t.Errorf("log does not hold CRIU's dump log")
	}

	// The listing is exactly what CRIU wrote, plus ps.
	ls := strings.Fields(d.MustSh("ls containers/c1/state"))
	for _, want := range []string{"inventory.img", "pstree.img", "ps", "dump.log"} {
		if !contains(ls, want) {
			t.Errorf("state/ lacks %s: %v", want, ls)
		}
	}
	if !anyPrefix(ls, "pages-") || !anyPrefix(ls, "core-") {
		t.Errorf("state/ lacks pages-*.img or core-*.img: %v", ls)
	}
	m := d.manifest("state/c1")
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	names = append(names, "ps")
	sort.Strings(names)
	if strings.Join(names, " ") != strings.Join(ls, " ") {
		t.Errorf("state/ lists %v, CRIU wrote %v", ls, names)
	}

	pages := d.checkImageFiles("containers/c1/state", m)
	whole, err := os.ReadFile(d.Path("containers/c1/state", pages))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{0, 1, 4095, len(whole) / 3, len(whole) - 7} {
		n := min(10000, len(whole)-off)
		out := d.MustSh(fmt.Sprintf("dd if=containers/c1/state/%s iflag=skip_bytes,count_bytes skip=%d count=%d status=none | sha256sum", pages, off, n))
		sum := sha256.Sum256(whole[off : off+n])
		if !strings.HasPrefix(out, hex.EncodeToString(sum[:])) {
			t.Errorf("%s: read of %d bytes at %d differs from the whole file", pages, n, off)
		}
	}
	if ps := d.Read("containers/c1/state/ps"); !strings.Contains(ps, "counter") || !strings.HasPrefix(ps, "PID") {
		t.Errorf("state/ps does not list the counter:\n%s", ps)
	}
	if err := os.WriteFile(d.Path("containers/c1/state/inventory.img"), []byte("x"), 0); err == nil {
		t.Errorf("state/ is writable")
	}

	// Saved state is on disk: a new daemon finds it.
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d.Start()
	if got := d.Info("c1")["stateful"]; got != "yes" {
		t.Fatalf("after a daemon restart stateful = %q", got)
	}

	d.MustSh("echo start > containers/c1/ctl")
	d.WantStatus("containers/c1", "RUNNING", "after start")
	after := Count(t, ip)
	if after < before {
		t.Fatalf("count went from %d to %d: the processes were not restored", before, after)
	}
	info = d.Info("c1")
	if info["stateful"] != "no" || info["criu-restore-time-seconds"] == "" {
		t.Errorf("info after restore:\n%v", info)
	}
	if _, err := os.Stat(d.Path("containers/c1/state")); !os.IsNotExist(err) {
		t.Errorf("state/ after restore: %v", err)
	}
	if !strings.Contains(d.Read("containers/c1/log"), "restore.log") {
		t.Errorf("log does not hold CRIU's restore log")
	}
	CountsPast(t, ip, after, "the restored counter counts")
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestStatefulCorruptImage: a damaged chunk makes start fail with EIO and a
// message naming the file; the state stays for inspection; stop drops it
// and a cold start works.
func TestStatefulCorruptImage(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")
	d.MustSh("echo stop-stateful > containers/c1/ctl")

	m := d.manifest("state/c1")
	var victim string
	var hash string
	for _, f := range m.Files {
		if strings.HasPrefix(f.Name, "pages-") && len(f.Chunks) > 0 {
			victim, hash = f.Name, f.Chunks[len(f.Chunks)/2].Hash
			break
		}
	}
	if victim == "" {
		t.Fatal("no pages image with chunks in the manifest")
	}
	chunk := filepath.Join(d.Store, "images", "chunks", hash[:2], hash)
	b, err := os.ReadFile(chunk)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+8 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(chunk, b, 0o644); err != nil {
		t.Fatal(err)
	}

	d.ShFails("echo start > containers/c1/ctl", "Input/output error")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, victim) {
		t.Errorf("error does not name %s: %q", victim, e)
	}
	d.WantStatus("containers/c1", "STOPPED", "after a failed restore")
	if d.Info("c1")["stateful"] != "yes" {
		t.Fatal("the saved state was dropped by a failed restore")
	}
	d.ShFails("cat containers/c1/state/"+victim+" > /dev/null", "Input/output error")
	// A second try fails the same way: nothing was consumed.
	d.ShFails("echo start > containers/c1/ctl", "Input/output error")

	d.MustSh("echo stop > containers/c1/ctl")
	if d.Info("c1")["stateful"] != "no" {
		t.Fatal("stop did not drop the saved state")
	}
	d.MustSh("echo start > containers/c1/ctl")
	if n := Count(t, d.Info("c1")["ipv4"]); n > 20 {
		t.Errorf("a cold start after dropping the state counts from %d", n)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestStatefulDumpFailure: when CRIU cannot dump (here a process of the
// container is already ptraced, so CRIU cannot seize it), the write fails
// with EIO, the container keeps running, and log holds CRIU's dump log.
func TestStatefulDumpFailure(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	d.failCheckpoint("c1")

	d.WantStatus("containers/c1", "RUNNING", "after a failed dump")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, "checkpoint of c1 failed") {
		t.Errorf("error after a failed dump: %q", e)
	}
	if log := d.Read("containers/c1/log"); !strings.Contains(log, "dump.log") || !strings.Contains(log, "Error") {
		t.Errorf("log lacks CRIU's dump log:\n%s", log)
	}
	if d.Info("c1")["stateful"] != "no" {
		t.Error("a failed dump left saved state")
	}
	before := Count(t, ip)
	CountsPast(t, ip, before, "the counter goes on after a failed dump")
	// Nothing is stuck: the next checkpoint works.
	d.MustSh("echo stop-stateful > containers/c1/ctl && echo start > containers/c1/ctl")
	countFrom(t, ip, before, "over a good checkpoint")
	d.MustSh("echo stop > containers/c1/ctl")
}

// failCheckpoint makes a stop-stateful of a running container fail in
// CRIU: its init is ptraced by the test, so CRIU cannot seize it.
func (d *Daemon) failCheckpoint(name string) {
	d.t.Helper()
	pid, err := strconv.Atoi(d.Info(name)["pid"])
	if err != nil {
		d.t.Fatal(err)
	}
	detach := seize(d.t, pid)
	d.ShFails("echo stop-stateful > containers/"+name+"/ctl", "Input/output error")
	detach()
}

// seize makes this test the ptrace tracer of pid without stopping it, from
// a locked OS thread; detach detaches from that same thread (ptrace is per
// thread, and a goroutine locked to the main thread never ends it).
func seize(t *testing.T, pid int) (detach func()) {
	t.Helper()
	const (
		ptraceSeize     = 0x4206
		ptraceInterrupt = 0x4207
	)
	ptrace := func(req int) error {
		_, _, errno := syscall.RawSyscall6(syscall.SYS_PTRACE, uintptr(req), uintptr(pid), 0, 0, 0, 0)
		if errno != 0 {
			return errno
		}
		return nil
	}
	ready, done, detached := make(chan error), make(chan struct{}), make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := ptrace(ptraceSeize); err != nil {
			ready <- err
			return
		}
		ready <- nil
		<-done
		// PTRACE_DETACH needs the tracee stopped: interrupt, wait, detach.
		err := ptrace(ptraceInterrupt)
		if err == nil {
			var ws syscall.WaitStatus
			_, err = syscall.Wait4(pid, &ws, syscall.WALL, nil)
		}
		if err == nil {
			err = ptrace(syscall.PTRACE_DETACH)
		}
		detached <- err
	}()
	if err := <-ready; err != nil {
		t.Fatalf("ptrace seize %d: %v", pid, err)
	}
	var once sync.Once
	detach = func() {
		once.Do(func() {
			close(done)
			if err := <-detached; err != nil {
				t.Errorf("ptrace detach %d: %v", pid, err)
			}
		})
	}
	t.Cleanup(detach) // also when the test fails before detaching
	return detach
}

// checkImageFiles checks that every file of manifest m reads back through
// dir of the mount as the bytes CRIU wrote, and returns the largest
// pages-*.img.
func (d *Daemon) checkImageFiles(dir string, m storedManifest) (pages string) {
	d.t.Helper()
	// Every file reads back as CRIU's bytes: sizes from stat, and content
	// against the hash of each chunk, which ctrfs computed from CRIU's
	// files as it stored them (the store's own names for the chunks).
	sizes := d.MustSh("cd " + dir + " && stat -c '%n %s' *")
	for _, f := range m.Files {
		if !strings.Contains(sizes, fmt.Sprintf("%s %d\n", f.Name, f.Size)) {
			d.t.Errorf("%s: size through the mount is not %d:\n%s", f.Name, f.Size, sizes)
		}
		content, err := os.ReadFile(d.Path(dir, f.Name))
		if err != nil {
			d.t.Fatal(err)
		}
		off := 0
		for _, c := range f.Chunks {
			end := min(off+int(c.Size), len(content))
			if chunkName(c.Hash, content[off:end]) != c.Hash {
				d.t.Errorf("%s: bytes %d-%d through the mount differ from what CRIU wrote", f.Name, off, end)
			}
			off = end
		}
		if off != len(content) || int64(len(content)) != f.Size {
			d.t.Errorf("%s: read %d bytes, CRIU wrote %d", f.Name, len(content), f.Size)
		}
		if strings.HasPrefix(f.Name, "pages-") && (pages == "" || f.Size > fileSize(m, pages)) {
			pages = f.Name
		}
	}
	return pages
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func anyPrefix(list []string, prefix string) bool {
	for _, x := range list {
		if strings.HasPrefix(x, prefix) {
			return true
		}
	}
	return false
}

func fileSize(m storedManifest, name string) int64 {
	for _, f := range m.Files {
		if f.Name == name {
			return f.Size
		}
	}
	return 0
}

// TestStatefulStoreFull: when the dump succeeds but the store cannot take
// the images (its disk is full), the container is restored from the staging
// copy and keeps running with its state; the write fails with EIO.
func TestStatefulStoreFull(t *testing.T) {
	d := StartDaemon(t, "dakara")
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	chunks := filepath.Join(d.Store, "images", "chunks")
	if err := os.MkdirAll(chunks, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4k,mode=0755", "ctrfs-test-full", chunks).CombinedOutput(); err != nil {
		t.Fatalf("mount a tiny tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(chunks, syscall.MNT_DETACH) })
	d.Start()

	ip := d.CreateRunning("c1")
	time.Sleep(time.Second)
	before := Count(t, ip)
	d.ShFails("echo stop-stateful > containers/c1/ctl", "Input/output error")
	if e := d.Read("containers/c1/error"); !strings.Contains(e, "could not be stored") || !strings.Contains(e, "RUNNING") {
		t.Errorf("error: %q", e)
	}
	d.WantStatus("containers/c1", "RUNNING", "after a store failure")
	countFrom(t, ip, before, "over a store failure")
	if d.Info("c1")["stateful"] != "no" {
		t.Error("saved state left after a store failure")
	}
	if left, _ := os.ReadDir(filepath.Join(d.Store, "staging")); len(left) != 0 {
		t.Errorf("staging left behind: %v", left)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestStatefulInterruptedCheckpoint: a finished dump left in staging by a
// daemon that died before storing it becomes the container's saved state
// when the next daemon starts.
func TestStatefulInterruptedCheckpoint(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	time.Sleep(time.Second)
	before := Count(t, ip)
	d.Kill()
	syscall.Unmount(d.Mount, syscall.MNT_DETACH)

	// What a daemon killed between dump and store leaves behind.
	staged := filepath.Join(d.Store, "staging", "dump-c1-123456")
	if err := os.MkdirAll(staged, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("lxc-checkpoint", "-P", d.LXCPath, "-n", "c1", "-s", "-D", staged).CombinedOutput()
	if err != nil {
		t.Fatalf("lxc-checkpoint: %v\n%s", err, out)
	}
	// A copy of CRIU's own files, made without ctrfs, to compare state/ with.
	raw := filepath.Join(t.TempDir(), "raw")
	if out, err := exec.Command("cp", "-a", staged, raw).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	d.Start()
	if d.Info("c1")["stateful"] != "yes" {
		t.Fatalf("the interrupted checkpoint was not recovered:\n%s", d.Log())
	}
	// state/ lists exactly CRIU's files (and ps), byte for byte.
	d.MustSh(`cd containers/c1/state && [ "$(ls | grep -vx ps)" = "$(ls ` + raw + `)" ] &&
		for f in ` + raw + `/*; do cmp "$f" "$(basename "$f")" || exit 1; done`)
	d.MustSh("echo start > containers/c1/ctl")
	countFrom(t, ip, before, "over the interrupted checkpoint and start")
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestStatefulStaleState: a container that runs while it has saved state
// (started outside ctrfs, or restored by a daemon killed before it dropped
// the state) loses that state when the daemon starts: a later start must
// not bring back processes of the past.
func TestStatefulStaleState(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	// A count well above what a fresh boot shows when its service first
	// answers, however slow the machine: the counter's pace is not ours.
	waitLong(t, "the count to reach 25", time.Minute, func() bool { n, err := tryCount(ip); return err == nil && n >= 25 })
	saved := Count(t, ip)
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	d.Kill()
	syscall.Unmount(d.Mount, syscall.MNT_DETACH)
	if out, err := exec.Command("lxc-start", "-P", d.LXCPath, "-n", "c1").CombinedOutput(); err != nil {
		t.Fatalf("lxc-start: %v\n%s", err, out)
	}
	d.Start()
	if st := d.Info("c1")["stateful"]; st != "no" {
		t.Fatalf("stateful: %s for a container that runs", st)
	}
	if out, err := exec.Command("lxc-stop", "-P", d.LXCPath, "-n", "c1", "-k").CombinedOutput(); err != nil {
		t.Fatalf("lxc-stop: %v\n%s", err, out)
	}
	d.MustSh("echo start > containers/c1/ctl")
	if n := Count(t, ip); n >= saved {
		t.Fatalf("count %d after start (%d when stopped): the stale state was restored", n, saved)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestStatefulDaemonKilledDuringStart: CRIU reads a start's images from
// the daemon, so a daemon killed during the restore cuts it off. The
// container then ends either restored (its saved state dropped when the
// daemon starts again) or stopped with its saved state, from which it
// starts: its processes are never lost.
func TestStatefulDaemonKilledDuringStart(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	for _, delay := range []time.Duration{20 * time.Millisecond, 60 * time.Millisecond, 120 * time.Millisecond, 250 * time.Millisecond} {
		before := Count(t, ip)
		d.MustSh("echo stop-stateful > containers/c1/ctl")
		write := d.Background("echo start > containers/c1/ctl")
		time.Sleep(delay)
		d.Kill()
		write.Wait()
		d.waitForHelpers()
		d.Start()
		info := d.Info("c1")
		t.Logf("kill after %v: %s, stateful: %s", delay, info["status"], info["stateful"])
		switch {
		case info["status"] == "RUNNING" && info["stateful"] == "no":
		case info["status"] == "STOPPED" && info["stateful"] == "yes":
			d.MustSh("echo start > containers/c1/ctl")
		default:
			t.Fatalf("kill after %v: status %s, stateful %s", delay, info["status"], info["stateful"])
		}
		countFrom(t, ip, before, fmt.Sprintf("over a kill after %v", delay))
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestStatefulLongName: a container with the longest name allowed is
// restored too. CRIU reads its images from a socket of the daemon's, and a
// socket's path has room for 107 bytes only.
func TestStatefulLongName(t *testing.T) {
	d := StartDaemon(t, "dakara")
	name := strings.Repeat("l", 63)
	ip := d.CreateRunning(name)
	before := Count(t, ip)
	d.MustSh("echo stop-stateful > containers/" + name + "/ctl")
	d.MustSh("echo start > containers/" + name + "/ctl")
	countFrom(t, ip, before, "over stop-stateful and start of "+name)
	if op := d.Info(name)["last-op"]; op != "start" {
		t.Fatalf("last-op %q", op)
	}
	d.MustSh("echo stop > containers/" + name + "/ctl")
}

// TestStatefulUnderLoad: checkpoints succeed while clients hammer the
// container's service. BusyBox's `nc -e` then often sits in vfork() with a
// child CRIU has already stopped, and CRIU cannot seize it in time; ctrfs
// tries the dump again, and the container is never left frozen or down.
func TestStatefulUnderLoad(t *testing.T) {
	d := StartDaemon(t, "dakara")
	ip := d.CreateRunning("c1")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			// About 400 connections a second. At 1,600 a second the
			// listener is nearly always inside vfork(), and even five
			// attempts at 4 s can all fail; no retry helps then.
			for i := 0; i < 4; i++ {
				go tryCount(ip)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer func() { close(stop); <-done }()

	last := 0
	for i := 0; i < 2; i++ {
		d.MustSh("echo stop-stateful > containers/c1/ctl")
		d.MustSh("echo start > containers/c1/ctl")
		n := Count(t, ip)
		if n < last {
			t.Fatalf("round %d: count went from %d to %d", i, last, n)
		}
		last = n
		d.MustSh("echo 'snapshot s" + strconv.Itoa(i) + " --stateful' > containers/c1/ctl")
	}
	if retries := strings.Count(d.Log(), "trying again"); retries > 0 {
		t.Logf("%d dumps were tried again after CRIU could not freeze the container", retries)
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestStatefulRestoreFailure: when CRIU fails to restore, start fails with
// EIO, `error` says why and `log` holds CRIU's restore log; the container
// stays STOPPED with its saved state, and start works once CRIU does.
func TestStatefulRestoreFailure(t *testing.T) {
	fault := filepath.Join(t.TempDir(), "fail-restores")
	real, err := exec.LookPath("criu")
	if err != nil {
		t.Fatal(err)
	}
	// A criu in front of the real one: while the fault file exists, a
	// restore fails the way CRIU does, with an error in its log.
	wrapper := filepath.Join(t.TempDir(), "criu")
	script := `#!/bin/sh
if [ -e ` + fault + ` ]; then
  for a in "$@"; do
    [ "$a" = restore ] || continue
    prev= dir=.
    for b in "$@"; do
      case "$prev" in -D|--images-dir) dir=$b;; esac
      prev=$b
    done
    echo "(00.000001) Error (criu/cr-restore.c:1): injected restore failure" >> "$dir/restore.log"
    exit 1
  done
fi
exec ` + real + ` "$@"
`
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := NewDaemon(t, "dakara")
	d.Env = []string{"PATH=" + filepath.Dir(wrapper) + ":" + os.Getenv("PATH")}
	d.Start()
	ip := d.CreateRunning("c1")
	time.Sleep(time.Second)
	before := Count(t, ip)
	d.MustSh("echo stop-stateful > containers/c1/ctl")

	if err := os.WriteFile(fault, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for try := 0; try < 2; try++ { // a failed start can be tried again
		d.ShFails("echo start > containers/c1/ctl", "Input/output error")
		d.WantStatus("containers/c1", "STOPPED", "after a failed restore")
		if e := d.Read("containers/c1/error"); !strings.Contains(e, "injected restore failure") || !strings.Contains(e, "kept") {
			t.Errorf("error after a failed restore: %q", e)
		}
		if log := d.Read("containers/c1/log"); !strings.Contains(log, "restore.log") || !strings.Contains(log, "injected restore failure") {
			t.Errorf("log after a failed restore lacks CRIU's restore log:\n%s", log)
		}
		if d.Info("c1")["stateful"] != "yes" || !exists(d.Path("containers/c1/state/pstree.img")) {
			t.Fatal("a failed restore dropped the saved state")
		}
	}

	os.Remove(fault)
	d.MustSh("echo start > containers/c1/ctl")
	countFrom(t, ip, before, "over the failed restores and a good one")
	if d.Info("c1")["stateful"] != "no" {
		t.Error("saved state kept after a successful restore")
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// chunkName is the name the store gives data, computed here on its own:
// BLAKE3 with ".b3" for chunks of store format 2, SHA-256 for older ones
// (like names). It checks the daemon's hashing, so it does not call it.
func chunkName(like string, data []byte) string {
	if strings.HasSuffix(like, ".b3") {
		sum := blake3.Sum256(data)
		return hex.EncodeToString(sum[:]) + ".b3"
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
