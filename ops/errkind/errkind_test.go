package errkind

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
)

var allKinds = []struct {
	name string
	kind error
}{
	{"ErrInvalid", ErrInvalid},
	{"ErrNotFound", ErrNotFound},
	{"ErrExists", ErrExists},
	{"ErrBusy", ErrBusy},
	{"ErrUnsupported", ErrUnsupported},
	{"ErrUnreachable", ErrUnreachable},
	{"ErrFailed", ErrFailed},
	{"ErrDenied", ErrDenied},
}

func TestErrorKindsAreDistinct(t *testing.T) {
	for i, a := range allKinds {
		for j, b := range allKinds {
			if i != j && (a.kind == b.kind || errors.Is(a.kind, b.kind) || a.kind.Error() == b.kind.Error()) {
				t.Errorf("%s and %s are not distinct", a.name, b.name)
			}
		}
	}
}

// errors.Is finds the kind of a kindError, however deep fmt.Errorf("%w")
// wraps it, and finds no other kind.
func TestErrorsIsThroughWrapping(t *testing.T) {
	cause := errors.New("lxc said no")
	for _, k := range allKinds {
		base := []struct {
			what string
			err  error
		}{
			{"newError without cause", New(k.kind, "doing it", nil)},
			{"newError with cause", New(k.kind, "doing it", cause)},
			{"the sentinel itself", k.kind},
		}
		for _, b := range base {
			chain := []error{
				b.err,
				fmt.Errorf("once: %w", b.err),
				fmt.Errorf("twice: %w", fmt.Errorf("once: %w", b.err)),
				fmt.Errorf("thrice: %w", fmt.Errorf("twice: %w", fmt.Errorf("once: %w", b.err))),
			}
			for depth, err := range chain {
				if !errors.Is(err, k.kind) {
					t.Errorf("%s, %s, wrapped %d times: errors.Is(%q, %s) = false", k.name, b.what, depth, err, k.name)
				}
				for _, other := range allKinds {
					if other.kind != k.kind && errors.Is(err, other.kind) {
						t.Errorf("%s, %s, wrapped %d times: also matches %s", k.name, b.what, depth, other.name)
					}
				}
			}
		}
	}
}

func TestErrorCauseStaysReachable(t *testing.T) {
	_, statErr := os.Stat("/nonexistent/ctrfs-test")
	err := fmt.Errorf("outer: %w", New(ErrFailed, "create c1", statErr))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%q, fs.ErrNotExist) = false; the cause must stay reachable", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "/nonexistent/ctrfs-test" {
		t.Errorf("errors.As(%q, *fs.PathError) failed", err)
	}
	// A kindError is not an fs.ErrNotExist just because its kind is ErrNotFound.
	if errors.Is(New(ErrNotFound, "no container", nil), fs.ErrNotExist) {
		t.Errorf("ErrNotFound matches fs.ErrNotExist")
	}
}

// The message is what the `error` file shows: the text given, then the
// cause; never the kind's own text.
func TestErrorMessage(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{New(ErrBusy, "c1: start is under way", nil), "c1: start is under way"},
		{New(ErrFailed, "start c1", errors.New("exit status 1")), "start c1: exit status 1"},
		{fmt.Errorf("move: %w", New(ErrUnreachable, "tollana does not answer", nil)), "move: tollana does not answer"},
		{New(ErrFailed, "a", New(ErrFailed, "b", errors.New("c"))), "a: b: c"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
