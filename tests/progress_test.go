package tests

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"ctrfs/internal/tree"
)

// TestMoveProgress: while a move runs, info on the source shows op, phase
// and progress (bytes done of bytes expected), and events gets a line as
// each phase starts.
func TestMoveProgress(t *testing.T) {
	a, b := twoHosts(t)
	bigContainer(t, a) // 256 MiB of rootfs to send: the move takes a while
	events := a.readEvents()
	// A refused command's event shows that the reader is open (it sees
	// only the events after its open): refused again until one shows.
	waitFor(t, "the events reader", func() bool {
		a.ShFails("echo bogus > containers/c1/ctl", "Invalid argument")
		return strings.Contains(events.Text(), "dakara c1 unknown-command failed")
	})

	move := a.Background("echo 'move tollana' > containers/c1/ctl")
	done := make(chan error, 1)
	go func() { done <- move.Wait() }()
	var seen []string // the op/phase/progress that reads showed
	var moveErr error
	for running := true; running; {
		select {
		case moveErr = <-done:
			running = false
		default:
		}
		data, err := os.ReadFile(a.Path("containers", "c1", "info"))
		if err != nil {
			continue // gone from here once the move is done
		}
		info := tree.ParseKV(string(data))
		if info["op"] == "" {
			continue
		}
		checkProgress(t, info, "move", len(seen) == 0)
		if info["phase"] == "starting" {
			continue
		}
		seen = append(seen, info["phase"]+" "+info["progress"])
	}
	if moveErr != nil {
		t.Fatalf("move: %v", moveErr)
	}
	if len(seen) == 0 {
		t.Fatal("no read of info during the move showed op, phase and progress")
	}
	sending := false
	for _, s := range seen {
		if f := strings.Fields(s); strings.HasPrefix(f[0], "precopy") && f[1] != "0" {
			sending = true
		}
	}
	if !sending {
		t.Errorf("no read showed bytes of the precopy done: %v", seen)
	}
	t.Logf("%d reads showed progress, e.g. %q … %q", len(seen), seen[0], seen[len(seen)-1])
	for _, phase := range []string{"check", "precopy", "freeze", "handover", "commit"} {
		events.waitFor(t, "dakara c1 move-"+phase+" started ")
	}
	events.waitFor(t, "dakara c1 move ok")
	if info := a.Path("containers", "c1"); exists(info) {
		t.Error("c1 is still on the source")
	}
	b.MustSh("echo stop > containers/c1/ctl")
}

// checkProgress fails the test unless info, read while op ran, shows op,
// a phase (`starting` only if starting: before its first step) and
// progress as DONE of EXPECTED.
func checkProgress(t *testing.T, info map[string]string, op string, starting bool) {
	t.Helper()
	if info["op"] != op || info["phase"] == "" || (info["phase"] == "starting" && !starting) {
		t.Fatalf("info during %s shows op %q phase %q", op, info["op"], info["phase"])
	}
	var done, expected int64
	var err error
	f := strings.Fields(info["progress"])
	if len(f) == 3 && f[1] == "of" {
		done, _ = strconv.ParseInt(f[0], 10, 64)
		expected, err = strconv.ParseInt(f[2], 10, 64)
	}
	if len(f) != 3 || f[1] != "of" || err != nil || done > expected {
		t.Fatalf("progress during %s: %q; want DONE of EXPECTED", op, info["progress"])
	}
}

// TestStatefulProgress: while stop-stateful, a start from saved state, a
// stateful snapshot and restore NAME run on a container that holds 256 MiB
// (memhog), info shows op, phase and progress, the phases in the order
// ctrfs(5) gives; once the operation is done those lines are gone, and
// memhog lives on with its memory.
func TestStatefulProgress(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")
	h := startMemhog(t, d, "c1", 256)
	for _, c := range []struct {
		cmd, op string
		order   []string // the phases in the order they come
		must    []string // those that last long enough to be seen
	}{
		{"stop-stateful", "stop-stateful", []string{"dump", "store", "rehearse"}, []string{"dump"}},
		{"start", "start", []string{"restore"}, []string{"restore"}},
		{"snapshot s1 --stateful", "snapshot", []string{"archive", "store", "dump", "store"}, []string{"dump"}},
		{"restore s1", "restore", []string{"unpack", "restore"}, []string{"unpack", "restore"}},
	} {
		seen := watchProgress(t, d, "c1", c.cmd, c.op)
		t.Logf("%s: phases seen %v", c.cmd, seen)
		if !isSubsequence(seen, c.order) {
			t.Errorf("%s: phases %v; want them in the order %v", c.cmd, seen, c.order)
		}
		for _, p := range c.must {
			if !contains(seen, p) {
				t.Errorf("%s: no read of info showed phase %s (saw %v)", c.cmd, p, seen)
			}
		}
		for _, k := range []string{"op", "phase", "progress"} {
			if v, ok := d.Info("c1")[k]; ok {
				t.Errorf("after %s, info still shows %s: %q", c.cmd, k, v)
			}
		}
		if c.cmd != "stop-stateful" {
			h.survived(t, "after "+c.cmd)
		}
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// watchProgress writes cmd to the container's ctl and reads its info until
// the write returns, checking each read that shows an operation; it
// returns the phases shown, each once per stretch in which it showed.
func watchProgress(t *testing.T, d *Daemon, name, cmd, op string) []string {
	t.Helper()
	ctl := d.Background("echo '" + cmd + "' > containers/" + name + "/ctl")
	done := make(chan error, 1)
	go func() { done <- ctl.Wait() }()
	var seen []string
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v; error: %s", cmd, err, d.Read("containers", name, "error"))
			}
			return seen
		default:
		}
		time.Sleep(5 * time.Millisecond) // reads of its own must not slow it much
		data, err := os.ReadFile(d.Path("containers", name, "info"))
		if err != nil {
			t.Fatal(err)
		}
		info := tree.ParseKV(string(data))
		if info["op"] == "" {
			continue
		}
		checkProgress(t, info, op, len(seen) == 0)
		if info["phase"] != "starting" && (len(seen) == 0 || seen[len(seen)-1] != info["phase"]) {
			seen = append(seen, info["phase"])
		}
	}
}

// isSubsequence says whether seq's items come in order (not necessarily
// adjacent) in of.
func isSubsequence(seq, of []string) bool {
	i := 0
	for _, s := range seq {
		for i < len(of) && of[i] != s {
			i++
		}
		if i == len(of) {
			return false
		}
		i++
	}
	return true
}
