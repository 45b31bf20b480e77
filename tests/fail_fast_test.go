package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 19, item 3: what `check` refuses without a dump is refused by
// snapshot --stateful, move and evacuate before they archive or send
// anything, and every failure's `error` names the cause.

// nonRootTask starts a task of uid 65534 in the container: this host's
// root lacks CAP_SYS_RESOURCE, so CRIU may not read its limits and every
// dump fails ("Can't get rlimit"), which `check` finds without dumping.
func (d *Daemon) nonRootTask(name, marker string) {
	d.t.Helper()
	d.MustSh(fmt.Sprintf("lxc-attach -P %s -n %s -u 65534 -g 65534 -- /bin/sh -c 'setsid %s </dev/null >/dev/null 2>&1 &'",
		d.LXCPath, name, marker))
	waitFor(d.t, marker+" in "+name, func() bool {
		out, _ := d.Sh("lxc-attach -P " + d.LXCPath + " -n " + name + " -- ps")
		return strings.Contains(out, marker)
	})
}

// wantRefused checks the error of an operation that check's explanation
// refused: the task and the fix, and c1 running on with its count.
func wantRefused(t *testing.T, d *Peer, ip string, before int, what string) int {
	t.Helper()
	e := d.Read("containers/c1/error")
	for _, want := range []string{"cannot be checkpointed", "uid 65534", "CAP_SYS_RESOURCE"} {
		if !strings.Contains(e, want) {
			t.Errorf("error after %s lacks %q: %s", what, want, e)
		}
	}
	d.WantStatus("containers/c1", "RUNNING", "after "+what)
	return CountsPast(t, ip, before, "after "+what)
}

// TestFailFast: a container with a task that CRIU cannot dump here is
// refused with EOPNOTSUPP and check's explanation by snapshot --stateful
// (no snapshot left), by a live, a post-copy and an mv move (no chunk
// sent to the target) and by evacuate, which moves the other container
// and names the refused one, which stays RUNNING here.
func TestFailFast(t *testing.T) {
	a, b := twoHosts(t)
	// Privileged: the task of uid 65534 blocks only a privileged
	// container's checkpoint where root lacks CAP_SYS_RESOURCE.
	ip := a.CreatePrivilegedRunning("c1")
	a.nonRootTask("c1", "sleep 100004")
	n := Count(t, ip)

	a.ShFails("echo 'snapshot s1 --stateful' > containers/c1/ctl", "Operation not supported")
	n = wantRefused(t, a, ip, n, "snapshot --stateful")
	if ls := a.MustSh("ls containers/c1/snapshots"); strings.TrimSpace(ls) != "" {
		t.Errorf("snapshots after a refused snapshot: %q", ls)
	}

	for _, move := range []string{"echo 'move tollana' > containers/c1/ctl",
		"echo 'move tollana --post-copy' > containers/c1/ctl", "mv containers/c1 hosts/tollana/"} {
		a.ShFails(move, "Operation not supported")
		n = wantRefused(t, a, ip, n, move)
		if c := b.chunkCount(); c != 0 {
			t.Errorf("after %s, the target holds %d chunks: something was sent", move, c)
		}
		if b.has("c1") {
			t.Fatalf("after %s, the target has c1", move)
		}
	}

	ip2 := a.CreateRunning("c2")
	a.ShFails("echo evacuate > ctl", "Input/output error")
	e := a.Read("error")
	if !strings.Contains(e, "1 of 2 moves failed") || !strings.Contains(e, "c1 to tollana") || !strings.Contains(e, "cannot be checkpointed") {
		t.Errorf("error of the evacuation: %s", e)
	}
	wantRefused(t, a, ip, n, "evacuate")
	wantMoved(t, "c2", a, b, "after the evacuation")
	Count(t, ip2)
	b.MustSh("echo stop > containers/c2/ctl")
	a.MustSh("echo stop > containers/c1/ctl")
}

// failingActionScript writes a CRIU action script that fails CRIU at step
// (pre-dump, pre-restore) where the variable env is set in CRIU's
// environment (wrapCRIU sets it on one host), or everywhere if env is "":
// a cause that `check` cannot see without the dump.
func failingActionScript(t *testing.T, step, env string) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "fail.sh")
	cond := "true"
	if env != "" {
		cond = fmt.Sprintf("[ -n \"$%s\" ]", env)
	}
	body := fmt.Sprintf("#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = %s ] && %s && { echo 'refused by the test' >&2; exit 3; }\nexit 0\n", step, cond)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// wantCause checks that an error names a cause, never LXC's empty
// "criu output:".
func wantCause(t *testing.T, e, want, what string) {
	t.Helper()
	if !strings.Contains(e, want) || strings.Contains(e, "criu output:;") || strings.HasSuffix(strings.TrimSpace(e), ":") {
		t.Errorf("error after %s names no cause (want %q): %s", what, want, e)
	}
}

// TestMoveFailureNamesCause: moves that fail past the fast check, on a
// cause only CRIU finds (an action script of the container's criu file),
// name it in the source's `error`: a dump failing on the source (live and
// post-copy; the post-copy's error was "criu output:" and nothing after),
// and a restore failing on the target, whose cause the source's error
// gives (not the lazy-pages daemon's "short read" it ends in).
func TestMoveFailureNamesCause(t *testing.T) {
	a, b := twoHostsTargetEnv(t, wrapCRIU(t, "export CTRFS_TEST_TARGET=1\n"))
	// Privileged: for an unprivileged container the fast check refuses a
	// post-copy move to the target whose criu, this wrapper, shows no
	// /dev/userfaultfd (EOPNOTSUPP), before any dump could fail.
	ip := a.CreatePrivilegedRunning("c1")
	n := Count(t, ip)
	moves := []string{"echo 'move tollana --post-copy' > containers/c1/ctl", "echo 'move tollana' > containers/c1/ctl"}

	criuOptions(a.Daemon, "dump: action-script "+failingActionScript(t, "pre-dump", ""))
	for _, move := range moves {
		a.ShFails(move, "Input/output error")
		wantCause(t, a.Read("containers/c1/error"), "action script", move+" whose dump fails")
		stillHere(t, a, b, ip, n)
		n = Count(t, ip)
	}

	criuOptions(a.Daemon, "restore: action-script "+failingActionScript(t, "pre-restore", "CTRFS_TEST_TARGET"))
	for _, move := range moves {
		a.ShFails(move, "Input/output error")
		e := a.Read("containers/c1/error")
		wantCause(t, e, "action script", move+" whose restore fails on the target")
		if !strings.Contains(e, "tollana could not take c1") {
			t.Errorf("error after %s does not say the target failed: %s", move, e)
		}
		stillHere(t, a, b, ip, n)
		n = Count(t, ip)
	}
	a.MustSh("echo stop > containers/c1/ctl")
}
