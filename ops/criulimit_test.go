package ops

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCRIULimit: a CRIU run's deadline grows with its work, and one that
// passed it is an ErrFailed that says what CRIU did not finish.
func TestCRIULimit(t *testing.T) {
	if got := criuLimit(0); got != criuLimitBase {
		t.Errorf("criuLimit(0) = %v; want %v", got, criuLimitBase)
	}
	if got, want := criuLimit(400<<20), criuLimitBase+100*time.Second; got != want {
		t.Errorf("criuLimit(400 MiB) = %v; want %v", got, want)
	}
	if criuLimit(1<<30) <= criuLimit(1<<20) {
		t.Error("a bigger CRIU run does not get longer")
	}
	var err error = &overdueError{verb: "checkpoint-running", name: "c1", limit: criuLimit(8 << 20), work: 8 << 20}
	if !errors.Is(err, ErrFailed) {
		t.Error("an overdue CRIU is not ErrFailed")
	}
	if msg := err.Error(); !strings.Contains(msg, "did not finish the dump of c1 within 1m2s") || !strings.Contains(msg, "8 MiB") {
		t.Errorf("message: %q", msg)
	}
}

// TestStagedOf: staging directories' names parse back into purpose and
// container; names with dashes too.
func TestStagedOf(t *testing.T) {
	for _, c := range []struct{ dir, purpose, name string }{
		{"dump-c1-123456", "dump", "c1"},
		{"snapshot-web-1-99", "snapshot", "web-1"},
		{"lazy-c1-7", "lazy", "c1"},
	} {
		purpose, name, ok := stagedOf(c.dir)
		if !ok || purpose != c.purpose || name != c.name {
			t.Errorf("stagedOf(%q) = %q, %q, %v", c.dir, purpose, name, ok)
		}
	}
	for _, dir := range []string{"r-123456", "dump", "dump--1"} {
		if _, _, ok := stagedOf(dir); ok {
			t.Errorf("stagedOf(%q) parsed", dir)
		}
	}
}
