// Package tests drives real ctrfs daemons through real mounts with real
// shell commands, against real LXC containers (and, for checkpoints, real
// CRIU). It needs root and what `make deps` installs.
package tests

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests' own bridge and subnet, apart from the demo's. CTRFS_TEST_LANE
// (1-9) gives a run its own bridge, subnet, loopback addresses and ports, so
// that two runs on one machine (two developers' worktrees) do not collide.
var (
	testLane   = lane()
	testBridge = fmt.Sprintf("ctrfst%d", testLane)
	testSubnet = fmt.Sprintf("10.%d.0.0/16", 89+testLane)
)

func lane() int {
	n, err := strconv.Atoi(os.Getenv("CTRFS_TEST_LANE"))
	if err != nil || n < 0 || n > 9 {
		return 0
	}
	return n
}

// loopback is 127.0.LANE.host: the address a test's daemon number host binds.
func loopback(host int) string { return fmt.Sprintf("127.0.%d.%d", testLane, host) }

var ctrfsBin string

// templateCache is where every test daemon keeps the templates it builds:
// one directory for all of them, kept across runs, so that the debian
// template's debootstrap (minutes) runs once per machine, not per test.
const templateCache = "/var/cache/ctrfs/templates"

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "tests/: end-to-end tests need root (they mount FUSE and run LXC)")
		os.Exit(1)
	}
	// Whatever this process inherited open (a shell's descriptors) goes
	// no further: a daemon's processes would carry it on, and CRIU cannot
	// dump a process holding a file of a mount that its mount namespace
	// lacks (a Cgroup2Only daemon's lazy-pages probe failed on one).
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	dir, err := os.MkdirTemp("", "ctrfs-bin-")
	if err != nil {
		panic(err)
	}
	// CTRFS_BIN names a ctrfs binary to test instead of building one here
	// (scripts/verify-setup.sh runs the setup tests where there is no Go).
	ctrfsBin = os.Getenv("CTRFS_BIN")
	if ctrfsBin == "" {
		ctrfsBin = filepath.Join(dir, "ctrfs")
		build := exec.Command("go", "build", "-o", ctrfsBin, "../cmd/ctrfs")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build ctrfs:", err)
			os.Exit(1)
		}
	}
	// The daemons make the tests' bridge; it goes again if it was not there.
	bridgeExisted := exec.Command("ip", "link", "show", testBridge).Run() == nil
	restorePipes := raisePipeMaxSize()
	code := m.Run()
	restorePipes()
	if !bridgeExisted {
		exec.Command("ip", "link", "del", testBridge).Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// lazyPipeBytes is lazypages.PipeBytes: post-copy moves need pipes that big.
const lazyPipeBytes = 4 << 20

// raisePipeMaxSize lets the run's daemons do CRIU lazy pages where root
// lacks CAP_SYS_RESOURCE (these machines: see ops.LazyPages), by raising
// fs.pipe-max-size for the run. Runs in other lanes may overlap: each
// holds a shared lock on pipeUsers for its life; under an exclusive lock
// on pipeState, the first to raise the value writes the old one there,
// and whoever ends last (an exclusive lock on pipeUsers then succeeds)
// puts it back, unless something else changed it meanwhile. A watchdog
// process does the same when this one ends otherwise (a test's panic,
// -timeout, a kill).
func raisePipeMaxSize() (restore func()) {
	const path = "/proc/sys/fs/pipe-max-size"
	const pipeState, pipeUsers = "/run/ctrfs-tests-pipe-max-size", "/run/ctrfs-tests-pipe-max-size.users"
	state, err := os.OpenFile(pipeState, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests: cannot raise fs.pipe-max-size for post-copy moves:", err)
		return func() {}
	}
	defer state.Close()
	users, err := os.OpenFile(pipeUsers, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests: cannot raise fs.pipe-max-size for post-copy moves:", err)
		return func() {}
	}
	syscall.Flock(int(state.Fd()), syscall.LOCK_EX)
	syscall.Flock(int(users.Fd()), syscall.LOCK_SH)
	b, _ := os.ReadFile(path)
	if old, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && old < lazyPipeBytes {
		if err := os.WriteFile(path, []byte(strconv.Itoa(lazyPipeBytes)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "tests: cannot raise fs.pipe-max-size for post-copy moves:", err)
		} else {
			state.Truncate(0)
			state.WriteAt([]byte(strconv.Itoa(old)), 0)
		}
	}
	syscall.Flock(int(state.Fd()), syscall.LOCK_UN)
	putBack := fmt.Sprintf(`old=$(cat %[1]s); [ -n "$old" ] && [ "$(cat %[2]s)" = %[3]d ] && echo "$old" > %[2]s; : > %[1]s`, pipeState, path, lazyPipeBytes)
	last := fmt.Sprintf("flock -x %s flock -n -x %s sh -c '%s'", pipeState, pipeUsers, putBack)
	watchdog := exec.Command("sh", "-c", fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; %s", os.Getpid(), last))
	watchdog.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	watchdog.Start()
	return func() {
		users.Close() // this run's shared lock
		exec.Command("sh", "-c", last).Run()
	}
}

// Daemon is one `ctrfs serve` with its own mount, LXC path and store.
type Daemon struct {
	t                           *testing.T
	Name, Mount, LXCPath, Store string
	Env                         []string // added to the daemon's environment
	Bin                         string   // the program run; ctrfsBin if empty
	args                        []string
	cmd                         *exec.Cmd
	logPath                     string
	exited                      chan error
	cgroup2Only                 bool // see Cgroup2Only
}

// StartDaemon starts a daemon in a fresh temporary directory and registers
// its cleanup: containers stopped and destroyed, daemon stopped, mount gone.
func StartDaemon(t *testing.T, name string, extra ...string) *Daemon {
	t.Helper()
	d := NewDaemon(t, name, extra...)
	d.Start()
	return d
}

// NewDaemon prepares a daemon like StartDaemon without starting it, so
// that the test can set Env first.
func NewDaemon(t *testing.T, name string, extra ...string) *Daemon {
	t.Helper()
	base := t.TempDir()
	d := &Daemon{t: t, Name: name,
		Mount:   filepath.Join(base, "mnt"),
		LXCPath: filepath.Join(base, "lxc"),
		Store:   filepath.Join(base, "store"),
		logPath: filepath.Join(base, "daemon.log"),
	}
	d.args = append([]string{"serve", "--mount", d.Mount, "--lxcpath", d.LXCPath, "--store", d.Store,
		"--name", name, "--bridge", testBridge, "--subnet", testSubnet, "--log-level", "debug",
		"--template-cache", templateCache}, extra...)
	t.Cleanup(d.cleanup)
	return d
}

// Start (re)starts the daemon process on the same directories.
func (d *Daemon) Start() {
	d.t.Helper()
	d.launch()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if d.mounted() {
			return
		}
		select {
		case err := <-d.exited:
			d.exited <- err
			d.t.Fatalf("daemon %s exited before mounting: %v\n%s", d.Name, err, d.Log())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("daemon %s did not mount within 15s\n%s", d.Name, d.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mounted is true once the daemon serves its mount.
func (d *Daemon) mounted() bool {
	b, err := os.ReadFile(filepath.Join(d.Mount, "host"))
	return err == nil && strings.TrimSpace(string(b)) == d.Name
}

// launch starts the daemon process, its output appended to its log.
func (d *Daemon) launch() {
	d.t.Helper()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	bin := d.Bin
	if bin == "" {
		bin = ctrfsBin
	}
	d.cmd = exec.Command(bin, d.args...)
	if d.cgroup2Only {
		d.cmd = d.cgroup2OnlyCommand(bin)
	}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), d.Env...)
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	logf.Close()
	d.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(d.cmd, d.exited)
}

// Stop sends SIGTERM and waits; the daemon must exit 0.
func (d *Daemon) Stop() error {
	if d.cmd == nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		d.cmd = nil
		return err
	case <-time.After(20 * time.Second):
		d.Kill()
		return fmt.Errorf("daemon %s ignored SIGTERM for 20s", d.Name)
	}
}

// Kill kills the daemon with SIGKILL, leaving its mount stale.
func (d *Daemon) Kill() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		// A FUSE server that dies while a request to its own mount is
		// under way can wait in the kernel for its own answer for good:
		// abort the connection, so that the test fails instead of
		// hanging the run, and the next test finds no dead mount.
		d.t.Errorf("daemon %s did not die within 15 s of SIGKILL; aborting its FUSE connection: %v",
			d.Name, abortFUSE(d.Mount))
		<-d.exited
	}
	d.cmd = nil
}

// abortFUSE aborts the FUSE connection of the mount at dir through fusectl.
func abortFUSE(dir string) error {
	conn, err := fuseConnOf(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(fusectl(), conn, "abort"), []byte("1"), 0o200)
}

func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// logSays waits up to 10 s for the daemon's log to hold text: what the
// daemon logs after the tree has answered.
func (d *Daemon) logSays(text string) bool {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if strings.Contains(d.Log(), text) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func (d *Daemon) cleanup() {
	if err := d.Stop(); err != nil {
		d.t.Errorf("stopping daemon %s: %v", d.Name, err)
	}
	// A daemon built with -race (CTRFS_BIN, make test's race pass)
	// reports a data race in its log and runs on.
	if strings.Contains(d.Log(), "WARNING: DATA RACE") {
		d.t.Errorf("daemon %s reported a data race", d.Name)
	}
	if d.t.Failed() {
		d.t.Logf("daemon %s log:\n%s", d.Name, d.Log())
	}
	syscall.Unmount(d.Mount, syscall.MNT_DETACH) // only if a test left it stale
	entries, _ := os.ReadDir(d.LXCPath)
	for _, e := range entries {
		exec.Command("lxc-stop", "-P", d.LXCPath, "-n", e.Name(), "-k").Run()
		exec.Command("lxc-destroy", "-P", d.LXCPath, "-n", e.Name(), "-f").Run()
	}
	// The memory staging roots of the daemon's store (ops/staging):
	// a daemon killed by a test leaves its own behind, empty or not.
	sum := sha256.Sum256([]byte(d.Store))
	roots, _ := filepath.Glob("/dev/shm/ctrfs-staging-" + hex.EncodeToString(sum[:6]) + "*")
	for _, root := range roots {
		os.RemoveAll(root)
	}
	if d.cgroup2Only {
		// The shared bind mount of the daemon's directory (see
		// Cgroup2Only); its copy in the daemon's namespace went with
		// the last process there.
		if err := syscall.Unmount(d.base(), syscall.MNT_DETACH); err != nil {
			d.t.Errorf("unmount %s: %v", d.base(), err)
		}
	}
}

// Path is a path inside the mount.
func (d *Daemon) Path(parts ...string) string {
	return filepath.Join(append([]string{d.Mount}, parts...)...)
}

// Sh runs a bash script in the mount; it returns stdout and the error
// (with stderr) of a non-zero exit.
func (d *Daemon) Sh(script string) (string, error) {
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = d.Mount
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%q: %v: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// MustSh is Sh that fails the test on a non-zero exit.
func (d *Daemon) MustSh(script string) string {
	d.t.Helper()
	out, err := d.Sh(script)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// ShFails runs a script that must fail with the given message in its stderr
// (strerror of the expected errno, as the shell prints it).
func (d *Daemon) ShFails(script, wantErr string) {
	d.t.Helper()
	_, err := d.Sh(script)
	if err == nil {
		d.t.Fatalf("%q succeeded; want failure %q", script, wantErr)
	}
	if !strings.Contains(err.Error(), wantErr) {
		d.t.Fatalf("%q: got %v; want %q", script, err, wantErr)
	}
}

// Read returns a file of the mount, trimmed.
func (d *Daemon) Read(parts ...string) string {
	d.t.Helper()
	b, err := os.ReadFile(d.Path(parts...))
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Info parses containers/NAME/info.
func (d *Daemon) Info(name string) map[string]string {
	d.t.Helper()
	return parseKV(d.Read("containers", name, "info"))
}

func parseKV(s string) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			kv[k] = strings.TrimSpace(v)
		}
	}
	return kv
}

// Create makes and starts a container of the default template, and waits
// until its counter service answers.
func (d *Daemon) CreateRunning(name string) (ip string) {
	d.t.Helper()
	d.MustSh("mkdir containers/" + name + " && echo start > containers/" + name + "/ctl")
	ip = d.Info(name)["ipv4"]
	if ip == "" {
		d.t.Fatalf("container %s has no ipv4 in info", name)
	}
	Count(d.t, ip)
	return ip
}

// Count asks the default template's service for its count, retrying for up
// to 15 s while the service comes up.
func Count(t *testing.T, ip string) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		n, err := tryCount(ip)
		if err == nil {
			return n
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("counter service on %s:8080 does not answer: %v", ip, lastErr)
	return 0
}

// CountsPast waits (up to a minute: the machine may be loaded) until the
// counter on ip is past n, and fails the test if it never gets there: the
// processes live and count, whatever their pace.
func CountsPast(t *testing.T, ip string, n int, what string) int {
	t.Helper()
	var got int
	waitLong(t, fmt.Sprintf("the counter to pass %d (%s)", n, what), time.Minute, func() bool {
		c, err := tryCount(ip)
		got = c
		return err == nil && c > n
	})
	return got
}

func tryCount(ip string) (int, error) {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "8080"), time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read: %v (got %q)", err, line)
	}
	return strconv.Atoi(strings.TrimSpace(line))
}

// isMounted reports whether dir is a mount point.
func isMounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}
