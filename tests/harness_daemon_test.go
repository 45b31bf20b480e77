package tests

// The daemon under test: `ctrfs serve` on a mount, LXC path and store of
// its own, started, killed and restarted by the test, with the shell
// commands, reads and waits that drive it through its mount.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ctrfs/internal/testenv"
	"ctrfs/internal/tree"
)

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
	cgroup2Only                 bool   // see Cgroup2Only
	netns                       string // the network namespace it runs in (harness_netns_test.go), if any
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
	return newDaemonOn(t, name, "", extra...)
}

// newDaemonOn is NewDaemon with its LXC path in lxcPath if that is not
// empty (harness_btrfs_test.go), which outlives the daemon's cleanup.
func newDaemonOn(t *testing.T, name, lxcPath string, extra ...string) *Daemon {
	t.Helper()
	testenv.NeedTool(t, "lxc-start", "LXC: make deps installs it")
	testenv.NeedTool(t, "criu", "make deps installs it")
	base := t.TempDir()
	// New containers are unprivileged (issue 21): their mapped root must
	// pass through the test's 0700 temporary directories to the rootfs.
	searchable(t, base)
	d := &Daemon{t: t, Name: name,
		Mount:   filepath.Join(base, "mnt"),
		LXCPath: filepath.Join(base, "lxc"),
		Store:   filepath.Join(base, "store"),
		logPath: filepath.Join(base, "daemon.log"),
	}
	if lxcPath != "" {
		d.LXCPath = lxcPath
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
	if d.netns != "" {
		d.cmd = d.netnsCommand(bin)
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
		d.inNetns("lxc-stop", "-P", d.LXCPath, "-n", e.Name(), "-k").Run()
		d.inNetns("lxc-destroy", "-P", d.LXCPath, "-n", e.Name(), "-f").Run()
	}
	// The memory staging roots of the daemon's store (ops/staging):
	// a daemon killed by a test leaves its own behind, empty or not.
	sum := sha256.Sum256([]byte(d.Store))
	roots, _ := filepath.Glob("/dev/shm/ctrfs-staging-" + hex.EncodeToString(sum[:6]) + "*")
	for _, root := range roots {
		os.RemoveAll(root)
	}
	if d.cgroup2Only || d.netns != "" {
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
	return tree.ParseKV(d.Read("containers", name, "info"))
}

// WantStatus fails the test unless DIR/status (DIR inside the mount, such
// as containers/c1 or hosts/tollana/c1) reads want; when says at what point
// of the test, for the message.
func (d *Daemon) WantStatus(dir, want, when string) {
	d.t.Helper()
	path := d.Path(dir)
	st, err := tree.Status(path)
	if err != nil {
		d.t.Fatalf("%s: %v", when, err)
	}
	if st != want {
		d.t.Fatalf("%s: %s on %s is %s, want %s%s", when, dir, d.Name, st, want, tree.ErrorSuffix(path))
	}
}

// Background starts a bash script in the mount without waiting for it.
func (d *Daemon) Background(script string) *exec.Cmd {
	d.t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = d.Mount
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	return cmd
}

// waitForHelpers waits until no `ctrfs lxc-helper` of this daemon's LXC
// path runs: a killed daemon's helper finishes its CRIU call on its own.
func (d *Daemon) waitForHelpers() {
	d.t.Helper()
	waitFor(d.t, "helpers of the killed daemon", func() bool {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			args := strings.Split(string(b), "\x00")
			if len(args) > 2 && args[1] == "lxc-helper" && contains(args, d.LXCPath) {
				return false
			}
		}
		return true
	})
}

// readEvents follows the daemon's `events` from now on, until the test
// ends: the test causes events after it returns and waits for them.
func (d *Daemon) readEvents() *events {
	d.t.Helper()
	e, err := tree.FollowEvents(d.Mount)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(e.Close)
	return &events{e}
}

// events is a daemon's tree.Events with the tests' wait.
type events struct{ *tree.Events }

// waitFor waits up to 10 s for an event whose line contains substr, such
// as "dakara c1 move ok", and fails the test if none comes.
func (e *events) waitFor(t *testing.T, substr string) {
	t.Helper()
	if err := e.Wait(substr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// fakeCRIU puts a `criu` first in PATH that wraps the real one: with
// version set it claims that version; with failRestore it fails restores.
func fakeCRIU(t *testing.T, version string, failRestore bool) string {
	t.Helper()
	var script string
	if version != "" {
		script += fmt.Sprintf("[ \"$1\" = --version ] && { echo 'Version: %s'; exit 0; }\n", version)
	}
	if failRestore {
		script += "for a in \"$@\"; do [ \"$a\" = restore ] && { echo 'injected restore failure' >&2; exit 1; }; done\n"
	}
	return wrapCRIU(t, script)
}

// noLazyCRIU puts a `criu` first in PATH that fails lazy dumps as CRIU
// does where pipes cannot grow (see moves.LazyPages).
func noLazyCRIU(t *testing.T) string {
	t.Helper()
	return wrapCRIU(t, "for a in \"$@\"; do [ \"$a\" = --lazy-pages ] && { echo 'injected: lazy pages refused' >&2; exit 1; }; done\n")
}

// wrapCRIU writes a `criu` that runs script, then the real criu with the
// same arguments, and returns the PATH, for a daemon's Env, that puts it
// first.
func wrapCRIU(t *testing.T, script string) string {
	t.Helper()
	real := testenv.NeedTool(t, "criu", "make deps installs it")
	dir := t.TempDir()
	script = "#!/bin/sh\n" + script + "exec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "criu"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return "PATH=" + dir + ":" + os.Getenv("PATH")
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
