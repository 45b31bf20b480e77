package tests

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The page server of a post-copy move, and of the probe that finds out
// whether this host can do one, listen on TCP for a moment before their
// peer connects. A local process that connects first must get nothing
// from them (they speak TLS with the move's own CA), fail at most that
// one move or probe, and leave the next one working.

// pageServerOf is the page server's address that a daemon paused at
// (pausePoint's detail line).
func pageServerOf(t *testing.T, pause string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(fileText(pause)), "\n")
	if len(lines) < 2 {
		t.Fatalf("the pause file names no page server: %q", fileText(pause))
	}
	return lines[1]
}

// racerConnect connects to addr as soon as it listens (CRIU logs that it
// starts its page server just before it listens).
func racerConnect(t *testing.T, addr string) net.Conn {
	t.Helper()
	var conn net.Conn
	waitLong(t, "the page server at "+addr+" to take a connection", 30*time.Second, func() bool {
		var err error
		conn, err = net.DialTimeout("tcp", addr, time.Second)
		return err == nil
	})
	return conn
}

// CRIU's page server protocol (criu/page-xfer.c): a request is struct
// page_server_iov {u32 cmd; u64 nr_pages; u64 vaddr; u64 dst_id}, 32
// bytes with padding; PS_IOV_GET asks for pages of the task whose pid (in
// its namespace) is dst_id, and the answer is a PS_IOV_ADD_F header and
// the pages.
const (
	psIOVGet  = 7
	psIOVAddF = 6
	psiSize   = 32
	pageSize  = 4096
)

// racePageServer connects to the page server at addr before the target
// does and asks it, as CRIU's own lazy-pages daemon would, for the page at
// the top of the stack of the container's init (host pid initPid, pid 1
// inside). It returns what came back.
func racePageServer(t *testing.T, addr string, initPid int) []byte {
	t.Helper()
	var stackTop uint64
	for _, line := range strings.Split(fileText(fmt.Sprintf("/proc/%d/maps", initPid)), "\n") {
		if strings.HasSuffix(line, "[stack]") {
			_, end, _ := strings.Cut(strings.Fields(line)[0], "-")
			stackTop, _ = strconv.ParseUint(end, 16, 64)
		}
	}
	if stackTop == 0 {
		t.Fatalf("no stack in the maps of the container's init, pid %d", initPid)
	}
	conn := racerConnect(t, addr)
	defer conn.Close()
	req := make([]byte, psiSize)
	binary.LittleEndian.PutUint32(req[0:], psIOVGet)
	binary.LittleEndian.PutUint64(req[8:], 1)
	binary.LittleEndian.PutUint64(req[16:], stackTop-pageSize)
	binary.LittleEndian.PutUint64(req[24:], 1)
	if _, err := conn.Write(req); err != nil {
		return nil // refused before the request: nothing read
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, _ := io.ReadAll(io.LimitReader(conn, psiSize+pageSize))
	return got
}

// isPage says whether a page server's answer is a page of memory.
func isPage(b []byte) bool {
	return len(b) == psiSize+pageSize && binary.LittleEndian.Uint32(b)&0xffff == psIOVAddF
}

// releasePauses lets the daemon go on at every later pause at the step of
// pause, for the rest of the test.
func releasePauses(t *testing.T, pause string) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			os.Remove(pause)
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
}

// stagedKeys are the TLS files left in d's staging directories (memory
// and disk, see ops/staging).
func stagedKeys(d *Daemon) []string {
	sum := sha256.Sum256([]byte(d.Store))
	mem, _ := filepath.Glob("/dev/shm/ctrfs-staging-" + hex.EncodeToString(sum[:6]) + "-*/*/*.pem")
	disk, _ := filepath.Glob(filepath.Join(d.Store, "staging", "*", "*.pem"))
	return append(mem, disk...)
}

// TestPostCopyPageServerRacer: a local process connects to the source's
// page server before the target and asks for a page of the container's
// memory. It gets none; the move either succeeds or fails with the
// container RUNNING on the source, its memory intact; the next post-copy
// move works; and no TLS key is left in staging on either host.
func TestPostCopyPageServerRacer(t *testing.T) {
	env, pause := pauseAt(t, "postcopy-serving")
	a, b := twoHostsEnv(t, env)
	ip, ready := memhogContainer(t, a.Daemon, 16)
	before, seq := Count(t, ip), memhogSeq(a.Daemon)
	initPid, err := strconv.Atoi(a.Info("c1")["pid"])
	if err != nil {
		t.Fatalf("no pid in c1's info: %v", err)
	}

	stderr := filepath.Join(t.TempDir(), "stderr")
	move := &backgroundMove{a.Background("{ echo 'move tollana --post-copy' > containers/c1/ctl; } 2>" + stderr), stderr}
	waitPaused(t, pause)
	got := racePageServer(t, pageServerOf(t, pause), initPid)
	releasePauses(t, pause)
	moveErr := move.Wait()
	if isPage(got) {
		t.Errorf("a local process that connected to the page server first read a page of c1's memory")
	}
	t.Logf("the racer got %d bytes", len(got))

	// Where c1 is now, and where its next move goes.
	from, to := a, b
	if moveErr == nil {
		t.Logf("the move succeeded all the same")
		from, to = b, a
		memhogIntact(t, b.Daemon, ready, seq)
	} else {
		if e := a.Read("containers/c1/error"); !strings.Contains(e, "RUNNING here again") {
			t.Errorf("error of the failed move: %q (%s)", e, move.Stderr())
		}
		stillHere(t, a, b, ip, before)
		memhogIntact(t, a.Daemon, ready, seq)
	}
	before, seq = Count(t, ip), memhogSeq(from.Daemon)
	from.MustSh(fmt.Sprintf("echo 'move %s --post-copy' > containers/c1/ctl", to.Name))
	to.WantStatus("containers/c1", "RUNNING", "after the next post-copy move")
	countFrom(t, ip, before, "over the next post-copy move")
	memhogIntact(t, to.Daemon, ready, seq)
	for _, d := range []*Daemon{a.Daemon, b.Daemon} {
		if keys := stagedKeys(d); len(keys) > 0 {
			t.Errorf("TLS files left in %s's staging: %v", d.Name, keys)
		}
	}
	to.MustSh("echo stop > containers/c1/ctl")
}

// TestLazyProbeRetried: a local process connects first to the page server
// of the probe that finds out whether this host can do post-copy moves.
// The probe fails, and the move that asked is refused (EOPNOTSUPP, c1
// still here); but that failure does not stand for the daemon's life: a
// later post-copy move probes again and works. The failure stands 30 s on
// a host in use: 3 s here.
func TestLazyProbeRetried(t *testing.T) {
	env, pause := pauseAt(t, "lazy-probe-serving")
	a, b := twoHostsEnv(t, env, "CTRFS_TEST_LAZY_PROBE_RETRY=3s")
	ip := a.CreateRunning("c1")
	before := Count(t, ip)

	stderr := filepath.Join(t.TempDir(), "stderr")
	move := &backgroundMove{a.Background("{ echo 'move tollana --post-copy' > containers/c1/ctl; } 2>" + stderr), stderr}
	waitPaused(t, pause)
	conn := racerConnect(t, pageServerOf(t, pause))
	conn.Write([]byte("not a TLS client hello\n"))
	conn.Close()
	releasePauses(t, pause)
	if err := move.Wait(); err == nil || !strings.Contains(move.Stderr(), "Operation not supported") {
		t.Fatalf("the post-copy move whose probe a racer failed: %v (%s)", err, move.Stderr())
	}
	if e := a.Read("containers/c1/error"); !strings.Contains(e, "lazy pages") {
		t.Errorf("error of the refused move: %q", e)
	}
	stillHere(t, a, b, ip, before)

	// The probe's failure stands a while (so that a burst of moves does
	// not probe once each), then the probe runs again.
	waitLong(t, "a post-copy move to be probed again and work", 3*time.Minute, func() bool {
		_, err := a.Sh("echo 'move tollana --post-copy' > containers/c1/ctl")
		if err != nil && !strings.Contains(err.Error(), "Operation not supported") {
			t.Fatalf("post-copy move after the failed probe: %v", err)
		}
		if err != nil {
			time.Sleep(time.Second)
		}
		return err == nil
	})
	b.WantStatus("containers/c1", "RUNNING", "on the target after the move")
	countFrom(t, ip, before, "over the post-copy move")
	b.MustSh("echo stop > containers/c1/ctl")
}
