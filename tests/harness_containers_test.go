package tests

// Containers: the default template's busybox containers that most tests
// make, and their counter service on port 8080, whose count tells a
// container restored with its memory from one started afresh.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ctrfs/internal/counter"
)

// CreateRunning makes and starts a container of the default template, and
// waits until its counter service answers.
func (d *Daemon) CreateRunning(name string) (ip string) {
	d.t.Helper()
	return d.createRunning(name, "mkdir containers/"+name)
}

// CreatePrivilegedRunning is CreateRunning of a privileged container, for
// a test of what only root on the host does (plain mkdir makes
// unprivileged ones).
func (d *Daemon) CreatePrivilegedRunning(name string) (ip string) {
	d.t.Helper()
	return d.createRunning(name, "echo 'create "+name+" --privileged' > ctl")
}

// createRunning makes a container with the shell command create, starts
// it and waits for its count.
func (d *Daemon) createRunning(name, create string) (ip string) {
	d.t.Helper()
	d.MustSh(create + " && echo start > containers/" + name + "/ctl")
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

// tryCount asks the counter service on ip:8080 for its count, once.
func tryCount(ip string) (int, error) { return counter.Ask(ip, time.Second, 2*time.Second) }

// countFrom checks that the service's count did not start again: the
// processes kept their memory (a cold start begins from 1 again).
func countFrom(t *testing.T, ip string, before int, when string) int {
	t.Helper()
	n := Count(t, ip)
	if n < before {
		t.Fatalf("count went from %d to %d %s: the processes lost their state", before, n, when)
	}
	return n
}

// rootfs is a path in the rootfs of a container, on the host.
func (d *Daemon) rootfs(name string, parts ...string) string {
	return filepath.Join(append([]string{d.LXCPath, name, "rootfs"}, parts...)...)
}

// runInside builds the Go command in pkg (a directory of tests/, e.g.
// "./lockhold"), static, into the busybox container name's rootfs as /BIN
// and has its init keep it running (respawned from inittab), as a
// service of the container would be.
func (d *Daemon) runInside(t *testing.T, name, pkg string) {
	t.Helper()
	bin := filepath.Base(pkg)
	build := exec.Command("go", "build", "-o", d.rootfs(name, bin), pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v: %s", pkg, err, out)
	}
	appendFile(t, d.rootfs(name, "etc/inittab"), "::respawn:/"+bin+"\n")
	d.MustSh("lxc-attach -P " + d.LXCPath + " -n " + name + " -- kill -HUP 1")
}

// bothKinds runs f as a subtest for a privileged and an unprivileged
// container, kind being create's flag for it.
func bothKinds(t *testing.T, f func(t *testing.T, kind string)) {
	for _, kind := range []string{"--privileged", "--unprivileged"} {
		t.Run(strings.TrimPrefix(kind, "--"), func(t *testing.T) { f(t, kind) })
	}
}
