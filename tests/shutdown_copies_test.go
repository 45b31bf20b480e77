package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownWithMountCopies: daemons asked to stop right after a
// post-copy move exit at once, although copies of their mounts live on in
// another mount namespace, as they do in those LXC makes for CRIU (a
// post-copy move's page server, a restore) and in any process started
// with a mount namespace of its own. The connection ended only with the
// last copy, and the daemon waited for it: SIGTERM went unanswered.
func TestShutdownWithMountCopies(t *testing.T) {
	a, b := twoHosts(t)
	ip := a.CreateRunning("c1")
	before := Count(t, ip)
	a.MustSh("echo 'move tollana --post-copy' > containers/c1/ctl")
	wantMoved(t, "c1", a, b, "after the post-copy move")
	countFrom(t, ip, before, "over the post-copy move")

	holder := holdMountCopies(t, a.Mount, b.Mount)
	for _, d := range []*Peer{b, a} {
		start := time.Now()
		if err := d.Stop(); err != nil {
			t.Fatalf("stop %s while pid %d holds a copy of its mount: %v", d.Name, holder, err)
		}
		t.Logf("%s exited %.1f s after SIGTERM", d.Name, time.Since(start).Seconds())
		if isMounted(d.Mount) {
			t.Errorf("%s is still mounted after its daemon exited", d.Mount)
		}
	}
}

// TestShutdownAnswersWithMountCopies: SIGTERM while an operation is under
// way, with a copy of the mount in another mount namespace: the operation
// still finishes and its caller gets the answer, and the daemon, which
// then ends the connection that the copy kept, exits.
func TestShutdownAnswersWithMountCopies(t *testing.T) {
	d, pause := pausingSnapshots(t)
	holder := holdMountCopies(t, d.Mount)

	snapshotUnderSIGTERM(t, d, pause)
	d.waitStopped(20*time.Second, fmt.Sprintf("of the snapshot it waited for, while pid %d holds a copy of its mount", holder))
}

// holdMountCopies starts a process in a mount namespace of its own, made
// now, so that it holds a copy of each of mounts, and returns its pid. The
// other ctrfs mounts that it would copy too (other tests' daemons) it
// detaches first: it holds this test's alone. It is killed when the test
// ends.
func holdMountCopies(t *testing.T, mounts ...string) int {
	t.Helper()
	script := `sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \([^ ]*\) .* - fuse\.ctrfs .*/\1/p' /proc/self/mountinfo |
while read -r m; do
	case " $KEEP " in *" $m "*) ;; *) umount -l "$m" ;; esac
done
echo ready
exec sleep 600`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "KEEP="+strings.Join(mounts, " "))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		cmd.Wait()
	})
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("the process holding copies of the mounts did not start: %q", line)
	}
	mi, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if !strings.Contains(string(mi), " "+m+" ") {
			t.Fatalf("pid %d holds no copy of %s:\n%s", pid, m, mi)
		}
	}
	return pid
}
