// Package tests drives real ctrfs daemons through real mounts with real
// shell commands, against real LXC containers (and, for checkpoints, real
// CRIU). It needs root and what `make deps` installs.
//
// The harness is in files of their own: this one sets the run up (TestMain,
// lanes, what every test waits with), harness_daemon_test.go is a daemon
// and the commands that drive it, harness_peers_test.go daemons in one
// cluster, harness_containers_test.go the containers they run and their
// counter service, harness_cgroup2_test.go a daemon on a cgroup2-only view
// of the host.
package tests

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ctrfs/internal/testenv"
	"ctrfs/ops/network"
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
	// Without root there is nothing here to run: the tests are skipped,
	// as a unit test without root is (internal/testenv), so that `go test
	// ./...` as another user passes and says why. Under CI (CI=true) that
	// is a broken setup instead, and fails: a CI run that tested nothing
	// must not pass. (A test of a daemon also skips where LXC or CRIU is
	// missing: NewDaemon.)
	if os.Geteuid() != 0 {
		const why = "end-to-end tests need root (they mount FUSE and run LXC and CRIU)"
		if testenv.CI() {
			fmt.Fprintln(os.Stderr, "tests/:", why, "and CI=true: that is a broken setup")
			os.Exit(1)
		}
		fmt.Println("tests/: every test skipped:", why)
		os.Exit(0)
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
		network.Network{Bridge: testBridge, Subnet: netip.MustParsePrefix(testSubnet)}.RemoveGateway()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// lazyPipeBytes is lazypages.PipeBytes: post-copy moves need pipes that big.
const lazyPipeBytes = 4 << 20

// raisePipeMaxSize lets the run's daemons do CRIU lazy pages where root
// lacks CAP_SYS_RESOURCE (these machines: see moves.LazyPages), by raising
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

// waitFor waits up to 10 s for cond, and fails the test if it never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitLong(t, what, 10*time.Second, cond)
}

// waitLong waits up to timeout for cond, for what takes longer on a
// loaded machine, and fails the test if it never holds.
func waitLong(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exists says whether there is a file (of any kind) at path.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
