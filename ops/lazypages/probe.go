package lazypages

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"ctrfs/ops/criulog"
	"ctrfs/ops/testhooks"
)

// Post-copy moves need CRIU's lazy pages: the source's page server hands
// out the pages of the frozen tasks, the target's lazy-pages daemon fills
// them in through userfaultfd. `criu check --feature uffd-noncoop` says
// only that the kernel has userfaultfd; on some hosts it says yes and
// every lazy transfer still fails (where root lacks CAP_SYS_RESOURCE and
// fs.pipe-max-size is small: see pipeLimit). So Probe finds out by
// doing one: it moves a small process of this binary lazily over
// loopback, its page server speaking TLS as a move's does (tls.go).
//
// A success holds for the daemon's life. A failure does not: its cause
// may pass (a sysctl set since, or a local process that connected to the
// probe's page server first, which fails the probe as it would a move),
// so it is believed for lazyProbeRetry only, and then probed again.

var lazyPages struct {
	mu    sync.Mutex // held through a probe: callers meanwhile share its answer
	ok    bool
	err   error
	until time.Time // err stands until then
}

// lazyProbeRetry is how long a failed probe's answer stands: long enough
// that a burst of moves (an evacuation) does not probe once each, short
// enough that a passing cause does not outlast the operator's fix.
// CTRFS_TEST_LAZY_PROBE_RETRY, a test hook, shortens it so that the test
// of the probe again need not wait half a minute.
var lazyProbeRetry = testhooks.Duration("CTRFS_TEST_LAZY_PROBE_RETRY", 30*time.Second)

// Probe is nil if CRIU lazy pages work on this host, or why not in
// CRIU's words. A probe takes a second or two.
func Probe() error {
	lazyPages.mu.Lock()
	defer lazyPages.mu.Unlock()
	if lazyPages.ok || (lazyPages.err != nil && time.Now().Before(lazyPages.until)) {
		return lazyPages.err
	}
	err := probeLazyPages()
	if err == nil {
		lazyPages.ok, lazyPages.err = true, nil
		return nil
	}
	if why := pipeLimit(); why != "" {
		err = fmt.Errorf("%w; %s", err, why)
	}
	lazyPages.until = time.Now().Add(lazyProbeRetry)
	lazyPages.err = fmt.Errorf("%w (probed at %s; probed again from %s)", err,
		time.Now().Format(time.TimeOnly), lazyPages.until.Format(time.TimeOnly))
	return lazyPages.err
}

// PipeBytes is the pipe size CRIU's lazy page server needs: it tees
// pages out of its page pipes through a pipe it grows to PIPE_MAX_SIZE
// (criu/include/page-pipe.h: 8 pages' worth of pipe buffers, 819 pages),
// which the kernel rounds up to 1024 pages. It does not grow with the
// container's memory: more memory takes more pipes, not bigger ones.
const PipeBytes = 4 << 20

// pipeLimit explains a lazy page server that fails for want of big
// pipes: without CAP_SYS_RESOURCE a process cannot grow a pipe beyond
// fs.pipe-max-size (1 MiB by default), and CRIU's tee then moves only
// part of a request ("tee: 65536: Operation not permitted"). "" if that
// is not the cause.
func pipeLimit() string {
	b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	if err != nil {
		return ""
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || max >= PipeBytes || hasCapSysResource() {
		return ""
	}
	return fmt.Sprintf("this host's root lacks CAP_SYS_RESOURCE, so pipes cannot grow beyond fs.pipe-max-size (%d bytes), "+
		"and CRIU's lazy page server needs %d: `sysctl fs.pipe-max-size=%d` on both hosts (ctrfs tries again 30 s after a failed check)",
		max, PipeBytes, PipeBytes)
}

// hasCapSysResource says whether this process has CAP_SYS_RESOURCE (bit
// 24 of CapEff).
func hasCapSysResource() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<24) != 0
		}
	}
	return false
}

// lazyProbeMiB is the memory the probe's process fills and checks.
const lazyProbeMiB = 4

// probeStepLimit bounds each step of the probe: its process starting,
// the dump's page server listening, the lazy migration, the restored
// process answering. Each step ends as soon as it is done, or as soon as
// CRIU exits with an error; the limit only says how long a step may take
// on a slow host before the probe gives up. It was 5 to 20 s, and on the
// real-hosts bed (an emulated VM, busy) the probe's process alone took
// longer than 5 s to start: the host was said not to do lazy pages, and
// post-copy moves to it were refused.
const probeStepLimit = time.Minute

// lazyProbeWorkloadLife bounds the life of the probe's process: longer
// than the probe's steps together can take.
const lazyProbeWorkloadLife = 5 * probeStepLimit

// probeStartDelay delays the probe's process before it says it is ready:
// a test hook standing for a slow host (CTRFS_TEST_PROBE_START_DELAY).
var probeStartDelay = testhooks.Duration("CTRFS_TEST_PROBE_START_DELAY", 0)

func probeLazyPages() error {
	// Its CRIU runs die with the daemon: a parent-death signal, which
	// comes when the thread that started them ends, so this one stays
	// locked until the probe is over. Not its process: CRIU would
	// restore the signal, and the restored copy, whose parent CRIU exits
	// at once, would die with it; it ends by itself instead (see
	// ProbeWorkloadMain).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ctrfs-lazy-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	os.Mkdir(src, 0o700)
	os.Mkdir(dst, 0o700)
	// TLS as a move's, with a CA of the probe's own: one set of
	// credentials for each end, each in a directory of its own.
	seed := make([]byte, 32)
	rand.Read(seed)
	var tlsArgs [2][]string
	for i, end := range []string{"tls-dump", "tls-lazy"} {
		creds, err := NewPageServerTLS(seed)
		if err != nil {
			return err
		}
		tdir := filepath.Join(dir, end)
		if err := os.Mkdir(tdir, 0o700); err != nil {
			return err
		}
		if err := creds.Write(tdir); err != nil {
			return err
		}
		tlsArgs[i] = criuArgs(TLSOptions(tdir))
	}

	// The process is the init of a pid namespace of its own, so that its
	// restore gets its pid again while the dumped one still exists.
	work := exec.Command(self, "lazy-probe-workload", dir)
	work.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}
	if err := work.Start(); err != nil {
		return fmt.Errorf("start the probe's process: %w", err)
	}
	defer func() { work.Process.Kill(); work.Wait() }()
	if !waitFor(probeStepLimit, func() bool { return fileExists(filepath.Join(dir, "ready")) }) {
		return fmt.Errorf("the probe's process did not start")
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := []string{"--address", "127.0.0.1", "--port", strconv.Itoa(port)}
	dump := exec.Command("criu", append(append([]string{"dump", "-t", strconv.Itoa(work.Process.Pid), "-D", src,
		"-o", "dump.log", "-v4", "--shell-job", "--lazy-pages"}, addr...), tlsArgs[0]...)...)
	dump.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	dumped := make(chan error, 1)
	if err := dump.Start(); err != nil {
		return fmt.Errorf("criu dump --lazy-pages: %w", err)
	}
	go func() { dumped <- dump.Wait() }()
	defer dump.Process.Kill()
	serving := func() bool { return criulog.Has(filepath.Join(src, "dump.log"), "Starting page server") }
	if !waitFor(probeStepLimit, func() bool { return serving() || len(dumped) > 0 }) || !serving() {
		return fmt.Errorf("criu dump --lazy-pages: %s", criuError(filepath.Join(src, "dump.log")))
	}
	testhooks.PausePoint("lazy-probe-serving", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	imgs, _ := filepath.Glob(filepath.Join(src, "*.img"))
	for _, f := range imgs {
		data, err := os.ReadFile(f)
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, filepath.Base(f)), data, 0o600)
		}
		if err != nil {
			return err
		}
	}
	lazy, err := Start(dst, append(append([]string{"--page-server"}, addr...), tlsArgs[1]...)...)
	if err != nil {
		return err
	}
	defer func() { lazy.Kill(); lazy.Wait() }()
	pidFile := filepath.Join(dir, "restored.pid")
	restore := exec.Command("criu", "restore", "-D", dst, "-o", "restore.log", "--shell-job", "--lazy-pages", "-d", "--pidfile", pidFile)
	restore.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := restore.Start(); err != nil {
		return fmt.Errorf("criu restore --lazy-pages: %w", err)
	}
	restored := make(chan error, 1)
	go func() { restored <- restore.Wait() }()
	defer restore.Process.Kill()
	defer killPidFile(pidFile)
	// A failed transfer can leave the restore waiting for good: the
	// dump's answer decides first.
	limit := time.After(probeStepLimit)
	for dumpDone, restoreDone := false, false; !dumpDone || !restoreDone; {
		select {
		case err := <-dumped:
			if err != nil {
				return fmt.Errorf("criu dump --lazy-pages: %s", criuError(filepath.Join(src, "dump.log")))
			}
			dumpDone = true
		case err := <-restored:
			if err != nil {
				return fmt.Errorf("criu restore --lazy-pages: %s", criuError(filepath.Join(dst, "restore.log")))
			}
			restoreDone = true
		case <-limit:
			return fmt.Errorf("a lazy migration of a %d MiB process did not finish in %s", lazyProbeMiB, probeStepLimit)
		}
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return fmt.Errorf("criu restore --lazy-pages wrote no pid: %w", err)
	}
	// Its memory checked once every page is in.
	syscall.Kill(pid, syscall.SIGUSR1)
	if !waitFor(probeStepLimit, func() bool { return fileExists(filepath.Join(dir, "checked")) }) {
		return fmt.Errorf("the lazily restored process did not answer")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "checked")); string(b) != "ok" {
		return fmt.Errorf("the lazily restored process found its memory changed")
	}
	return nil
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func killPidFile(path string) {
	if pid, err := readPid(path); err == nil && pid > 1 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ProbeWorkloadMain is `ctrfs lazy-probe-workload DIR`, the process the
// lazy-pages probe moves: it fills memory with a pattern, says ready, and
// on SIGUSR1 checks the pattern and writes DIR/checked. Without SIGUSR1
// it exits after lazyProbeWorkloadLife, so that neither it nor its
// restored copy outlives a daemon killed during the probe.
func ProbeWorkloadMain(args []string) int {
	if len(args) != 1 {
		return 2
	}
	mem := make([]byte, lazyProbeMiB<<20)
	for i := range mem {
		mem[i] = byte(i*7 + i>>12)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	time.Sleep(probeStartDelay)
	if err := os.WriteFile(filepath.Join(args[0], "ready"), nil, 0o600); err != nil {
		return 1
	}
	select {
	case <-usr1:
	case <-time.After(lazyProbeWorkloadLife):
		return 1
	}
	result := "ok"
	for i := range mem {
		if mem[i] != byte(i*7+i>>12) {
			result = "changed"
			break
		}
	}
	os.WriteFile(filepath.Join(args[0], "checked.tmp"), []byte(result), 0o600)
	os.Rename(filepath.Join(args[0], "checked.tmp"), filepath.Join(args[0], "checked"))
	return 0
}

func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// criuError says why the CRIU run that wrote the log at path failed.
func criuError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "it wrote no log"
	}
	if why := criulog.Explain(b); why != "" {
		return why
	}
	return "no error in its log " + path
}
