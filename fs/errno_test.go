package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	"ctrfs/ops"
)

// docs/ctrfs.5.md's errno table, kind by kind.
var specErrno = []struct {
	name string
	kind error
	want syscall.Errno
}{
	{"ErrInvalid", ops.ErrInvalid, syscall.EINVAL},
	{"ErrNotFound", ops.ErrNotFound, syscall.ENOENT},
	{"ErrExists", ops.ErrExists, syscall.EEXIST},
	{"ErrBusy", ops.ErrBusy, syscall.EBUSY},
	{"ErrUnsupported", ops.ErrUnsupported, syscall.EOPNOTSUPP},
	{"ErrUnreachable", ops.ErrUnreachable, syscall.EHOSTUNREACH},
	{"ErrFailed", ops.ErrFailed, syscall.EIO},
	{"ErrDenied", ops.ErrDenied, syscall.EPERM},
}

func TestErrnoKinds(t *testing.T) {
	for _, tt := range specErrno {
		cases := []error{
			tt.kind,
			fmt.Errorf("doing c1: %w", tt.kind),
			fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", tt.kind)),
			fmt.Errorf("with another error alongside: %w, %w", tt.kind, io.EOF),
		}
		for _, err := range cases {
			if got := errno(err); got != tt.want {
				t.Errorf("%s: errno(%q) = %v (%d), want %v (%d)", tt.name, err, got, got, tt.want, tt.want)
			}
		}
	}
}

// Errors as ops really builds them: from its own functions.
func TestErrnoOfOpsErrors(t *testing.T) {
	_, parseErr := ops.ParseCommand("launch\n")
	_, argErr := ops.ParseCommand("snapshot\n")
	tests := []struct {
		what string
		err  error
		want syscall.Errno
	}{
		{"unknown command", parseErr, syscall.EINVAL},
		{"bad arguments", argErr, syscall.EINVAL},
		{"invalid name", ops.ValidateName("../etc"), syscall.EINVAL},
		{"wrapped invalid name", fmt.Errorf("mkdir: %w", ops.ValidateName(".x")), syscall.EINVAL},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: ops returned no error", tt.what)
			continue
		}
		if got := errno(tt.err); got != tt.want {
			t.Errorf("%s: errno(%q) = %v, want %v", tt.what, tt.err, got, tt.want)
		}
	}
}

func TestErrnoNilAndUnknown(t *testing.T) {
	if got := errno(nil); got != 0 {
		t.Errorf("errno(nil) = %v, want 0", got)
	}
	_, statErr := os.Stat("/nonexistent/ctrfs-test")
	for _, err := range []error{
		errors.New("something else"),
		fmt.Errorf("wrapped: %w", errors.New("something else")),
		io.EOF,
		context.Canceled,
		statErr, // an ENOENT from the OS is not "no such container"
		syscall.EBUSY,
	} {
		if got := errno(err); got != syscall.EIO {
			t.Errorf("errno(%q) = %v, want EIO", err, got)
		}
	}
}

// The kinds map to distinct errnos: a script can tell every row of the
// table apart.
func TestErrnoDistinct(t *testing.T) {
	seen := map[syscall.Errno]string{}
	for _, tt := range specErrno {
		e := errno(tt.kind)
		if e == 0 {
			t.Errorf("%s maps to 0", tt.name)
		}
		if prev, dup := seen[e]; dup {
			t.Errorf("%s and %s both map to %v", prev, tt.name, e)
		}
		seen[e] = tt.name
	}
}
