package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ctrfs/internal/tree"
)

// Post-copy moves (`move HOST --post-copy`): the container runs on the
// target while its memory still arrives from the source's CRIU page
// server. These tests move a container running memhog (bench/memhog),
// which holds memory with a known checksum, and interrupt the transfer at
// known points: the source's page server is stopped (SIGSTOP) once it
// listens, so that no page moves until the test lets it.

var memhogBuild struct {
	once sync.Once
	path string
	err  error
}

// memhogBin builds bench/memhog, static, once per run.
func memhogBin(t *testing.T) string {
	t.Helper()
	memhogBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "ctrfs-memhog-")
		if err != nil {
			memhogBuild.err = err
			return
		}
		memhogBuild.path = filepath.Join(dir, "memhog")
		build := exec.Command("go", "build", "-o", memhogBuild.path, "../bench/memhog")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			memhogBuild.err = err
			t.Logf("%s", out)
		}
	})
	if memhogBuild.err != nil {
		t.Fatalf("build memhog: %v", memhogBuild.err)
	}
	return memhogBuild.path
}

// memhogContainer creates c1 on d with memhog holding mib MiB beside the
// counter service, starts it and waits until memhog has filled its memory.
// It returns the address and memhog's ready file.
func memhogContainer(t *testing.T, d *Daemon, mib int) (ip string, ready map[string]string) {
	t.Helper()
	d.MustSh("mkdir containers/c1")
	data, err := os.ReadFile(memhogBin(t))
	if err == nil {
		err = os.WriteFile(d.rootfs("c1", "memhog"), data, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(d.rootfs("c1", "etc", "inittab"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("::respawn:/memhog --mib " + strconv.Itoa(mib) + " --dir /memhog.d --interval 300ms\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	d.MustSh("echo start > containers/c1/ctl")
	ip = d.Info("c1")["ipv4"]
	waitLong(t, "memhog to fill its memory", 2*time.Minute, func() bool {
		ready = tree.ParseKV(fileText(d.rootfs("c1", "memhog.d", "ready")))
		return ready["sum"] != ""
	})
	Count(t, ip)
	return ip, ready
}

func fileText(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// memhogIntact waits until memhog on d has checked its memory afresh
// (its sum file past seq) and checks that it is the same process with the
// same memory.
func memhogIntact(t *testing.T, d *Daemon, ready map[string]string, seq int) {
	t.Helper()
	var kv map[string]string
	waitLong(t, "memhog on "+d.Name+" to check its memory", time.Minute, func() bool {
		kv = tree.ParseKV(fileText(d.rootfs("c1", "memhog.d", "sum")))
		n, err := strconv.Atoi(kv["seq"])
		return err == nil && n > seq
	})
	if kv["pid"] != ready["pid"] || kv["sum"] != ready["sum"] || kv["bad-blocks"] != "0" {
		t.Fatalf("memhog on %s: %v; it was %v (a new process, or its memory changed)", d.Name, kv, ready)
	}
}

// memhogSeq is memhog's last check on d.
func memhogSeq(d *Daemon) int {
	n, _ := strconv.Atoi(tree.ParseKV(fileText(d.rootfs("c1", "memhog.d", "sum")))["seq"])
	return n
}

// childCRIU finds the criu process whose parent's command line has all of
// words (a ctrfs helper of one daemon and container), or 0.
func childCRIU(words ...string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, stat := range procs {
		b, err := os.ReadFile(stat)
		if err != nil || !strings.Contains(string(b), "(criu)") {
			continue
		}
		fields := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+1:])
		if len(fields) < 2 {
			continue
		}
		parent := strings.Split(fileText("/proc/"+fields[1]+"/cmdline"), "\x00")
		found := true
		for _, w := range words {
			if !contains(parent, w) {
				found = false
			}
		}
		if found {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(stat)))
			return pid
		}
	}
	return 0
}

// cmdArg is the argument after flag on pid's command line.
func cmdArg(pid int, flag string) string {
	args := strings.Split(fileText("/proc/"+strconv.Itoa(pid)+"/cmdline"), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// TestPostCopyMove: a post-copy move carries a running container with
// its memory intact; it runs on the target, gone from the source.
func TestPostCopyMove(t *testing.T) {
	a, b := twoHosts(t)
	ip, ready := memhogContainer(t, a.Daemon, 64)
	before := Count(t, ip)
	seq := memhogSeq(a.Daemon)

	a.MustSh("echo 'move tollana --post-copy' > containers/c1/ctl")
	wantMoved(t, "c1", a, b, "after the move")
	countFrom(t, ip, before, "over the post-copy move")
	memhogIntact(t, b.Daemon, ready, seq)
	info := b.Info("c1")
	if info["move-mode"] != "post-copy" || info["downtime-seconds"] == "" || info["postcopy-fill-seconds"] == "" {
		t.Errorf("info on the target:\n%v", info)
	}
	t.Logf("post-copy move: %s s, downtime %s s, fill %s s", info["move-seconds"], info["downtime-seconds"], info["postcopy-fill-seconds"])
	b.MustSh("echo stop > containers/c1/ctl")
}

// stalledPostCopy starts a post-copy move of c1 from a (started with
// pauseAt's environment) to b and returns once b's lazy-pages daemon has
// connected to the source's page server, which is stopped: no page has
// moved, and the restore on b waits for the pages it touches. It returns
// the move, the source's CRIU and the target's lazy-pages daemon.
func stalledPostCopy(t *testing.T, a, b *Peer, pause string) (move *backgroundMove, source, lazy int) {
	t.Helper()
	stderr := filepath.Join(t.TempDir(), "stderr")
	move = &backgroundMove{a.Background("{ echo 'move tollana --post-copy' > containers/c1/ctl; } 2>" + stderr), stderr}
	waitLong(t, "the source's page server to listen", time.Minute, func() bool { return exists(pause) })
	source = childCRIU("checkpoint-lazy", a.LXCPath, "c1")
	if source == 0 {
		t.Fatal("no CRIU dump of c1 on the source")
	}
	if err := syscall.Kill(source, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // a test that failed before it let CRIU go on
		if strings.Contains(fileText(fmt.Sprintf("/proc/%d/cmdline", source)), "criu") {
			syscall.Kill(source, syscall.SIGCONT)
		}
	})
	os.Remove(pause)
	waitLong(t, "the target's lazy-pages daemon to connect", time.Minute, func() bool {
		lazy = childCRIU("lazy-pages-watch", b.LXCPath, "c1")
		return lazy != 0 && strings.Contains(fileText(filepath.Join(cmdArg(lazy, "-D"), "lazy-pages.log")), "Connecting to server")
	})
	return move, source, lazy
}

// resumedHere checks that a failed post-copy move left c1 running on a,
// its network unlocked (the service answers new connections), its count
// and memhog's memory intact, and no copy on b, whose watcher killed its
// own copy.
func resumedHere(t *testing.T, a, b *Peer, move *backgroundMove, ip string, before, seq int, ready map[string]string) {
	t.Helper()
	if err := move.Wait(); err == nil {
		t.Fatal("the move succeeded")
	}
	if e := a.Read("containers/c1/error"); !strings.Contains(e, "RUNNING here again") {
		t.Errorf("error of the failed move: %q (%s)", e, move.Stderr())
	}
	stillHere(t, a, b, ip, before)
	memhogIntact(t, a.Daemon, ready, seq)
	if !strings.Contains(b.Log(), "killed its copy") {
		t.Errorf("the target's log does not say its watcher killed the copy:\n%s", b.Log())
	}
	waitLong(t, "no task of the target's copy to be left", 30*time.Second, func() bool {
		return len(holdingStaging(b.Daemon)) == 0
	})
}

// holdingStaging are the processes that hold a file in d's memory staging
// open (see ops/staging): CRIU's restore, and the tasks it had begun to
// restore, which keep its log open until it is done. A copy killed half
// restored must leave none. (The link is matched on the staging root's
// name: a task in a container's mount namespace sees the path from there.)
func holdingStaging(d *Daemon) []int {
	sum := sha256.Sum256([]byte(d.Store))
	mark := "/ctrfs-staging-" + hex.EncodeToString(sum[:6])
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	var out []int
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && strings.Contains(link, mark) {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			out = append(out, pid)
		}
	}
	return out
}

// brokenPostCopy stalls a post-copy move of a memhog container from a new
// source to a new target (stalledPostCopy), lets breakIt break it, given
// the target, the source's CRIU and the target's lazy-pages daemon, and
// checks that the source resumed its container (resumedHere).
func brokenPostCopy(t *testing.T, breakIt func(b *Peer, source, lazy int)) {
	t.Helper()
	env, pause := pauseAt(t, "postcopy-serving")
	a, b := twoHostsEnv(t, env)
	ip, ready := memhogContainer(t, a.Daemon, 64)
	before, seq := Count(t, ip), memhogSeq(a.Daemon)

	move, source, lazy := stalledPostCopy(t, a, b, pause)
	breakIt(b, source, lazy)
	resumedHere(t, a, b, move, ip, before, seq, ready)
	a.MustSh("echo stop > containers/c1/ctl")
}

// TestPostCopyTargetFails: the target's lazy-pages daemon dies mid-copy.
// The target kills its copy; the source's page server sees its connection
// close, which CRIU counts as success: the source must not take that for
// the target's word, and resumes its container, network unlocked.
func TestPostCopyTargetFails(t *testing.T) {
	brokenPostCopy(t, func(b *Peer, source, lazy int) {
		syscall.Kill(lazy, syscall.SIGKILL)
		waitLong(t, "the target to report its copy killed", time.Minute, func() bool {
			return strings.Contains(b.Log(), "killed its copy")
		})
		syscall.Kill(source, syscall.SIGCONT)
	})
}

// TestPostCopySourceVanishes: the source's page server dies mid-copy.
// The target kills its copy rather than run on zero-filled pages, and
// the source resumes its container.
func TestPostCopySourceVanishes(t *testing.T) {
	brokenPostCopy(t, func(_ *Peer, source, _ int) {
		syscall.Kill(source, syscall.SIGKILL)
	})
}

// TestPostCopyMoveSlowProbe: a host whose lazy-pages probe is slow (its
// process takes 7 s to start, CTRFS_TEST_PROBE_START_DELAY, as on the
// real-hosts bed's busy emulated VMs) still takes post-copy moves. The
// probe gave its process 5 s and then said the host could not do lazy
// pages, and the move was refused with EOPNOTSUPP.
func TestPostCopyMoveSlowProbe(t *testing.T) {
	slow := []string{"CTRFS_TEST_PROBE_START_DELAY=7s"}
	a, b := twoHostsWith(t, slow, slow)
	ip, _ := memhogContainer(t, a.Daemon, 16)
	before := Count(t, ip)
	a.MustSh("echo 'move tollana --post-copy' > containers/c1/ctl")
	wantMoved(t, "c1", a, b, "after the move")
	countFrom(t, ip, before, "over the post-copy move")
	if mode := b.Info("c1")["move-mode"]; mode != "post-copy" {
		t.Errorf("move-mode %q on the target, want post-copy", mode)
	}
	b.MustSh("echo stop > containers/c1/ctl")
}
