package tests

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestMoveProgress: while a move runs, info on the source shows op, phase
// and progress (bytes done of bytes expected), and events gets a line as
// each phase starts.
func TestMoveProgress(t *testing.T) {
	a, b := twoHosts(t)
	bigContainer(t, a) // 256 MiB of rootfs to send: the move takes a while
	events := a.readEvents()
	// A refused command's event shows that the reader is open (it sees
	// only the events after its open, and the shell starts it a moment
	// later): refused again until one shows.
	waitFor(t, "the events reader", func() bool {
		a.ShFails("echo bogus > containers/c1/ctl", "Invalid argument")
		b, _ := os.ReadFile(events.path)
		return strings.Contains(string(b), "dakara c1 unknown-command failed")
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
		info := parseKV(string(data))
		if info["op"] == "" {
			continue
		}
		if info["op"] != "move" || info["phase"] == "" {
			t.Fatalf("info during a move shows op %q phase %q", info["op"], info["phase"])
		}
		var doneBytes, expected int64
		f := strings.Fields(info["progress"])
		if len(f) == 3 && f[1] == "of" {
			doneBytes, _ = strconv.ParseInt(f[0], 10, 64)
			expected, err = strconv.ParseInt(f[2], 10, 64)
		}
		if len(f) != 3 || f[1] != "of" || err != nil || doneBytes > expected {
			t.Fatalf("progress during a move: %q; want DONE of EXPECTED", info["progress"])
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
