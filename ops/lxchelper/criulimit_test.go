package lxchelper

import (
	"errors"
	"strings"
	"testing"
	"time"

	"ctrfs/ops/errkind"
)

// TestCRIULimit: a CRIU run's deadline grows with its work, and one that
// passed it is an ErrFailed that says what CRIU did not finish.
func TestCRIULimit(t *testing.T) {
	if got := CRIULimit(0); got != criuLimitBase {
		t.Errorf("CRIULimit(0) = %v; want %v", got, criuLimitBase)
	}
	if got, want := CRIULimit(400<<20), criuLimitBase+100*time.Second; got != want {
		t.Errorf("CRIULimit(400 MiB) = %v; want %v", got, want)
	}
	if CRIULimit(1<<30) <= CRIULimit(1<<20) {
		t.Error("a bigger CRIU run does not get longer")
	}
	var err error = &OverdueError{verb: CheckpointRunning, name: "c1", limit: CRIULimit(8 << 20), work: 8 << 20}
	if !errors.Is(err, errkind.ErrFailed) {
		t.Error("an overdue CRIU is not ErrFailed")
	}
	if msg := err.Error(); !strings.Contains(msg, "did not finish the dump of c1 within 1m2s") || !strings.Contains(msg, "8 MiB") {
		t.Errorf("message: %q", msg)
	}
}
