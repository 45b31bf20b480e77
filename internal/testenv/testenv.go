// Package testenv is what a test calls when it needs root or a tool that
// `make deps` installs: where that is missing, the test is skipped with
// the reason, so that `go test ./...` by a developer without root, or
// before `make deps`, runs what it can and says what it left out.
//
// Under CI (CI=true in the environment, as CI services set it) a missing
// requirement is a broken setup rather than a reason to skip: the test
// fails, so that a run that tested nothing cannot pass.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI says whether this is a CI run, where nothing may be skipped for want
// of root or a tool.
func CI() bool { return os.Getenv("CI") == "true" }

// NeedRoot skips t unless it runs as root; why says what for.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root ("+why+")")
	}
}

// NeedTool returns the path of tool, or skips t when it is not in PATH;
// from says where it comes from ("make deps installs it").
func NeedTool(t testing.TB, tool, from string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		missing(t, fmt.Sprintf("needs %s (%s), which is not in PATH", tool, from))
	}
	return path
}

func missing(t testing.TB, reason string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s: under CI (CI=true) that is a broken setup, not a reason to skip", reason)
		return
	}
	t.Skip(reason)
}

// NeedDevice skips t unless the device file path exists (/dev/fuse in a
// container started without it); why says what for.
func NeedDevice(t testing.TB, path, why string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		missing(t, fmt.Sprintf("needs %s (%s): %v", path, why, err))
	}
}
