package tests

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runProgram runs a program and returns its stdout, stderr and exit code.
func runProgram(t *testing.T, env []string, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out.String(), errb.String(), 0
}

// TestCommandLine: help shows flags as they are typed, version names CRIU
// and LXC, and an unknown command, flag or argument fails with the usage and
// exit code 2.
func TestCommandLine(t *testing.T) {
	out, _, code := runProgram(t, nil, ctrfsBin, "serve", "--help")
	if code != 0 {
		t.Fatalf("serve --help: exit %d", code)
	}
	for _, want := range []string{"usage: ctrfs serve", "  --mount DIR\n", "  --lxcpath DIR\n",
		"  --secret-file FILE\n", "(default /mnt/ctrfs)"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, out)
		}
	}
	if regexp.MustCompile(`(?m)^\s+-[a-z]`).MatchString(out) {
		t.Errorf("serve --help shows a flag with one dash:\n%s", out)
	}

	out, _, code = runProgram(t, nil, ctrfsBin, "version")
	criu, _ := exec.Command("criu", "--version").Output()
	lxc, _ := exec.Command("lxc-start", "--version").Output()
	criuVersion := regexp.MustCompile(`Version:\s*(\S+)`).FindSubmatch(criu)
	if code != 0 || criuVersion == nil {
		t.Fatalf("version: exit %d; criu --version: %q", code, criu)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"criu " + string(criuVersion[1]), "lxc " + strings.TrimSpace(string(lxc))}
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ctrfs ") || lines[1] != want[0] || lines[2] != want[1] ||
		!strings.HasPrefix(lines[3], "post-copy: ") {
		t.Errorf("version printed %q; want ctrfs VERSION, then %q, then post-copy: ...", lines, want)
	}

	for _, args := range [][]string{
		{"serve", "--bogus"},
		{"serve", "--mount", "/tmp/x", "extra"},
		{"serve", "--migrate-port", "x"},
		{"version", "extra"},
		{"probe", "--secret-file", "/dev/null"},
		{"frobnicate"},
		{},
	} {
		_, stderr, code := runProgram(t, nil, ctrfsBin, args...)
		if code != 2 || !strings.Contains(stderr, "usage:") {
			t.Errorf("ctrfs %q: exit %d; want 2 and the usage on stderr:\n%s", args, code, stderr)
		}
		if len(args) > 1 && args[1] == "--bogus" && !strings.Contains(stderr, "--bogus") {
			t.Errorf("ctrfs %q does not name the flag as typed:\n%s", args, stderr)
		}
	}
}

// makeInstall runs `make install` into a fresh DESTDIR and returns it, with
// the installed unit and settings file.
func makeInstall(t *testing.T) (destdir string) {
	t.Helper()
	destdir = t.TempDir()
	if out, err := exec.Command("make", "-C", "..", "install", "DESTDIR="+destdir).CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	return destdir
}

const (
	installedUnit     = "/usr/local/lib/systemd/system/ctrfs.service"
	installedSettings = "/etc/default/ctrfs"
)

// filesUnder lists the regular files under dir, relative to it.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var list []string
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			list = append(list, strings.TrimPrefix(path, dir))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(list)
	return list
}

// TestInstall: `make install` puts the binary, the unit, its settings and
// the man pages in place, the unit passes systemd-analyze verify, the
// settings are flags `ctrfs serve` takes, and `make uninstall` removes
// exactly what install put there.
func TestInstall(t *testing.T) {
	root := makeInstall(t)
	want := []string{installedSettings, "/usr/local/bin/ctrfs", installedUnit,
		"/usr/local/share/man/man5/ctrfs.5", "/usr/local/share/man/man8/ctrfs.8"}
	if got := filesUnder(t, root); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("make install put %q; want %q", got, want)
	}

	// The Makefile stamps the version: git describe.
	describe, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ := runProgram(t, nil, root+"/usr/local/bin/ctrfs", "version")
	if first, _, _ := strings.Cut(out, "\n"); !strings.HasPrefix(first, "ctrfs "+strings.TrimSpace(string(describe))+" ") {
		t.Errorf("installed ctrfs version says %q; want git describe %q", first, describe)
	}

	// verify needs ExecStart's program at its path and the man pages of
	// Documentation=: a copy of the unit runs the DESTDIR's binary, and
	// man looks in the DESTDIR's man pages.
	unit := readText(t, root+installedUnit)
	execStart := unitSetting(t, unit, "ExecStart")
	if !strings.HasPrefix(execStart, "/usr/local/bin/ctrfs serve ") {
		t.Fatalf("ExecStart=%s; want /usr/local/bin/ctrfs serve ...", execStart)
	}
	copyDir := t.TempDir()
	verifyCopy := strings.Replace(unit, "ExecStart=/", "ExecStart="+root+"/", 1)
	if err := os.WriteFile(filepath.Join(copyDir, "ctrfs.service"), []byte(verifyCopy), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 after warnings (an unknown key is ignored): any line
	// about the unit fails the test; lines about the host's units do not.
	stdout, stderr, code := runProgram(t, []string{"MANPATH=" + root + "/usr/local/share/man"},
		"systemd-analyze", "verify", filepath.Join(copyDir, "ctrfs.service"))
	if code != 0 || strings.Contains(stderr, "ctrfs") {
		t.Errorf("systemd-analyze verify: exit %d\n%s%s", code, stdout, stderr)
	}

	// The shipped settings are flags serve accepts: parsing stops at the
	// first bad one with exit 2, before --help could exit 0.
	args := expandExec(t, execStart, envFile(t, root+installedSettings))
	if _, stderr, code := runProgram(t, nil, root+args[0], append(args[1:], "--help")...); code != 0 {
		t.Errorf("the shipped settings %q are not flags of ctrfs serve: exit %d\n%s", args, code, stderr)
	}

	if out, err := exec.Command("make", "-C", "..", "uninstall", "DESTDIR="+root).CombinedOutput(); err != nil {
		t.Fatalf("make uninstall: %v\n%s", err, out)
	}
	if left := filesUnder(t, root); len(left) != 0 {
		t.Errorf("make uninstall left %q", left)
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unitSetting is the value of KEY= in a unit file.
func unitSetting(t *testing.T, unit, key string) string {
	t.Helper()
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			return v
		}
	}
	t.Fatalf("the unit has no %s=", key)
	return ""
}

// envFile reads KEY=VALUE lines as systemd's EnvironmentFile= does: comments
// and blank lines skipped, one pair of surrounding quotes removed.
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	env := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readText(t, path)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if line == "" || line[0] == '#' || line[0] == ';' || !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	return env
}

// expandExec expands an ExecStart= command line as systemd does: $NAME
// becomes the variable's words (split at white space), ${NAME} one word.
func expandExec(t *testing.T, cmdline string, env map[string]string) []string {
	t.Helper()
	var args []string
	for _, w := range strings.Fields(cmdline) {
		switch {
		case strings.HasPrefix(w, "${") && strings.HasSuffix(w, "}"):
			args = append(args, env[w[2:len(w)-1]])
		case strings.HasPrefix(w, "$"):
			args = append(args, strings.Fields(env[w[1:]])...)
		default:
			args = append(args, w)
		}
	}
	return args
}

// notification is one sd_notify datagram, and whether the mount answered
// when it arrived.
type notification struct {
	state    string
	answered bool
}

// listenNotify is systemd's side of Type=notify: a datagram socket for
// NOTIFY_SOCKET. On each message it looks at the mount at once.
func listenNotify(t *testing.T, mount string) (path string, msgs <-chan notification) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan notification, 16)
	go func() {
		defer close(ch)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			_, statErr := os.Stat(filepath.Join(mount, "host"))
			ch <- notification{state: string(buf[:n]), answered: statErr == nil}
		}
	}()
	return path, ch
}

// waitNotified waits for a message that has the line want.
func waitNotified(t *testing.T, msgs <-chan notification, want string) notification {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case n, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed before %s", want)
			}
			for _, line := range strings.Split(n.state, "\n") {
				if line == want {
					return n
				}
			}
		case <-timeout:
			t.Fatalf("no %s on NOTIFY_SOCKET within 30s", want)
		}
	}
}

// TestServiceRestart runs the daemon as the installed unit would (its
// ExecStart with the settings file's $CTRFS_OPTS, and a NOTIFY_SOCKET):
// READY=1 comes once the mount answers, STOPPING=1 on SIGTERM, and a
// container keeps running while the daemon is gone and under the next one,
// its counter going on.
func TestServiceRestart(t *testing.T) {
	root := makeInstall(t)
	d := NewDaemon(t, "dakara")
	// The shipped settings file with this test's flags in CTRFS_OPTS.
	settings := root + installedSettings
	opts := regexp.MustCompile(`(?m)^CTRFS_OPTS=.*$`)
	shipped := readText(t, settings)
	if !opts.MatchString(shipped) {
		t.Fatalf("%s sets no CTRFS_OPTS:\n%s", installedSettings, shipped)
	}
	mine := opts.ReplaceAllLiteralString(shipped, `CTRFS_OPTS="`+strings.Join(d.args[1:], " ")+`"`)
	if err := os.WriteFile(settings, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	unit := readText(t, root+installedUnit)
	if got := unitSetting(t, unit, "EnvironmentFile"); strings.TrimPrefix(got, "-") != installedSettings {
		t.Fatalf("EnvironmentFile=%s; want %s", got, installedSettings)
	}
	args := expandExec(t, unitSetting(t, unit, "ExecStart"), envFile(t, settings))
	d.Bin, d.args = root+args[0], args[1:]

	socket, msgs := listenNotify(t, d.Mount)
	d.Env = []string{"NOTIFY_SOCKET=" + socket}
	d.Start()
	if n := waitNotified(t, msgs, "READY=1"); !n.answered {
		t.Fatalf("READY=1 came before the mount answered")
	}

	ip := d.CreateRunning("c1")
	pid := d.Info("c1")["pid"]
	before := Count(t, ip)
	if err := d.Stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	waitNotified(t, msgs, "STOPPING=1")

	// No daemon now: the container runs on.
	state, err := exec.Command("lxc-info", "-P", d.LXCPath, "-n", "c1", "-s", "-H").Output()
	if strings.TrimSpace(string(state)) != "RUNNING" {
		t.Fatalf("c1 with the daemon stopped: %q %v", state, err)
	}
	between := countPast(t, ip, before, "with the daemon stopped")

	d.Start()
	if n := waitNotified(t, msgs, "READY=1"); !n.answered {
		t.Fatalf("READY=1 came before the mount answered, after the restart")
	}
	d.WantStatus("containers/c1", "RUNNING", "under the new daemon")
	if now := d.Info("c1")["pid"]; now != pid {
		t.Errorf("c1's init was pid %s, now %s: it was restarted", pid, now)
	}
	countPast(t, ip, between, "under the new daemon")
}

// countPast waits until the counter service on ip counts past n, and
// returns what it said.
func countPast(t *testing.T, ip string, n int, when string) int {
	t.Helper()
	var got int
	waitFor(t, "the counter to go on past "+strconv.Itoa(n)+" "+when, func() bool {
		c, err := tryCount(ip)
		got = c
		return err == nil && c > n
	})
	return got
}
